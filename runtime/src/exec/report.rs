//! Builds `report.json` from the three parties' records of a session: per-inference bytes,
//! rounds and seconds, and the per-layer breakdown.

use ksnn_formats::Report;
use ksnn_formats::report::{Accuracy, LayerReport, PartyBytes, PerInference, PhaseBytes, Phases};

use crate::exec::engine::Record;
use crate::exec::model::Model;
use crate::net::counting::{Phase, Stats, rounds};

/// Averages over the inferences of `records` (per party, in role order; one record per
/// inference each). Seconds per phase are P0's; per layer, the slowest party's. `setup_bytes` is the session's one-off traffic.
pub fn build(
    model: &Model,
    records: [&[Record]; 3],
    setup_bytes: u64,
    accuracy: Accuracy,
    equal_to_reference: u64,
) -> Report {
    let program = model.program;
    let count = records.iter().map(|r| r.len()).min().unwrap_or(0);
    let images = count.max(1);
    let n_layers = program.layers.len();
    let costs = program.costs().expect("validated program");
    let mut per_layer: Vec<LayerReport> = program
        .layers
        .iter()
        .zip(&costs)
        .map(|(l, c)| LayerReport {
            name: l.name.clone(),
            kind: l.op.kind().into(),
            drelus: c.drelus,
            ..Default::default()
        })
        .collect();
    let mut bytes = [0u64; 3];
    let mut phase_bytes = [0u64; 2];
    let (mut offline, mut online, mut total_rounds) = (0.0, 0.0, 0u64);
    let slowest =
        |f: &dyn Fn(&Record) -> f64, k: usize| records.iter().map(|r| f(&r[k])).fold(0.0, f64::max);
    for k in 0..count {
        let stats: Vec<&Stats> = records.iter().map(|r| &r[k].stats).collect();
        for (p, s) in stats.iter().enumerate() {
            let (off, on) = (
                s.sent_in(Phase::Offline).bytes,
                s.sent_in(Phase::Online).bytes,
            );
            bytes[p] += off + on;
            phase_bytes[0] += off;
            phase_bytes[1] += on;
        }
        let (layer_rounds, total) = rounds(&stats, Phase::Online, n_layers);
        total_rounds += u64::from(total);
        for (i, l) in per_layer.iter_mut().enumerate() {
            let slot = Some(i as u32);
            l.bytes += stats
                .iter()
                .map(|s| {
                    s.sent_at((Phase::Online, slot)).bytes + s.sent_at((Phase::Offline, slot)).bytes
                })
                .sum::<u64>();
            l.rounds += u64::from(layer_rounds[i]);
            l.seconds += slowest(&|r| r.layer_seconds.get(i).copied().unwrap_or(0.0), k);
        }
        // The client's clock: its offline phase waits for every message the helper deals, and
        // its online phase runs from sharing the input to holding the answer, so offline +
        // online is the latency a client sees. A daemon's online clock is no measure: the
        // server has no offline work and starts its online clock while P0 is still offline.
        offline += records[0][k].offline_seconds;
        online += records[0][k].online_seconds;
    }
    let n = images as u64;
    for l in &mut per_layer {
        l.bytes /= n;
        l.rounds /= n;
        l.seconds /= images as f64;
    }
    let bytes = bytes.map(|b| b / n);
    Report {
        model: program.name.clone(),
        spec_drelus: program.spec_drelus().expect("validated program"),
        images: count as u64,
        accuracy,
        secure_equals_reference: equal_to_reference,
        per_inference: PerInference {
            seconds: Phases {
                offline: offline / images as f64,
                online: online / images as f64,
                total: (offline + online) / images as f64,
            },
            bytes: PartyBytes {
                p0: bytes[0],
                p1: bytes[1],
                p2: bytes[2],
                total: bytes.iter().sum(),
            },
            phase_bytes: PhaseBytes {
                offline: phase_bytes[0] / n,
                online: phase_bytes[1] / n,
            },
            rounds: total_rounds / n,
        },
        setup_bytes,
        // Process-level facts the records do not hold: the caller fills them in.
        wall_seconds: 0.0,
        peak_rss: Default::default(),
        per_layer,
    }
}
