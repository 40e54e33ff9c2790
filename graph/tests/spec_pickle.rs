//! The original's block-spec pickles (NumPy 1.x and 2.x arrays, protocols 2, 4 and 5, several
//! dtypes and layouts) decode to the blocks NumPy itself reports; broken, hostile or
//! malformed pickles are refused with an error that says what and where.
//!
//! Fixtures: `tools/spec_pickle_fixtures.py`. The hand-made pickles below were printed by
//! Python 3.11's `pickle.dumps` (expressions in the comments) unless marked hand-crafted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ksnn_formats::spec::Block;
use ksnn_graph::spec::pickle::read_block_spec;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec")
}

fn pickles() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pickle"))
        .collect();
    v.sort();
    v
}

fn err(bytes: &[u8]) -> String {
    read_block_spec(bytes).unwrap_err().to_string()
}

#[test]
fn fixtures_decode_to_their_json() {
    let all = pickles();
    for path in &all {
        let got = read_block_spec(&std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let want: BTreeMap<String, Vec<[u16; 2]>> =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap())
                .unwrap();
        let want: BTreeMap<String, Vec<Block>> = want
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|[a, b]| Block(a, b)).collect()))
            .collect();
        assert_eq!(got, want, "{}", path.display());
    }
    // Both NumPy generations, three protocols, int32 and int64 each.
    for np in ["np1", "np2"] {
        for p in [2, 4, 5] {
            for t in ["int32", "int64"] {
                let name = format!("{np}_mnist_{t}_p{p}.pickle");
                assert!(all.iter().any(|f| f.ends_with(&name)), "{name} missing");
            }
            let name = format!("{np}_fortran_p{p}.pickle");
            assert!(all.iter().any(|f| f.ends_with(&name)), "{name} missing");
        }
    }
}

#[test]
fn mnist_spec_has_the_layers_and_codes() {
    let bytes = std::fs::read(fixtures().join("np1_mnist_int32_p2.pickle")).unwrap();
    let spec = read_block_spec(&bytes).unwrap();
    let channels: Vec<(&str, usize)> = spec.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(
        channels,
        [
            ("layer1_0_1", 32),
            ("layer1_1_1", 32),
            ("layer1_1_2", 32),
            ("layer2_0_1", 64),
            ("stem", 16)
        ]
    );
    let stem = &spec["stem"];
    assert_eq!(
        &stem[..4],
        [Block::RELU, Block::IDENTITY, Block::ZERO, Block(28, 28)]
    );
    assert!(stem[4..].iter().all(|b| (1..=28).contains(&b.0)));
}

#[test]
fn fortran_and_strided_arrays_keep_their_rows() {
    for name in [
        "np1_fortran_p2",
        "np1_fortran_p5",
        "np2_fortran_p4",
        "np2_fortran_p5",
    ] {
        let bytes = std::fs::read(fixtures().join(format!("{name}.pickle"))).unwrap();
        assert_eq!(
            read_block_spec(&bytes).unwrap()["stem"],
            [Block(1, 2), Block(3, 4), Block(5, 6), Block(7, 300)],
            "{name}"
        );
    }
    let bytes = std::fs::read(fixtures().join("np2_strided_p5.pickle")).unwrap();
    assert_eq!(
        read_block_spec(&bytes).unwrap()["layer2_0_1"],
        [Block(2, 3), Block(10, 11), Block(18, 19)]
    );
}

#[test]
fn truncated_and_garbled_pickles_are_refused_without_panicking() {
    for path in pickles() {
        let good = std::fs::read(&path).unwrap();
        for n in 0..good.len() {
            assert!(
                read_block_spec(&good[..n]).is_err(),
                "{} cut at {n}",
                path.display()
            );
        }
        // Deterministic byte flips: any result but a panic is fine.
        let mut seed = good.len() as u64;
        for _ in 0..200 {
            let mut bad = good.clone();
            for _ in 0..3 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % bad.len();
                bad[i] = (seed >> 20) as u8;
            }
            let _ = read_block_spec(&bad);
        }
    }
    let good = std::fs::read(fixtures().join("np2_mnist_int32_p4.pickle")).unwrap();
    let e = err(&good[..good.len() / 2]);
    assert!(e.contains("truncated"), "{e}");
    let e = err(&good[..good.len() - 1]);
    assert_eq!(
        e,
        format!(
            "byte {} (end of input): truncated: 1 bytes expected, 0 left (file is {} bytes)",
            good.len() - 1,
            good.len() - 1
        )
    );
    assert_eq!(
        err(b"not a pickle"),
        "byte 0 (unknown opcode): opcode 0x6e is not supported"
    );
    assert_eq!(
        err(b""),
        "byte 0 (end of input): truncated: 1 bytes expected, 0 left (file is 0 bytes)"
    );
    assert_eq!(
        err(b"\x80\x06}."),
        "byte 0 (PROTO): protocol 6 (ksnn reads 2 to 5)"
    );
}

