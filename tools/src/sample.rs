//! `ksnn-tools sample`: writes the example program of `ksnn_formats::example::tiny_cnn`.

use std::path::Path;

use anyhow::{Context, Result};
use ksnn_formats::example::tiny_cnn;

pub fn run(out: &Path, seed: u64) -> Result<()> {
    let (program, weights) = tiny_cnn(seed);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = [
        ("model.ksnn", program.encode()),
        ("weights.ksnw", weights.encode()),
        ("spec.json", program.block_spec().to_json().into_bytes()),
    ];
    for (name, bytes) in files {
        let path = out.join(name);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
