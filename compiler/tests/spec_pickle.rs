//! The original's block-spec pickles (numpy arrays, several protocols and layouts) decode to
//! the blocks NumPy itself reports; hostile or broken pickles are refused.

use std::collections::BTreeMap;
use std::path::Path;

use ksnn_compiler::spec::pickle::read_block_spec;
use ksnn_formats::spec::Block;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec")
}

#[test]
fn fixtures_decode_to_their_json() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pickle") {
            continue;
        }
        let got = read_block_spec(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let want: BTreeMap<String, Vec<[u16; 2]>> =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap())
                .unwrap();
        let want: BTreeMap<String, Vec<Block>> = want
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|[a, b]| Block(a, b)).collect()))
            .collect();
        assert_eq!(got, want, "{}", path.display());
        n += 1;
    }
    assert!(n >= 6);
}

#[test]
fn broken_and_hostile_pickles_are_refused() {
    let good = std::fs::read(fixtures().join("mnist_int32_p4.pickle")).unwrap();
    let e = read_block_spec(&good[..good.len() / 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated") || e.contains("runs past"), "{e}");
    let e = read_block_spec(b"not a pickle").unwrap_err().to_string();
    assert!(e.contains("byte"), "{e}");
    // pickle.dumps of os.system("echo pwned") via __reduce__, protocol 4.
    let evil = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x0aecho pwned\x94\x85\x94R\x94.";
    let e = read_block_spec(evil).unwrap_err().to_string();
    assert!(e.contains("refusing global `posix.system`"), "{e}");
    // A dict whose value is not [C, 2].
    let e = read_block_spec(b"\x80\x04}\x94\x8c\x04stem\x94K\x01s.")
        .unwrap_err()
        .to_string();
    assert!(e.contains("stem"), "{e}");
}
