//! Running the `ksnn` binary from integration tests.

// Each test crate uses only some of these.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Runs `ksnn args…` (in `dir` when given): whether it succeeded, and stdout then stderr.
pub fn ksnn_in<S: AsRef<OsStr>>(dir: Option<&Path>, args: &[S]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksnn"));
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().expect("run ksnn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `ksnn args…` in the current directory.
pub fn ksnn<S: AsRef<OsStr>>(args: &[S]) -> (bool, String) {
    ksnn_in(None, args)
}

/// Fails unless a pipeline's output shows every stage in `stages` running (`== name`).
pub fn assert_stages_ran(text: &str, stages: &[&str]) {
    for stage in stages {
        assert!(
            text.contains(&format!("== {stage}")),
            "{stage} missing:\n{text}"
        );
    }
}
