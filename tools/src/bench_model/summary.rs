//! The readable summary of a `bench model` run, from its report.json.

use std::collections::BTreeMap;
use std::fmt::Write;

use ksnn_formats::Report;
use ksnn_formats::report::LayerReport;

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| {
        format!("{:.0} MiB", b as f64 / f64::from(1 << 20))
    })
}

/// Per inference, throughput, traffic, rounds, top layers, totals per kind, memory and the
/// reference check. `local_seconds` is the wall time of the whole `ksnn-party local`
/// (certificates, start-up and the reference check included).
pub fn text(r: &Report, local_seconds: f64) -> String {
    let mut s = String::new();
    let p = &r.per_inference;
    let _ = writeln!(
        s,
        "per inference: {:.3} s ({:.3} offline + {:.3} online), {:.2} MB ({:.2} offline + {:.2} online; P0 {:.2}, P1 {:.2}, P2 {:.2}), {} rounds",
        p.seconds.total,
        p.seconds.offline,
        p.seconds.online,
        mb(p.bytes.total),
        mb(p.phase_bytes.offline),
        mb(p.phase_bytes.online),
        mb(p.bytes.p0),
        mb(p.bytes.p1),
        mb(p.bytes.p2),
        p.rounds
    );
    let throughput = if r.wall_seconds > 0.0 {
        format!("{:.3} inferences/s", r.images as f64 / r.wall_seconds)
    } else {
        "unknown".into()
    };
    let _ = writeln!(
        s,
        "session: {} inferences in {:.2} s ({throughput}), {:.2} MB of set-up; ksnn-party local took {local_seconds:.1} s in all",
        r.images,
        r.wall_seconds,
        mb(r.setup_bytes)
    );
    let m = &r.peak_rss;
    let _ = writeln!(
        s,
        "peak RSS: P0 {}, P1 {}, P2 {}",
        mib(m.p0),
        mib(m.p1),
        mib(m.p2)
    );

    let header = format!(
        "  {:<22} {:<16} {:>10} {:>10} {:>6} {:>9}",
        "layer", "kind", "DReLUs", "MB", "rounds", "seconds"
    );
    let row = |s: &mut String, name: &str, l: &LayerReport| {
        let _ = writeln!(
            s,
            "  {:<22} {:<16} {:>10} {:>10.2} {:>6} {:>9.4}",
            name,
            l.kind,
            l.drelus,
            mb(l.bytes),
            l.rounds,
            l.seconds
        );
    };
    let mut top: Vec<&LayerReport> = r.per_layer.iter().collect();
    top.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let _ = writeln!(
        s,
        "slowest layers (online seconds per inference):\n{header}"
    );
    for l in top.iter().take(10) {
        row(&mut s, &l.name, l);
    }

    let mut kinds: BTreeMap<&str, (usize, LayerReport)> = BTreeMap::new();
    for l in &r.per_layer {
        let (n, t) = kinds.entry(&l.kind).or_insert_with(|| {
            (
                0,
                LayerReport {
                    kind: l.kind.clone(),
                    ..Default::default()
                },
            )
        });
        *n += 1;
        t.drelus += l.drelus;
        t.bytes += l.bytes;
        t.rounds += l.rounds;
        t.seconds += l.seconds;
    }
    let mut kinds: Vec<_> = kinds.into_values().collect();
    kinds.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    let _ = writeln!(s, "per kind:\n{header}");
    for (n, t) in &kinds {
        row(&mut s, &format!("({n} layers)"), t);
    }
    let _ = writeln!(
        s,
        "secure = reference: {}/{}",
        r.secure_equals_reference, r.images
    );
    s
}
