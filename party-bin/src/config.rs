//! Party configuration files (TOML). Relative paths are relative to the file's directory.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use ksnn_runtime::backend::BackendChoice;
use ksnn_runtime::exec::session::MAX_AHEAD;
use ksnn_runtime::net::tcp::{Latency, Limits};
use ksnn_runtime::role::Role;

/// Every key, as `ksnn-party serve --help` lists them.
pub const KEYS_HELP: &str = "\
Configuration file keys (TOML):
  role            \"client\" (P0), \"server\" (P1) or \"helper\" (P2)            required
  model           the public program, model.ksnn                             required
  weights         the server's weight file, weights.ksnw                     server only
  listen          address to listen on, e.g. \"0.0.0.0:7001\"                  server, helper
  server          where P1 listens, e.g. \"10.0.0.1:7001\"                     client, helper
  helper          where P2 listens, e.g. \"10.0.0.2:7002\"                     client
  ca              the CA certificate (PEM) from `ksnn-tools keygen`            required
  cert            this party's certificate (PEM)                             required
  key             this party's private key (PEM)                             required
  crl             a revocation list (PEM, `ksnn-tools keygen --revoke`)      optional
  ahead           inferences whose offline pass runs before their input arrives, so
                  an input waits only for its online pass (0 to 4, default 0)   client
  timeout_seconds how long to wait for a peer before giving up (default 10)
  threads         compute threads (default: all cores)
  max_frame_mib   largest frame accepted from a peer (default 64)
  max_message_mib largest message accepted from a peer (default: what the program can
                  need, from its layer sizes, plus headroom)
  max_sessions    sessions open at once on a daemon (default 64)
  max_sessions_per_client  sessions open at once on one client connection (default 8)
  max_connections connections at once; more are closed on accept (default 512)
  max_unverified  connections still in their handshake or greeting; when full the oldest
                  is closed (default 64)
  max_unverified_per_address  the same, per remote address (default 16)
  handshake_seconds  time for a new connection's TLS handshake and greeting (default 5)
  idle_seconds    a client connection with no session and no message for this long is
                  closed (default 300)
  heartbeat_seconds  a heartbeat goes out on a connection quiet for this long (default 1)
  dead_after_seconds a peer that sends nothing, not even a heartbeat, for this long is
                  taken for dead; its sessions fail naming it (default 8)
  session_seconds longest a session may last, however active (default 86400)
  max_queued_mib  bytes queued for a peer that does not read before it is dropped (default 1024)
  backend         where the linear layers' products run: \"auto\" (a CUDA device when a
                  driver is present, else the CPU, said in one line), \"cpu\", or
                  \"cuda\" (an error without a driver) (default \"auto\")
  latency_ms      simulated one-way latency (a WAN emulation, for benchmarks): each
                  protocol message this party receives is held this long after it
                  arrives. One number for every peer, or per peer, e.g.
                  { server = 50, helper = 10 } (0 to 10000 ms, default 0; leave 0 in
                  production)
Relative paths are taken from the configuration file's directory.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    role: String,
    model: PathBuf,
    weights: Option<PathBuf>,
    listen: Option<String>,
    server: Option<String>,
    helper: Option<String>,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    crl: Option<PathBuf>,
    ahead: Option<usize>,
    timeout_seconds: Option<f64>,
    threads: Option<usize>,
    max_frame_mib: Option<u32>,
    max_message_mib: Option<usize>,
    max_sessions: Option<usize>,
    max_sessions_per_client: Option<usize>,
    max_connections: Option<usize>,
    max_unverified: Option<usize>,
    max_unverified_per_address: Option<usize>,
    handshake_seconds: Option<f64>,
    idle_seconds: Option<f64>,
    heartbeat_seconds: Option<f64>,
    dead_after_seconds: Option<f64>,
    session_seconds: Option<f64>,
    max_queued_mib: Option<usize>,
    latency_ms: Option<RawLatency>,
    backend: Option<String>,
}

