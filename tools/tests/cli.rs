//! `ksnn-tools` as a user runs it: sample files, inspect each kind, and clear failures.

use std::path::Path;
use std::process::{Command, Output};

fn tools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksnn-tools"))
        .args(args)
        .output()
        .expect("run ksnn-tools")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sample(dir: &Path, seed: &str) {
    let o = tools(&["sample", "--out", dir.to_str().unwrap(), "--seed", seed]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn inspect_shows_layers_shapes_and_drelus() {
    let dir = tempdir("inspect");
    sample(&dir, "1");
    let model = dir.join("model.ksnn");
    let o = tools(&["inspect", model.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in [
        "tiny-cnn-example",
        "relu1",
        "8x28x28",
        "1169",
        "1372",
        "16355 per inference",
        "5379 in budgeted activation layers",
        "hard_swish",
        "alpha 682 beta 2048 raw",
    ] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }

    let o = tools(&[
        "inspect",
        dir.join("weights.ksnw").to_str().unwrap(),
        "--program",
        model.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("conv1.weight") && out.contains("matches the given program"));

    let o = tools(&[
        "inspect",
        dir.join("spec.json").to_str().unwrap(),
        "--program",
        model.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("5379 DReLUs per inference"), "{out}");
}

#[test]
fn bad_files_fail_with_a_precise_message() {
    let dir = tempdir("bad");
    sample(&dir, "1");
    let model = std::fs::read(dir.join("model.ksnn")).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "the file is empty"),
        ("text", b"hello world".to_vec(), "not a ksnn program"),
        ("short", model[..100].to_vec(), "declares a"),
        (
            "flipped",
            {
                let mut m = model.clone();
                let n = m.len();
                m[n - 3] ^= 0x40;
                m
            },
            "content hash mismatch",
        ),
        ("json", b"{\"relu1\": [[1,1], [2]]}".to_vec(), "block spec"),
    ];
    for (name, bytes, expect) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = tools(&["inspect", path.to_str().unwrap()]);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{name} was accepted");
        assert!(err.contains(expect), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }

    // Weights of another program, and a spec that does not fit.
    let other = tempdir("other");
    sample(&other, "2");
    let o = tools(&[
        "inspect",
        other.join("weights.ksnw").to_str().unwrap(),
        "--program",
        dir.join("model.ksnn").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("belongs to program"), "{:?}", text(&o));
    let spec = dir.join("wide.json");
    std::fs::write(&spec, "{\"relu3\": [[15,1]]}").unwrap();
    let o = tools(&[
        "inspect",
        spec.to_str().unwrap(),
        "--program",
        dir.join("model.ksnn").to_str().unwrap(),
    ]);
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(
        err.contains("relu3") && err.contains("16 channels"),
        "{err}"
    );
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ksnn-tools-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
