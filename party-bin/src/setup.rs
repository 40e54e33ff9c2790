//! Loading what a party needs at start-up: its program (and, for the server, the weights),
//! checked exactly, and its network identity.

use std::path::Path;

use anyhow::{Context, Result};
use ksnn_formats::{Program, Weights};
use ksnn_runtime::net::tcp::NodeConfig;
use ksnn_runtime::net::tls::Identity;
use ksnn_runtime::role::Role;

use crate::config::Config;

/// The program at `model`, and the weights at `weights` checked against it: the one loader of
/// every command, so `check` and `local` validate exactly what `serve` and `infer` load.
pub fn load_files(model: &Path, weights: Option<&Path>) -> Result<(Program, Option<Weights>)> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let program = Program::decode(&read(model)?).with_context(|| format!("{}", model.display()))?;
    let weights = match weights {
        Some(path) => {
            let w = Weights::decode(&read(path)?).with_context(|| format!("{}", path.display()))?;
            w.check_against(&program)
                .with_context(|| format!("{}", path.display()))?;
            Some(w)
        }
        None => None,
    };
    Ok((program, weights))
}

/// The party's program, and the weights for the server, validated against each other; sizes
/// the thread pool and installs the backend, saying in one line where the linear layers run.
pub fn load_party(cfg: &Config) -> Result<(Program, Option<Weights>)> {
    let weights = match cfg.role {
        Role::Server => cfg.weights.as_deref(),
        _ => None,
    };
    let (program, weights) = load_files(&cfg.model, weights)?;
    if let Some(n) = cfg.threads {
        // Only the first call can size the global pool; later ones keep it.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let line = ksnn_runtime::backend::install(cfg.backend)
        .with_context(|| format!("backend = {:?}", cfg.backend))?;
    eprintln!("[{}] {line}", cfg.role);
    Ok((program, weights))
}

/// The event loop's configuration for this party.
pub fn node_config(cfg: &Config, program: &Program) -> Result<NodeConfig> {
    warn_if_readable(&cfg.key);
    if !cfg.latency.is_zero() {
        let ms = |peer| cfg.latency.from(peer).as_secs_f64() * 1000.0;
        let per_peer: Vec<String> = Role::ALL
            .into_iter()
            .filter(|&p| p != cfg.role)
            .map(|p| format!("from the {p} {} ms", ms(p)))
            .collect();
        eprintln!(
            "[{}] simulated WAN latency: protocol messages are held after they arrive, {} (for benchmarks)",
            cfg.role,
            per_peer.join(", ")
        );
    }
    Ok(NodeConfig {
        identity: {
            let id = Identity::load(cfg.role, &cfg.cert, &cfg.key, &cfg.ca)?;
            match &cfg.crl {
                Some(crl) => id.with_crl(crl)?,
                None => id,
            }
        },
        listen: cfg.listen,
        program_hash: program.content_hash(),
        timeout: cfg.timeout,
        max_payload: cfg.max_frame,
        max_message: match cfg.max_message {
            Some(m) => m,
            None => {
                // The largest message the program needs, plus room for control messages.
                let need = program.max_layer_message().context("sizing messages")? as usize;
                need + need / 8 + (1 << 20)
            }
        },
        limits: cfg.limits.clone(),
        latency: cfg.latency,
    })
}

/// Warns when a private key can be read by others than its owner (`keygen` writes 0600).
fn warn_if_readable(key: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(key) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: the private key {} can be read by others (mode {mode:o}); run `chmod 600` on it",
                key.display()
            );
        }
    }
}
