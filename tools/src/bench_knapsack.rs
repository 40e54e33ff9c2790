//! `ksnn-tools bench knapsack`: the knapsack solvers at the seed's real scale (docs/original.md §3.3,
//! §3.5): one row per channel of every ReLU layer, the layer's candidate block sizes as
//! options (weight = DReLUs, value = synthetic −distortion), the README's 6% budgets.

use std::time::Instant;

use anyhow::{Result, ensure};
use ksnn_knapsack::{Problem, exact, lagrangian};

use crate::synthetic::{self, ReluShape};

/// One network: (layer, channels, square activation dim) in LAYER_NAMES order (§3.5), and
/// §3.3's totals the table must reproduce.
struct Net {
    name: &'static str,
    layers: &'static [(&'static str, u64, u32)],
    channels: u64,
    drelus: u64,
    budget: u64,
}

#[rustfmt::skip]
const R18: &[(&str, u64, u32)] = &[
    ("stem", 64, 32), ("layer1_0_1", 64, 32), ("layer1_0_2", 64, 32), ("layer1_1_1", 64, 32),
    ("layer1_1_2", 64, 32), ("layer2_0_1", 128, 16), ("layer2_0_2", 128, 16),
    ("layer2_1_1", 128, 16), ("layer2_1_2", 128, 16), ("layer3_0_1", 256, 8),
    ("layer3_0_2", 256, 8), ("layer3_1_1", 256, 8), ("layer3_1_2", 256, 8),
    ("layer4_0_1", 512, 4), ("layer4_0_2", 512, 4), ("layer4_1_1", 512, 4),
    ("layer4_1_2", 512, 4),
];
#[rustfmt::skip]
const R50: &[(&str, u64, u32)] = &[
    ("stem", 64, 112), ("layer1_0_1", 64, 56), ("layer1_0_2", 64, 56), ("layer1_0_3", 256, 56),
    ("layer1_1_1", 64, 56), ("layer1_1_2", 64, 56), ("layer1_1_3", 256, 56),
    ("layer1_2_1", 64, 56), ("layer1_2_2", 64, 56), ("layer1_2_3", 256, 56),
    ("layer2_0_1", 128, 56), ("layer2_0_2", 128, 28), ("layer2_0_3", 512, 28),
    ("layer2_1_1", 128, 28), ("layer2_1_2", 128, 28), ("layer2_1_3", 512, 28),
    ("layer2_2_1", 128, 28), ("layer2_2_2", 128, 28), ("layer2_2_3", 512, 28),
    ("layer2_3_1", 128, 28), ("layer2_3_2", 128, 28), ("layer2_3_3", 512, 28),
    ("layer3_0_1", 256, 28), ("layer3_0_2", 256, 14), ("layer3_0_3", 1024, 14),
    ("layer3_1_1", 256, 14), ("layer3_1_2", 256, 14), ("layer3_1_3", 1024, 14),
    ("layer3_2_1", 256, 14), ("layer3_2_2", 256, 14), ("layer3_2_3", 1024, 14),
    ("layer3_3_1", 256, 14), ("layer3_3_2", 256, 14), ("layer3_3_3", 1024, 14),
    ("layer3_4_1", 256, 14), ("layer3_4_2", 256, 14), ("layer3_4_3", 1024, 14),
    ("layer3_5_1", 256, 14), ("layer3_5_2", 256, 14), ("layer3_5_3", 1024, 14),
    ("layer4_0_1", 512, 14), ("layer4_0_2", 512, 7), ("layer4_0_3", 2048, 7),
    ("layer4_1_1", 512, 7), ("layer4_1_2", 512, 7), ("layer4_1_3", 2048, 7),
    ("layer4_2_1", 512, 7), ("layer4_2_2", 512, 7), ("layer4_2_3", 2048, 7),
];
#[rustfmt::skip]
const VOC: &[(&str, u64, u32)] = &[
    ("stem_2", 32, 256), ("stem_5", 32, 256), ("stem_8", 64, 256), ("layer1_0_1", 64, 128),
    ("layer1_0_2", 64, 128), ("layer1_0_3", 256, 128), ("layer1_1_1", 64, 128),
    ("layer1_1_2", 64, 128), ("layer1_1_3", 256, 128), ("layer1_2_1", 64, 128),
    ("layer1_2_2", 64, 128), ("layer1_2_3", 256, 128), ("layer2_0_1", 128, 128),
    ("layer2_0_2", 128, 64), ("layer2_0_3", 512, 64), ("layer2_1_1", 128, 64),
    ("layer2_1_2", 128, 64), ("layer2_1_3", 512, 64), ("layer2_2_1", 128, 64),
    ("layer2_2_2", 128, 64), ("layer2_2_3", 512, 64), ("layer2_3_1", 128, 64),
    ("layer2_3_2", 128, 64), ("layer2_3_3", 512, 64), ("layer3_0_1", 256, 64),
    ("layer3_0_2", 256, 64), ("layer3_0_3", 1024, 64), ("layer3_1_1", 256, 64),
    ("layer3_1_2", 256, 64), ("layer3_1_3", 1024, 64), ("layer3_2_1", 256, 64),
    ("layer3_2_2", 256, 64), ("layer3_2_3", 1024, 64), ("layer3_3_1", 256, 64),
    ("layer3_3_2", 256, 64), ("layer3_3_3", 1024, 64), ("layer3_4_1", 256, 64),
    ("layer3_4_2", 256, 64), ("layer3_4_3", 1024, 64), ("layer3_5_1", 256, 64),
    ("layer3_5_2", 256, 64), ("layer3_5_3", 1024, 64), ("layer4_0_1", 512, 64),
    ("layer4_0_2", 512, 64), ("layer4_0_3", 2048, 64), ("layer4_1_1", 512, 64),
    ("layer4_1_2", 512, 64), ("layer4_1_3", 2048, 64), ("layer4_2_1", 512, 64),
    ("layer4_2_2", 512, 64), ("layer4_2_3", 2048, 64), ("decode_0", 512, 1),
    ("decode_1", 512, 64), ("decode_2", 512, 64), ("decode_3", 512, 64), ("decode_4", 512, 64),
    ("decode_5", 512, 64),
];

