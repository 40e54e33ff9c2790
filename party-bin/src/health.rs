//! `ksnn-party health`: is this party's network path open? A daemon checks that its listen
//! address accepts connections; a client that the server and the helper do. Container health
//! checks and first deployments use it: it needs nothing but the configuration file, and it
//! only opens and closes TCP connections (no TLS), which the daemons drop without a log line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Result, bail};
use ksnn_runtime::role::Role;

use crate::config::{Config, resolve};

/// How long one connection attempt may take.
const CONNECT: Duration = Duration::from_secs(2);

/// Checks every address `cfg`'s party must reach or offer; prints one line each.
pub fn check(cfg: &Config) -> Result<()> {
    let mut targets: Vec<(String, SocketAddr)> = Vec::new();
    if let Some(listen) = cfg.listen {
        targets.push((format!("{} listening", cfg.role), reachable_form(listen)));
    }
    if cfg.role != Role::Server
        && let Some(s) = &cfg.server
    {
        targets.push(("the server".into(), resolve("server", s)?));
    }
    if cfg.role == Role::Client
        && let Some(h) = &cfg.helper
    {
        targets.push(("the helper".into(), resolve("helper", h)?));
    }
    let mut failed = Vec::new();
    for (what, addr) in targets {
        match TcpStream::connect_timeout(&addr, CONNECT) {
            Ok(_) => println!("{what} at {addr}: reachable"),
            Err(e) => {
                println!("{what} at {addr}: NOT reachable ({e})");
                failed.push(format!("{what} at {addr}"));
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "the {} cannot reach {} (is the party running, and is the port open in the firewall?)",
            cfg.role,
            failed.join(", ")
        );
    }
    Ok(())
}

/// A wildcard listen address is reached on loopback.
fn reachable_form(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_checked_on_loopback() {
        let a: SocketAddr = "0.0.0.0:7001".parse().unwrap();
        assert_eq!(reachable_form(a), "127.0.0.1:7001".parse().unwrap());
        let b: SocketAddr = "10.0.0.2:7002".parse().unwrap();
        assert_eq!(reachable_form(b), b);
    }
}
