//! `cargo bench -p ksnn-runtime`: DReLU throughput (three parties, in-memory network), the
//! ring convolution kernel (64→64 channels, 3×3, on 32×32), and DCF key generation and
//! evaluation (one core, 64- and 16-bit inputs) with the AES and ChaCha PRGs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksnn_formats::layer::{Conv2d, Padding};
use ksnn_formats::{ProtocolConfig, Shape};
use ksnn_runtime::kernels::conv2d;
use ksnn_runtime::protocol::drelu::drelu;
use ksnn_runtime::role::Role;
use ksnn_runtime::testing::run3;

fn three_party_drelu(n: usize) {
    let values: Vec<u64> = (0..n as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    run3(ProtocolConfig::default(), |p| {
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
        b.iter(|| three_party_drelu(n))
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

/// Keys and evaluations per second on one core: criterion's throughput is per iteration, and
/// an iteration deals (or evaluates) one key.
fn dcf_bench(c: &mut Criterion) {
    use ksnn_runtime::fss::dcf::{deal, eval};
    use ksnn_runtime::fss::prg::{AesPrg, ChaChaPrg, Prg};
    fn run(c: &mut Criterion, name: &str, prg: &impl Prg) {
        let mut g = c.benchmark_group(format!("dcf {name}"));
        g.throughput(Throughput::Elements(1));
        for n in [64u32, 16] {
            let alpha = 0x5555_5555_5555_5555 & ksnn_runtime::prf::mask(n);
            let mut root = 1u128;
            g.bench_function(format!("deal {n}-bit"), |b| {
                b.iter(|| {
                    root = root.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
                    deal(prg, n, alpha, 1, [root, !root])
                })
            });
            let keys = deal(prg, n, alpha, 1, [3, 5]);
            let mut x = 0u64;
            g.bench_function(format!("eval {n}-bit"), |b| {
                b.iter(|| {
                    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15) & ksnn_runtime::prf::mask(n);
                    eval(prg, &keys[0], x)
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
