//! `ksnn-tools bench kernels`: the linear-layer kernels on a zoo model's real convolution
//! shapes, beside the machine's f64 GEMM rate measured in the same run.
//!
//! Rates are multiply-adds of the *ring* product per second (a limb GEMM does several f64
//! multiply-adds per ring one). Rows: the server's online product `E⊛W` (weights declared
//! 16-bit), full products of two ring elements (P0's `A⊛F`, P2's `A⊛B`), the scalar `u64`
//! loop the runtime used before the limb kernels, and plain f64 GEMMs of the same shapes.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use ksnn_formats::Shape;
use ksnn_formats::layer::Conv2d;
use ksnn_graph::ir::{IrOp, zoo};
use ksnn_runtime::kernels::conv2d;
use ksnn_runtime::kernels::gemm::scalar;

/// One convolution of the model: its input and output shapes.
struct ConvShape {
    conv: Conv2d,
    x: Shape,
    y: Shape,
}

impl ConvShape {
    /// Ring multiply-adds of one application.
    fn macs(&self) -> f64 {
        let c = &self.conv;
        f64::from(c.out_channels)
            * f64::from(c.in_channels / c.groups)
            * f64::from(c.kernel[0] * c.kernel[1])
            * self.y.plane() as f64
    }
    /// The GEMM of each group: `cout_g × (cin_g·kh·kw) × OH·OW`.
    fn gemm_dims(&self) -> (usize, usize, usize) {
        let c = &self.conv;
        (
            (c.out_channels / c.groups) as usize,
            ((c.in_channels / c.groups) * c.kernel[0] * c.kernel[1]) as usize,
            self.y.plane() as usize,
        )
    }
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// Seconds of the fastest of `reps` runs.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The benchmark (module docs).
pub fn run(model: &str, reps: usize) -> Result<()> {
    let graph = zoo::build(model).with_context(|| {
        format!(
            "unknown model `{model}`; the zoo has {}",
            zoo::MODELS.join(", ")
        )
    })?;
    let shapes = graph.shapes()?;
    let convs: Vec<ConvShape> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.op {
            IrOp::Conv(c) => Some(ConvShape {
                conv: c.clone(),
                x: shapes[n.inputs[0] as usize],
                y: shapes[i + 1],
            }),
            _ => None,
        })
        .collect();
    if convs.is_empty() {
        bail!("`{model}` has no convolutions");
    }
    let total: f64 = convs.iter().map(ConvShape::macs).sum();
    println!(
        "{model}: {} convolutions, {:.2} G multiply-adds per inference; best of {reps} runs, {} threads",
        convs.len(),
        total / 1e9,
        rayon::current_num_threads()
    );

    let mut r = xorshift(0x9E37_79B9_7F4A_7C15);
    let (mut narrow, mut full, mut plain, mut f64s) = (0.0, 0.0, 0.0, 0.0);
    for c in &convs {
        let x: Vec<u64> = (0..c.x.elements()).map(|_| r()).collect();
        let (m, k, n) = c.gemm_dims();
        let wlen = m * k * c.conv.groups as usize;
        let w16: Vec<u64> = (0..wlen).map(|_| (r() as i16) as i64 as u64).collect();
        let w64: Vec<u64> = (0..wlen).map(|_| r()).collect();
        narrow += best(reps, || {
            std::hint::black_box(conv2d(&x, c.x, &c.conv, c.y, &w16, 16));
        });
        full += best(reps, || {
            std::hint::black_box(conv2d(&x, c.x, &c.conv, c.y, &w64, 64));
        });
        // The GEMMs alone (no im2col), group by group, on the old scalar loop and in f64.
        let groups = c.conv.groups as usize;
        let col: Vec<u64> = (0..k * n).map(|_| r()).collect();
        plain += best(1, || {
            for g in 0..groups {
                let mut out = vec![0u64; m * n];
                scalar(&w64[g * m * k..(g + 1) * m * k], &col, &mut out, k, n);
                std::hint::black_box(&out);
            }
        });
        let a = Mat::<f64>::from_fn(m, k, |i, j| ((i * 31 + j * 7) % 1021) as f64);
        let b = Mat::<f64>::from_fn(k, n, |i, j| ((i * 13 + j * 3) % 1019) as f64);
        let mut out = Mat::<f64>::zeros(m, n);
        f64s += best(reps, || {
            for _ in 0..groups {
                matmul(
                    out.as_mut(),
                    Accum::Replace,
                    a.as_ref(),
                    b.as_ref(),
                    1.0,
                    Par::rayon(0),
                );
            }
            std::hint::black_box(&out);
        });
    }
    let row = |what: &str, secs: f64| {
        println!(
            "  {what:<52} {secs:>7.3} s  {:>6.2} G MAC/s",
            total / secs / 1e9
        );
    };
    row("server online E⊛W, 16-bit weights (limb GEMM)", narrow);
    row("full ring products A⊛F, A⊛B (limb GEMM)", full);
    row("scalar u64 loop (before; GEMM only)", plain);
    row("f64 GEMM of the same shapes (machine reference)", f64s);
    Ok(())
}
