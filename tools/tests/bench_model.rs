//! `ksnn-tools bench model` end to end through the real binaries: the three parties over TLS
//! on loopback, every secure prediction equal to the reference, each party's peak memory in
//! the report. Needs `ksnn-party` built next to `ksnn-tools` (`cargo build -p ksnn-party`);
//! without it the end-to-end test says so and checks only the argument errors.

use std::path::Path;
use std::process::{Command, Output};

use ksnn_formats::Report;

fn tools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksnn-tools"))
        .args(args)
        .output()
        .expect("run ksnn-tools")
}

fn party_built() -> bool {
    Path::new(env!("CARGO_BIN_EXE_ksnn-tools"))
        .with_file_name("ksnn-party")
        .exists()
}

#[test]
fn mnist_cnn_runs_secure_equal_to_the_reference_with_peak_memory() {
    if !party_built() {
        eprintln!(
            "skipped: ksnn-party is not built next to ksnn-tools (cargo build -p ksnn-party)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("ksnn-bench-model-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = dir.join("out.json");
    let (report_arg, keep_arg) = (report.to_str().unwrap(), dir.join("files"));
    // mnist-cnn with 2x2 blocks, the report and the files kept, plus `extra`.
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", "model", "--model", "mnist-cnn", "--uniform", "2x2"];
        args.extend_from_slice(extra);
        args.extend(["--report", report_arg, "--keep", keep_arg.to_str().unwrap()]);
        tools(&args)
    };
    let o = bench(&["--images", "2"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("secure = reference: 2/2"), "{out}");
    let rep = Report::from_json(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!((rep.images, rep.secure_equals_reference), (2, 2));
    let m = &rep.peak_rss;
    for (party, peak) in [("P0", m.p0), ("P1", m.p1), ("P2", m.p2)] {
        assert!(peak.is_some_and(|b| b > 1 << 20), "{party}: {peak:?}");
    }
    assert!(rep.wall_seconds > 0.0);
    let (by_phase, by_party) = (&rep.per_inference.phase_bytes, &rep.per_inference.bytes);
    assert!(
        (by_phase.offline + by_phase.online).abs_diff(by_party.total) <= 3,
        "{by_phase:?} against {by_party:?}"
    );
    // mnist-cnn's ReLU maps are 28, 14, 14, 14 and 7 wide: 2x2 blocks on each.
    let want = 16 * 14 * 14 + 3 * 32 * 7 * 7 + 64 * 4 * 4;
    assert_eq!(rep.spec_drelus, want);
    // The set-up sends every masked coefficient once (P1 to P2, past the client), and the
    // client's report still counts it.
    let program =
        ksnn_formats::Program::decode(&std::fs::read(dir.join("files/model.ksnn")).unwrap())
            .unwrap();
    assert_eq!(rep.setup_bytes, program.setup_bytes().unwrap());
    for f in [
        "model.ksnn",
        "weights.ksnw",
        "spec.json",
        "x0.npy",
        "x1.npy",
    ] {
        assert!(dir.join("files").join(f).exists(), "{f} not kept");
    }

    // The same model with the fss DReLU over TLS: equal to the reference, fewer rounds, and the
    // helper's keys in the offline bytes.
    let o = bench(&["--drelu", "fss"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("secure = reference: 1/1"), "{out}");
    let fss = Report::from_json(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let program =
        ksnn_formats::Program::decode(&std::fs::read(dir.join("files/model.ksnn")).unwrap())
            .unwrap();
    let keys = program.dealt_key_bytes().unwrap();
    assert!(keys > 0);
    assert!(fss.per_inference.phase_bytes.offline >= keys);
    assert!(fss.per_inference.rounds < rep.per_inference.rounds);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A segmentor through the three processes at a small non-square size: the parties reveal
/// the 1/8-resolution logits, the client upsamples them, writes the label map as an indexed
/// PNG of the input's size, and its map equals the reference's pixel for pixel.
#[test]
fn a_segmentor_writes_its_label_map_equal_to_the_reference() {
    if !party_built() {
        eprintln!(
            "skipped: ksnn-party is not built next to ksnn-tools (cargo build -p ksnn-party)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("ksnn-bench-seg-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keep = dir.join("files");
    let o = tools(&[
        "bench",
        "model",
        "--model",
        "deeplabv3-mobilenetv2",
        "--size",
        "32x48",
        "--classes",
        "5",
        "--uniform",
        "2x2",
        "--truncation",
        "exact",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("secure = reference: 1/1"), "{out}");
    let png = std::fs::read(keep.join("seg-0.png")).expect("the client's label map");
    let mut r = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let info = r.info();
    assert_eq!((info.width, info.height), (48, 32));
    assert_eq!(info.color_type, png::ColorType::Indexed);
    let mut ids = vec![0; r.output_buffer_size().unwrap()];
    r.next_frame(&mut ids).unwrap();
    assert!(ids.iter().all(|&k| k < 5), "class ids below 5");
    // The upsampling was the client's: the program's last layer, which the engine skips.
    let program =
        ksnn_formats::Program::decode(&std::fs::read(keep.join("model.ksnn")).unwrap()).unwrap();
    assert!(matches!(
        program.layers.last().unwrap().op,
        ksnn_formats::layer::Op::Upsample(_)
    ));
    assert_eq!(
        program.outputs[0].kind,
        ksnn_formats::OutputKind::SegmentationLogits
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_fail_with_a_precise_message() {
    for (args, expect) in [
        (&["--model", "lenet"][..], "unknown model `lenet`"),
        (
            &["--model", "mnist-cnn", "--uniform", "0x2"],
            "sides are integers",
        ),
        (&["--model", "mnist-cnn", "--approx", "5"], "give K,G"),
        (&["--model", "mnist-cnn", "--budget", "2"], "in (0, 1]"),
        (
            &[
                "--model",
                "mnist-cnn",
                "--uniform",
                "2x2",
                "--budget",
                "0.1",
            ],
            "cannot be used with",
        ),
    ] {
        let o = tools(&[&["bench", "model"][..], args].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} was accepted");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
