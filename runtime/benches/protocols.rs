//! `cargo bench -p ksnn-runtime`: DReLU throughput (three parties, in-memory network; securenn,
//! and fss with its dealing), the
//! ring convolution kernel (64→64 channels, 3×3, on 32×32), and DCF key generation and
//! evaluation (one core, 64- and 16-bit inputs) with the AES and ChaCha PRGs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksnn_formats::layer::{Conv2d, Padding};
use ksnn_formats::{DreluProtocol, ProtocolConfig, Shape};
use ksnn_runtime::kernels::conv2d;
use ksnn_runtime::protocol::drelu::drelu;
use ksnn_runtime::role::Role;
use ksnn_runtime::testing::run3;

fn three_party_drelu(n: usize, config: ProtocolConfig) {
    let values: Vec<u64> = (0..n as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    run3(config, |p| {
        let x: &[u64] = if p.role == Role::Helper { &[] } else { &values };
        drelu(p, x, n).unwrap();
    });
}

fn drelu_bench(c: &mut Criterion) {
    let n = 100_000;
    let mut g = c.benchmark_group("drelu");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("securenn 64-bit, batch 1e5, 3 parties", |b| {
        b.iter(|| three_party_drelu(n, ProtocolConfig::default()))
    });
    let fss = ProtocolConfig {
        drelu: DreluProtocol::Fss,
        ..Default::default()
    };
    // Both passes: the helper's dealing and the keys' transfer, then the opening and the
    // evaluations.
    g.bench_function("fss 64-bit, batch 1e5, 3 parties, offline + online", |b| {
        b.iter(|| three_party_drelu(n, fss))
    });
    g.finish();
}

fn conv_bench(c: &mut Criterion) {
    let op = Conv2d {
        in_channels: 64,
        out_channels: 64,
        kernel: [3, 3],
        stride: [1, 1],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
        bias: false,
    };
    let s = Shape::new(64, 32, 32);
    let x: Vec<u64> = (0..s.elements())
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let w: Vec<u64> = (0..64 * 64 * 9u64)
        .map(|i| i.wrapping_mul(0x7F4A_7C15))
        .collect();
    let mut g = c.benchmark_group("conv");
    g.sample_size(10);
    g.throughput(Throughput::Elements(64 * 64 * 9 * 32 * 32));
    g.bench_function("u64 64x64x3x3 on 32x32 (MACs)", |b| {
        b.iter(|| conv2d(&x, s, &op, s, &w))
    });
    g.finish();
}

/// Keys and evaluations per second on one core: an iteration deals (or evaluates) a batch of
/// 64 keys the way the protocol does, [`LANES`](ksnn_runtime::fss::prg::LANES) in step, and
/// criterion's throughput counts keys.
fn dcf_bench(c: &mut Criterion) {
    use ksnn_runtime::fss::dcf::{Function, KeyRef, Output, Side, deal_many, eval_many, key_bytes};
    use ksnn_runtime::fss::prg::{AesPrg, ChaChaPrg, Prg};
    const BATCH: usize = 64;
    fn run(c: &mut Criterion, name: &str, prg: &impl Prg) {
        let mut g = c.benchmark_group(format!("dcf {name}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        // The stand-alone DReLU's keys (ring outputs) and the select's (bit outputs).
        for (n, output) in [
            (63u32, Output::Ring),
            (63, Output::Bit),
            (15, Output::Ring),
            (15, Output::Bit),
        ] {
            let m = ksnn_runtime::prf::mask(n);
            let kb = key_bytes(n, output);
            let fs: Vec<Function> = (0..BATCH as u64)
                .map(|k| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) & m, 1, Side::Below))
                .collect();
            let mut root = 1u128;
            let mut words = vec![0u8; BATCH * kb];
            g.bench_function(format!("deal {n}-bit {output:?}"), |b| {
                b.iter(|| {
                    root = root.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
                    let roots: Vec<[u128; 2]> =
                        (0..BATCH as u128).map(|k| [root ^ k, !root ^ k]).collect();
                    words.iter_mut().for_each(|b| *b = 0);
                    deal_many(prg, (n, output), &fs, &roots, &mut words);
                })
            });
            let keys: Vec<KeyRef> = (0..BATCH)
                .map(|k| KeyRef {
                    party: 0,
                    seed: k as u128 + 3,
                    bits: n,
                    output,
                    corrections: &words[k * kb..(k + 1) * kb],
                })
                .collect();
            let mut x = 0u64;
            let mut out = vec![0u64; BATCH];
            g.bench_function(format!("eval {n}-bit {output:?}"), |b| {
                b.iter(|| {
                    let xs: Vec<u64> = (0..BATCH)
                        .map(|_| {
                            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                            x & m
                        })
                        .collect();
                    eval_many(prg, &keys, &xs, &mut out);
                })
            });
        }
        g.finish();
    }
    run(c, "aes", &AesPrg::default());
    run(c, "chacha12", &ChaChaPrg);
}

criterion_group!(benches, drelu_bench, conv_bench, dcf_bench);
criterion_main!(benches);
