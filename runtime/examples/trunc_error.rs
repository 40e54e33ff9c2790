//! Measures both truncation kinds over many values of realistic magnitude and prints the
//! error rates (the runtime README quotes them).
//!
//! `cargo run --release -p ksnn-runtime --example trunc_error -- [N]` (default 10^7).

use std::time::{Duration, Instant};

use ksnn_formats::{ProtocolConfig, Truncation};
use ksnn_runtime::exec::local::on_three_with;
use ksnn_runtime::net::counting::{CountingTransport, Phase};
use ksnn_runtime::prf::{Addr, Keys, Label, Purpose, Scope};
use ksnn_runtime::protocol::Party;
use ksnn_runtime::protocol::trunc::{local_shift, truncate};
use ksnn_runtime::ring::trunc_exact;
use ksnn_runtime::role::{Pair, Role};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10_000_000, |s| s.parse().expect("N"));
    let f = 12;
    let [k0, ..] = Keys::random_triple();
    let mut st = k0.stream(
        Pair::ClientServer,
        &Addr::root(Scope::Session),
        Purpose::InputShare,
    );
    // Products of realistic activations and weights at 2f = 24 fractional bits: reals in
    // about ±64 (|y| < 2^30), with a random split into shares.
    let raw: Vec<u64> = st.ring(n);
    let values: Vec<u64> = raw.iter().map(|&v| ((v as i64) >> 34) as u64).collect();
    let r: Vec<u64> = st.ring(n);

    // Local shift at two magnitudes: realistic (|y| < 2^30) and large (|y| < 2^50), where the
    // rare wrap error, probability about |y|/2^64, becomes visible.
    for shift in [34u32, 14] {
        let t = Instant::now();
        let (mut off_by_one, mut large) = (0u64, 0u64);
        for (v, r0) in raw.iter().zip(&r) {
            let v = ((*v as i64) >> shift) as u64;
            let y0 = *r0;
            let y1 = v.wrapping_sub(y0);
            let got =
                local_shift(Role::Client, y0, f).wrapping_add(local_shift(Role::Server, y1, f));
            match got.wrapping_sub(trunc_exact(v, f)) as i64 {
                0 => {}
                1 | -1 => off_by_one += 1,
                _ => large += 1,
            }
        }
        println!(
            "local shift : {n} values |y| < 2^{}: exact {:.4}%, off by one LSB {:.4}%, large errors {large} ({:.2e}); {:.2} s",
            64 - shift,
            100.0 * (n as u64 - off_by_one - large) as f64 / n as f64,
            100.0 * off_by_one as f64 / n as f64,
            large as f64 / n as f64,
            t.elapsed().as_secs_f64()
        );
    }

    // Helper-exact: the real three-party protocol, in batches.
    let t = Instant::now();
    let batch = 1 << 18;
    let keys = Keys::random_triple();
    let results = on_three_with(&keys, Duration::from_secs(600), |k, net| {
        let mut net = CountingTransport::new(net);
        net.start_phase(Phase::Online);
        let config = ProtocolConfig {
            truncation: Truncation::HelperExact,
            ..Default::default()
        };
        let mut out = Vec::new();
        for (b, chunk) in values.chunks(batch).enumerate() {
            let mut p = Party {
                role: k.role(),
                keys: k,
                net: &mut net,
                at: Addr::root(Scope::Inference(b as u64)).child(Label::Layer(0)),
                config,
                frac_bits: f as u8,
            };
            let share: Vec<u64> = match k.role() {
                Role::Client => r[b * batch..b * batch + chunk.len()].to_vec(),
                Role::Server => chunk
                    .iter()
                    .zip(&r[b * batch..])
                    .map(|(v, r0)| v.wrapping_sub(*r0))
                    .collect(),
                Role::Helper => Vec::new(),
            };
            out.extend(truncate(&mut p, share, chunk.len()).unwrap());
        }
        out
    });
    let wrong = values
        .iter()
        .zip(results[0].iter().zip(&results[1]))
        .filter(|(v, (a, b))| a.wrapping_add(**b) != trunc_exact(**v, f))
        .count();
    println!(
        "helper exact: {n} values: {wrong} differ from floor(y / 2^f); {:.1} s for the three parties",
        t.elapsed().as_secs_f64()
    );
}
