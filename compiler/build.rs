//! Links the `ksnn` binary, tests and benches to the repository's libtorch with an rpath,
//! so they run without LD_LIBRARY_PATH (torch-sys passes its rpath only to its own object),
//! and records the libtorch version for `ksnn --version`.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=TCH_LINK_CUDA");
    let mut version = String::from("unknown");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
        let file = std::path::Path::new(&dir).join("version.py");
        println!("cargo:rerun-if-changed={}", file.display());
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some(line) = text.lines().find(|l| l.starts_with("__version__"))
            && let Some(v) = line.split('\'').nth(1)
        {
            version = v.to_string();
        }
    }
    // Only on CUDA machines with the full torch wheel: force libtorch_cuda in, or tch never
    // sees a GPU (tch-rs #980, #907).
    if std::env::var("TCH_LINK_CUDA").as_deref() == Ok("1") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rustc-env=KSNN_LIBTORCH_VERSION={version}");
}
