//! The libtorch link works: `ksnn version` runs a real computation through tch.

#[test]
fn version_reports_libtorch_and_computes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ksnn"))
        .arg("version")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run ksnn");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("libtorch 2.13"), "{text}");
    assert!(text.contains("[4.5, -0.5, 9.5, -2.0]"), "{text}");
}