const NETS: &[Net] = &[
    Net {
        name: "ResNet18-CIFAR",
        layers: R18,
        channels: 3_904,
        drelus: 557_056,
        budget: 33_423,
    },
    Net {
        name: "ResNet50-ImageNet",
        layers: R50,
        channels: 22_720,
        drelus: 9_608_704,
        budget: 576_522,
    },
    Net {
        name: "DeepLabV3-ResNet50-VOC",
        layers: VOC,
        channels: 25_856,
        drelus: 127_402_496,
        budget: 7_644_149,
    },
];

/// The exact DP runs only below this many merged options × budget cells (per pass).
const EXACT_CELLS: f64 = 1e10;

/// The net's synthetic instance (square maps).
fn instance(net: &Net, seed: u64) -> Problem {
    let layers: Vec<ReluShape> = net
        .layers
        .iter()
        .map(|&(_, channels, dim)| ReluShape {
            decisions: 1,
            channels,
            h: dim,
            w: dim,
        })
        .collect();
    synthetic::instance(&layers, seed).problem
}

/// (current RSS, peak RSS since the last reset) in bytes; 0 where unknown.
fn rss() -> (u64, u64) {
    use ksnn_runtime::memory::{self, Process};
    (
        memory::rss(Process::This).unwrap_or(0),
        memory::peak_rss(Process::This).unwrap_or(0),
    )
}

/// Resets VmHWM to the current RSS so the next peak is the solver's (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// `exact_all`: also run the exact DP where it takes minutes to hours.
pub fn run(seed: u64, exact_all: bool) -> Result<()> {
    // Merged options × budget per second, from the exact runs so far, for estimates.
    let mut rate: Option<f64> = None;
    for net in NETS {
        let rows: u64 = net.layers.iter().map(|l| l.1).sum();
        let drelus: u64 = net.layers.iter().map(|l| l.1 * u64::from(l.2 * l.2)).sum();
        ensure!(
            rows == net.channels && drelus == net.drelus,
            "{}: layer table gives {rows} channels / {drelus} DReLUs, docs/original.md §3.3 says {} / {}",
            net.name,
            net.channels,
            net.drelus
        );
        let t = Instant::now();
        let problem = instance(net, seed);
        let options: usize = problem.rows.iter().map(|r| r.options.len()).sum();
        let merged: usize = problem
            .merged()
            .problem
            .rows
            .iter()
            .map(|r| r.options.len())
            .sum();
        let build = t.elapsed().as_secs_f64();
        println!("{}", net.name);
        println!(
            "  rows {rows}, layers {}, DReLUs {drelus}, options {options} ({merged} after merging, {:.1}/row), budget {} ({:.2}%), built in {build:.2} s",
            net.layers.len(),
            merged as f64 / rows as f64,
            net.budget,
            100.0 * net.budget as f64 / drelus as f64
        );

        let can_reset = reset_peak();
        let (before, _) = rss();
        let t = Instant::now();
        let b = lagrangian(&problem, net.budget)?;
        let secs = t.elapsed().as_secs_f64();
        let (_, peak) = rss();
        ensure!(b.solution.weight <= net.budget, "over budget");
        let rel = b.gap / b.upper_bound.abs().max(f64::MIN_POSITIVE);
        println!(
            "  lagrangian: {secs:.3} s, peak RSS {:.0} MiB{} (RSS before {:.0} MiB), weight {}, value {:.6}, upper bound {:.6}, gap {:.3e} (relative {rel:.2e})",
            mib(peak),
            if can_reset { "" } else { " (process peak)" },
            mib(before),
            b.solution.weight,
            b.solution.value,
            b.upper_bound,
            b.gap
        );
        if net.name.contains("VOC") {
            let met = secs < 10.0 && peak < (2 << 30) && rel <= 1e-4;
            println!(
                "  target (< 10 s, < 2 GiB, relative gap ≤ 1e-4): {}",
                if met { "met" } else { "NOT met" }
            );
        }

        let cells = merged as f64 * net.budget as f64;
        if exact_all || cells <= EXACT_CELLS {
            reset_peak();
            let t = Instant::now();
            let s = exact(&problem, net.budget)?;
            let secs = t.elapsed().as_secs_f64();
            let (_, peak) = rss();
            rate.get_or_insert(cells / secs);
            ensure!(s.weight <= net.budget, "over budget");
            ensure!(
                s.value >= b.solution.value - 1e-9 && s.value <= b.upper_bound + 1e-9,
                "exact {} outside [lagrangian {}, bound {}]",
                s.value,
                b.solution.value,
                b.upper_bound
            );
            println!(
                "  exact DP:   {secs:.3} s, peak RSS {:.0} MiB, weight {}, value {:.6}; lagrangian is {:.3e} below the optimum ({:.1}% of its certified gap)",
                mib(peak),
                s.weight,
                s.value,
                s.value - b.solution.value,
                100.0 * (s.value - b.solution.value) / b.gap.max(f64::MIN_POSITIVE)
            );
        } else {
            let estimate = rate.map_or(String::new(), |r| {
                format!(", ≈ {:.0} s at the first instance's rate", cells / r)
            });
            println!(
                "  exact DP:   skipped (rows×options×budget = {cells:.2e}{estimate}; --exact runs it)"
            );
        }
    }
    Ok(())
}