/// `latency_ms`: one number for every peer, or a table keyed by the sending peer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawLatency {
    All(f64),
    PerPeer(PerPeer),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerPeer {
    client: Option<f64>,
    server: Option<f64>,
    helper: Option<f64>,
}

/// A checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub role: Role,
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub server: Option<String>,
    pub helper: Option<String>,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub crl: Option<PathBuf>,
    /// The client's offline ahead (0 for the daemons).
    pub ahead: usize,
    pub timeout: Duration,
    pub threads: Option<usize>,
    pub max_frame: u32,
    /// `None`: derived from the program.
    pub max_message: Option<usize>,
    pub limits: Limits,
    /// Simulated one-way latency per received message, by sending peer (benchmarks; zero in
    /// production).
    pub latency: Latency,
    /// Where the linear layers' products run.
    pub backend: BackendChoice,
}

/// Largest simulated latency, in milliseconds (`latency_ms`, `local --latency-ms`).
pub const MAX_LATENCY_MS: f64 = 10_000.0;

/// A simulated one-way latency in milliseconds, checked to lie in 0..=[`MAX_LATENCY_MS`].
pub fn latency(ms: f64, what: &str) -> Result<Duration> {
    if !(0.0..=MAX_LATENCY_MS).contains(&ms) {
        bail!("{what} is {ms}; it must be between 0 and {MAX_LATENCY_MS} milliseconds");
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// Resolves `host:port` (names allowed).
pub fn resolve(what: &str, addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("{what} address `{addr}` does not resolve"))?
        .next()
        .with_context(|| format!("{what} address `{addr}` has no IP address"))
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str, base: &Path) -> Result<Config> {
        let raw: Raw = toml::from_str(text)?;
        let role = match raw.role.as_str() {
            "client" | "p0" => Role::Client,
            "server" | "p1" => Role::Server,
            "helper" | "p2" => Role::Helper,
            other => bail!("`role` is \"{other}\"; use \"client\", \"server\" or \"helper\""),
        };
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let need = |v: &Option<String>, key: &str| -> Result<()> {
            if v.is_none() {
                bail!("`{key}` is required for the {role}");
            }
            Ok(())
        };
        match role {
            Role::Client => {
                need(&raw.server, "server")?;
                need(&raw.helper, "helper")?;
            }
            Role::Server => need(&raw.listen, "listen")?,
            Role::Helper => {
                need(&raw.listen, "listen")?;
                need(&raw.server, "server")?;
            }
        }
        if role == Role::Server && raw.weights.is_none() {
            bail!("`weights` is required for the server");
        }
        if role != Role::Server && raw.weights.is_some() {
            bail!(
                "`weights` belongs to the server's configuration only: the {role} must not hold them"
            );
        }
        let ahead = match raw.ahead {
            Some(_) if role != Role::Client => {
                bail!("`ahead` is the client's setting: the client asks the daemons to prepare")
            }
            Some(n) if n > MAX_AHEAD => {
                bail!("`ahead` is {n}; the daemons keep at most {MAX_AHEAD} inferences prepared")
            }
            n => n.unwrap_or(0),
        };
        let timeout = raw.timeout_seconds.unwrap_or(10.0);
        if !(timeout > 0.0 && timeout < 86_400.0) {
            bail!("`timeout_seconds` must be between 0 and 86400");
        }
        let latency = match raw.latency_ms {
            None => Latency::ZERO,
            Some(RawLatency::All(ms)) => Latency::uniform(latency(ms, "`latency_ms`")?),
            Some(RawLatency::PerPeer(p)) => {
                let mut l = Latency::ZERO;
                for (peer, ms) in [
                    (Role::Client, p.client),
                    (Role::Server, p.server),
                    (Role::Helper, p.helper),
                ] {
                    let Some(ms) = ms else { continue };
                    if peer == role {
                        bail!(
                            "`latency_ms` names the {peer}: a party receives nothing from itself"
                        );
                    }
                    l = l.with(peer, latency(ms, &format!("`latency_ms` for the {peer}"))?);
                }
                l
            }
        };
        let d = Limits::default();
        let at_least_one = |v: Option<usize>, default: usize, key: &str| -> Result<usize> {
            match v {
                Some(0) => bail!("`{key}` must be at least 1"),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        let handshake = raw.handshake_seconds.unwrap_or(d.handshake.as_secs_f64());
        if !(handshake > 0.0 && handshake <= 600.0) {
            bail!("`handshake_seconds` must be between 0 and 600");
        }
        let idle = raw.idle_seconds.unwrap_or(d.idle.as_secs_f64());
        if !(idle > 0.0 && idle <= 86_400.0) {
            bail!("`idle_seconds` must be between 0 and 86400");
        }
        let seconds =
            |v: Option<f64>, default: Duration, key: &str, max: f64| -> Result<Duration> {
                let v = v.unwrap_or(default.as_secs_f64());
                if !(v > 0.0 && v <= max) {
                    bail!("`{key}` must be between 0 and {max}");
                }
                Ok(Duration::from_secs_f64(v))
            };
        let heartbeat = seconds(
            raw.heartbeat_seconds,
            d.heartbeat,
            "heartbeat_seconds",
            3600.0,
        )?;
        let dead_after = seconds(
            raw.dead_after_seconds,
            d.dead_after,
            "dead_after_seconds",
            86_400.0,
        )?;
        if dead_after <= heartbeat {
            bail!("`dead_after_seconds` must be longer than `heartbeat_seconds`");
        }
        let limits = Limits {
            idle: Duration::from_secs_f64(idle),
            heartbeat,
            dead_after,
            session_deadline: seconds(
                raw.session_seconds,
                d.session_deadline,
                "session_seconds",
                31_536_000.0,
            )?,
            max_sessions: at_least_one(raw.max_sessions, d.max_sessions, "max_sessions")?,
            max_sessions_per_client: at_least_one(
                raw.max_sessions_per_client,
                d.max_sessions_per_client,
                "max_sessions_per_client",
            )?,
            max_connections: at_least_one(
                raw.max_connections,
                d.max_connections,
                "max_connections",
            )?,
            max_unverified: at_least_one(raw.max_unverified, d.max_unverified, "max_unverified")?,
            max_unverified_per_address: at_least_one(
                raw.max_unverified_per_address,
                d.max_unverified_per_address,
                "max_unverified_per_address",
            )?,
            handshake: Duration::from_secs_f64(handshake),
            max_queued: at_least_one(raw.max_queued_mib, d.max_queued >> 20, "max_queued_mib")?
                << 20,
            ..d
        };
        Ok(Config {
            role,
            model: abs(raw.model),
            weights: raw.weights.map(abs),
            listen: raw
                .listen
                .as_deref()
                .map(|a| resolve("listen", a))
                .transpose()?,
            server: raw.server,
            helper: raw.helper,
            ca: abs(raw.ca),
            cert: abs(raw.cert),
            key: abs(raw.key),
            crl: raw.crl.map(abs),
            ahead,
            timeout: Duration::from_secs_f64(timeout),
            threads: raw.threads,
            max_frame: raw.max_frame_mib.unwrap_or(64).clamp(1, 1024) << 20,
            max_message: raw.max_message_mib.map(|m| m.max(1) << 20),
            limits,
            latency,
            backend: match raw.backend {
                Some(b) => b.parse().map_err(anyhow::Error::msg)?,
                None => BackendChoice::Auto,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_roles_and_keys() {
        let base = Path::new("/etc/ksnn");
        let ok = "role = \"server\"\nmodel = \"m.ksnn\"\nweights = \"w.ksnw\"\nlisten = \"127.0.0.1:7001\"\nca = \"ca.pem\"\ncert = \"p1.pem\"\nkey = \"p1.key\"\n";
        let c = Config::parse(ok, base).unwrap();
        assert_eq!(c.role, Role::Server);
        assert_eq!(c.model, Path::new("/etc/ksnn/m.ksnn"));
        assert_eq!(c.backend, BackendChoice::Auto);
        let cpu = Config::parse(&format!("{ok}backend = \"cpu\"\n"), base).unwrap();
        assert_eq!(cpu.backend, BackendChoice::Cpu);
        let err = Config::parse(&format!("{ok}backend = \"gpu\"\n"), base)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"auto\", \"cpu\" or \"cuda\""), "{err}");
        let no_weights = ok.replace("weights = \"w.ksnw\"\n", "");
        assert!(
            Config::parse(&no_weights, base)
                .unwrap_err()
                .to_string()
                .contains("weights")
        );
        let typo = format!("{ok}timeout = 3\n");
        assert!(
            Config::parse(&typo, base)
                .unwrap_err()
                .to_string()
                .contains("timeout")
        );
        let client_with_weights =
            ok.replace("\"server\"", "\"client\"") + "server = \"a:1\"\nhelper = \"b:2\"\n";
        assert!(
            Config::parse(&client_with_weights, base)
                .unwrap_err()
                .to_string()
                .contains("must not hold")
        );
        let client = "role = \"client\"\nmodel = \"m.ksnn\"\nserver = \"a:1\"\nhelper = \"b:2\"\nca = \"ca.pem\"\ncert = \"p0.pem\"\nkey = \"p0.key\"\n";
        assert_eq!(Config::parse(client, base).unwrap().ahead, 0);
        let ahead = |n: usize| Config::parse(&format!("{client}ahead = {n}\n"), base);
        assert_eq!(ahead(2).unwrap().ahead, 2);
        let err = ahead(MAX_AHEAD + 1).unwrap_err().to_string();
        assert!(err.contains("at most"), "{err}");
        let err = Config::parse(&format!("{ok}ahead = 1\n"), base)
            .unwrap_err()
            .to_string();
        assert!(err.contains("client's setting"), "{err}");
        assert_eq!(Config::parse(ok, base).unwrap().latency, Latency::ZERO);
        let latency = |ms: &str| Config::parse(&format!("{ok}latency_ms = {ms}\n"), base);
        let ms = |v: u64| Duration::from_micros(v);
        assert_eq!(
            latency("20.5").unwrap().latency,
            Latency::uniform(ms(20_500))
        );
        assert_eq!(latency("7").unwrap().latency, Latency::uniform(ms(7_000)));
        assert_eq!(
            latency("{ client = 50, helper = 0.5 }").unwrap().latency,
            Latency::ZERO
                .with(Role::Client, ms(50_000))
                .with(Role::Helper, ms(500))
        );
        for bad in ["-1.0", "10001.0", "nan", "{ helper = -2 }"] {
            let err = format!("{:#}", latency(bad).unwrap_err());
            assert!(err.contains("between 0 and 10000"), "{bad}: {err}");
        }
        let err = format!("{:#}", latency("{ server = 5 }").unwrap_err());
        assert!(err.contains("nothing from itself"), "{err}");
        assert!(latency("{ p3 = 5 }").is_err());
    }
}

#[cfg(test)]
mod examples {
    use super::*;

    /// The example configurations shipped in `party-bin/config/` and the containers' in
    /// `docker/config/` parse.
    #[test]
    fn shipped_examples_parse() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in [crate_dir.join("config"), crate_dir.join("../docker/config")] {
            for (file, role) in [
                ("p0.toml", Role::Client),
                ("p1.toml", Role::Server),
                ("p2.toml", Role::Helper),
            ] {
                let path = dir.join(file);
                let text = std::fs::read_to_string(&path).unwrap();
                let c = Config::parse(&text, &dir)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert_eq!(c.role, role);
            }
        }
    }
}
