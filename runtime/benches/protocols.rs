//! `cargo bench -p ksnn-runtime`: DReLU throughput (three parties, in-memory network) and
//! the ring convolution kernel, 64→64 channels, 3×3, on 32×32.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksnn_formats::layer::{Conv2d, Padding};
use ksnn_formats::{ProtocolConfig, Shape};
use ksnn_runtime::kernels::conv2d;
use ksnn_runtime::net::counting::{CountingTransport, Phase};
use ksnn_runtime::net::mem;
use ksnn_runtime::prf::Keys;
use ksnn_runtime::prf::{Addr, Label, Scope};
use ksnn_runtime::protocol::Party;
use ksnn_runtime::protocol::drelu::drelu;

fn three_party_drelu(n: usize) {
    let keys = Keys::random_triple();
    let nets = mem::triple(Duration::from_secs(60));
    let values: Vec<u64> = (0..n as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    std::thread::scope(|s| {
        for (net, k) in nets.into_iter().zip(&keys) {
            let values = &values;
            s.spawn(move || {
                let mut net = CountingTransport::new(net);
                net.start_phase(Phase::Online);
                let mut p = Party {
                    role: k.role(),
                    keys: k,
                    net: &mut net,
                    at: Addr::root(Scope::Inference(0)).child(Label::Layer(0)),
                    config: ProtocolConfig::default(),
                    frac_bits: 12,
                };
                let x: &[u64] = if k.role() == ksnn_runtime::role::Role::Helper {
                    &[]
                } else {
                    values
                };
                drelu(&mut p, x, n).unwrap();
            });
        }
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

criterion_group!(benches, drelu_bench, conv_bench);
criterion_main!(benches);