#[test]
fn foreign_globals_are_refused() {
    // pickle.dumps(Evil(), 4), Evil.__reduce__ = lambda self: (os.system, ("echo pwned",))
    let evil = b"\x80\x04\x95%\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x0aecho pwned\x94\x85\x94R\x94.";
    assert_eq!(
        err(evil),
        "byte 28 (STACK_GLOBAL): refusing global `posix.system`: a block-spec pickle may only \
         name NumPy's array and dtype reconstructors"
    );
    // The same, protocol 2.
    let evil = b"\x80\x02cposix\x0asystem\x0aq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
    assert!(
        err(evil).starts_with("byte 2 (GLOBAL): refusing global `posix.system`"),
        "{}",
        err(evil)
    );
    // Hand-crafted: `os.system` via GLOBAL.
    let evil = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
    assert!(err(evil).starts_with("byte 2 (GLOBAL): refusing global `os.system`"));
    // pickle.dumps({"stem": Eval()}, 4), Eval.__reduce__ = lambda self: (eval, ("1+1",))
    let evil = b"\x80\x04\x95)\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04stem\x94\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x031+1\x94\x85\x94R\x94s.";
    assert!(err(evil).contains("refusing global `builtins.eval`"));
    // Hand-crafted: allowed globals called the wrong way.
    let e = err(b"\x80\x02cnumpy\nndarray\n)R.");
    assert_eq!(
        e,
        "byte 18 (REDUCE): unexpected arguments for `numpy.ndarray`"
    );
    let e = err(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nN\x85R.");
    assert!(e.contains("unexpected arguments for `numpy.core.multiarray._reconstruct`"));
    assert!(err(b"\x80\x02N)R.").contains("not an allowed global"));
}

#[test]
fn bad_values_are_refused() {
    // pickle.dumps({"stem": [[70000, 1]]}, 2)
    let e = err(b"\x80\x02}q\x00X\x04\x00\x00\x00stemq\x01]q\x02]q\x03(Jp\x11\x01\x00K\x01eas.");
    assert_eq!(e, "layer `stem`: block side 70000 is outside 0..=65535");
    // pickle.dumps({"stem": [[1, -1]]}, 2)
    let e = err(b"\x80\x02}q\x00X\x04\x00\x00\x00stemq\x01]q\x02]q\x03(K\x01J\xff\xff\xff\xffeas.");
    assert_eq!(e, "layer `stem`: block side -1 is outside 0..=65535");
    // pickle.dumps({"layer1_0_1": np.array([[1, 1], [-2, 2]], dtype=np.int64)}, 4)
    let neg = b"\x80\x04\x95\xbb\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x0alayer1_0_1\x94\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02K\x02\x86\x94h\x05\x8c\x05dtype\x94\x93\x94\x8c\x02i8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x89C \x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x00\x00\x00\x94t\x94bs.";
    assert_eq!(
        err(neg),
        "layer `layer1_0_1`: block side -2 is outside 0..=65535"
    );
    // pickle.dumps({"stem": np.ones((2, 3), dtype=np.int32)}, 4)
    let three = b"\x80\x04\x95\xad\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04stem\x94\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02K\x03\x86\x94h\x05\x8c\x05dtype\x94\x93\x94\x8c\x02i4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x89C\x18\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x94t\x94bs.";
    assert_eq!(
        err(three),
        "layer `stem`: array of shape [2, 3]; expected [C, 2]"
    );
    // pickle.dumps({"stem": np.ones((1, 2), dtype=np.float32)}, 4)
    let floats = b"\x80\x04\x95\x9d\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04stem\x94\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x01K\x02\x86\x94h\x05\x8c\x05dtype\x94\x93\x94\x8c\x02f4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x89C\x08\x00\x00\x80?\x00\x00\x80?\x94t\x94bs.";
    assert_eq!(
        err(floats),
        "layer `stem`: array of type `f4`; expected integers"
    );
    // Hand-crafted from `three`: shape (2, 2) but still 24 data bytes.
    let mut wrong = three.to_vec();
    let at = wrong
        .windows(7)
        .position(|w| w == b"K\x01K\x02K\x03\x86")
        .unwrap();
    wrong[at + 5] = 2;
    assert_eq!(
        err(&wrong),
        "layer `stem`: 24 data bytes for shape [2, 2] of <i4"
    );
    // pickle.dumps([1, 2], 4)
    let e = err(b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02e.");
    assert_eq!(e, "not a block spec: the pickle holds no dict");
    // pickle.dumps({3: [[1, 1]]}, 4)
    let e = err(b"\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00}\x94K\x03]\x94]\x94(K\x01K\x01eas.");
    assert_eq!(e, "not a block spec: a key that is not a string");
    // Hand-crafted: a row of three, and a value that is not rows at all.
    let e = err(b"\x80\x04}\x8c\x04stem]K\x01K\x01K\x01\x87as.");
    assert_eq!(e, "layer `stem`: row 0 is not two integers");
    let e = err(b"\x80\x04}\x94\x8c\x04stem\x94K\x01s.");
    assert_eq!(e, "layer `stem`: not an integer array or a list of pairs");
}

#[test]
fn resource_bombs_are_refused() {
    // Hand-crafted: 100 nested 1-tuples.
    let mut deep = b"\x80\x04N".to_vec();
    deep.extend([0x85; 100]);
    deep.push(b'.');
    assert_eq!(err(&deep), "byte 35 (TUPLE1): nested more than 32 deep");
    // Hand-crafted: each memo entry is a pair of the previous one, so copies double.
    let mut bomb = b"\x80\x04C\xff".to_vec();
    bomb.extend([0u8; 255]);
    bomb.extend(b"q\x00");
    for i in 0..30u8 {
        bomb.extend([b'h', i, b'h', i, 0x86, b'q', i + 1]);
    }
    bomb.push(b'.');
    assert!(err(&bomb).contains("memo copies exceed the size budget"));
    // Hand-crafted: a far memo index costs nothing, reading an unset one is refused.
    let e = err(b"\x80\x04Nr\xff\xff\xff\xffh\x05.");
    assert_eq!(e, "byte 8 (BINGET): memo entry 5 was never set");
    // Hand-crafted: lengths beyond the input.
    let e = err(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.");
    assert!(
        e.starts_with("byte 2 (BINBYTES8): truncated: length"),
        "{e}"
    );
    // Out-of-band buffers (protocol 5 with a buffer_callback) are not in the file.
    assert_eq!(
        err(b"\x80\x05\x97."),
        "byte 2 (NEXT_BUFFER): out-of-band buffers are not supported"
    );
}

#[test]
fn spec_files_are_read_by_content_in_every_form() {
    let bytes = std::fs::read(fixtures().join("np1_mnist_int32_p2.pickle")).unwrap();
    let spec = ksnn_formats::BlockSpec {
        layers: read_block_spec(&bytes).unwrap(),
    };
    assert!(!spec.layers.is_empty());
    assert_eq!(ksnn_graph::spec::read(&bytes).unwrap(), spec);
    assert_eq!(ksnn_graph::spec::read(&spec.encode()).unwrap(), spec);
    assert_eq!(
        ksnn_graph::spec::read(spec.to_json().as_bytes()).unwrap(),
        spec
    );
    let bad = ksnn_graph::spec::read(b"\x80\x04garbage").unwrap_err();
    assert!(bad.to_string().starts_with("block-spec pickle"), "{bad}");
    let bad = ksnn_graph::spec::read(b"{\"stem\": [[1]]}").unwrap_err();
    assert!(bad.to_string().contains("block spec"), "{bad}");
}
