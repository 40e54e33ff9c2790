//! `ksnn-tools bench kernels`: the linear-layer kernels on a zoo model's real convolution
//! shapes, beside the machine's f64 GEMM rate measured in the same run.
//!
//! Rates are ring multiply-adds (on Z_2^64) per second. The same kernel serves the server's
//! online product `E⊛W`, P0's `A⊛F` and P2's `A⊛B`: all three are full ring products.
//! Rows: whole convolutions (im2col + GEMM on the best build; depthwise ones direct), the
//! GEMMs alone on every build of the same loop this CPU runs (portable, AVX2, AVX-512), with
//! `--backend cuda` whole convolutions on the device (weights resident as in a session, and
//! uploaded with each product), and plain f64 GEMMs of the same shapes (faer, all cores) as
//! the machine's reference.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use ksnn_formats::Shape;
use ksnn_formats::layer::Conv2d;
use ksnn_graph::ir::{IrOp, zoo};
use ksnn_runtime::backend::{Coeffs, ConvJob};
use ksnn_runtime::kernels::conv2d;
use ksnn_runtime::kernels::gemm::tiled;

/// One convolution of the model: its input and output shapes.
struct ConvShape {
    conv: Conv2d,
    x: Shape,
    y: Shape,
}

impl ConvShape {
    /// Ring multiply-adds of one application.
    fn macs(&self) -> f64 {
        let (m, k, n) = self.gemm_dims();
        (m * k * n) as f64 * f64::from(self.conv.groups)
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

/// Seconds of the fastest of `reps` runs.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The benchmark (module docs); `cuda` adds the CUDA device's row, or fails without one.
pub fn run(model: &str, reps: usize, cuda: bool) -> Result<()> {
    let device = if cuda {
        let line = ksnn_runtime::backend::install(ksnn_runtime::backend::BackendChoice::Cuda)
            .context("--backend cuda")?;
        println!("{line}");
        ksnn_runtime::backend::device()
    } else {
        None
    };
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
        "{model}: {} convolutions, {:.2} G multiply-adds per inference; best of {reps} runs, {} threads, best build {:?}",
        convs.len(),
        total / 1e9,
        rayon::current_num_threads(),
        tiled::Isa::best()
    );

    let mut g = ksnn_formats::example::SplitMix(0x9E37_79B9_7F4A_7C15);
    let mut r = || g.next_u64();
    let isas = tiled::Isa::available();
    let (mut conv, mut f64s, mut on_device) = (0.0, 0.0, (0.0, 0.0));
    let mut per_isa = vec![0.0; isas.len()];
    for c in &convs {
        let x: Vec<u64> = (0..c.x.elements()).map(|_| r()).collect();
        let (m, k, n) = c.gemm_dims();
        let groups = c.conv.groups as usize;
        let w: Vec<u64> = (0..m * k * groups).map(|_| r()).collect();
        conv += best(reps, || {
            std::hint::black_box(conv2d(&x, c.x, &c.conv, c.y, &w));
        });
        let col: Vec<u64> = (0..k * n).map(|_| r()).collect();
        let gemms = |isa: tiled::Isa| {
            for g in 0..groups {
                let mut out = vec![0u64; m * n];
                tiled::gemm_on(isa, &w[g * m * k..(g + 1) * m * k], &col, &mut out, m, k, n);
                std::hint::black_box(&out);
            }
        };
        for (t, &isa) in per_isa.iter_mut().zip(isas) {
            // The slow portable build once; the others best of `reps`.
            let reps = if isa == tiled::Isa::Portable { 1 } else { reps };
            *t += best(reps, || gemms(isa));
        }
        if let Some(d) = device {
            let job = ConvJob {
                op: c.conv.clone(),
                x: c.x,
                y: c.y,
            };
            let kept = d.keep(&w).with_context(|| d.describe())?;
            let run = |coeffs: Coeffs<'_>| -> Result<f64> {
                let mut failed = None;
                let t = best(reps, || {
                    match d.start(&job, &x, coeffs).and_then(|p| p.finish()) {
                        Ok(y) => drop(std::hint::black_box(y)),
                        Err(e) => failed = Some(e),
                    }
                });
                match failed {
                    Some(e) => Err(e).with_context(|| d.describe()),
                    None => Ok(t),
                }
            };
            on_device.0 += run(Coeffs {
                host: &w,
                resident: Some(&kept),
            })?;
            on_device.1 += run(w.as_slice().into())?;
        }
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
            "  {what:<50} {secs:>7.3} s  {:>6.2} G MAC/s",
            total / secs / 1e9
        );
    };
    row("whole convolutions on Z_2^64", conv);
    for (isa, t) in isas.iter().zip(per_isa).rev() {
        row(&format!("GEMMs alone on Z_2^64, {isa:?} build"), t);
    }
    if let Some(d) = device {
        println!("  on {}, inputs and outputs transferred:", d.describe());
        row("whole convolutions on CUDA, weights resident", on_device.0);
        row(
            "whole convolutions on CUDA, weights uploaded too",
            on_device.1,
        );
    }
    row("f64 GEMMs of the same shapes (faer, reference)", f64s);
    if device.is_some() {
        device_dgemm(&convs, reps, &row);
    }
    Ok(())
}

/// cuBLAS DGEMMs of the convolutions' shapes on the device, and what they imply for exact
/// ring products over 16-bit limbs (ten DGEMMs each, `kernels::gemm::limbs`): the route to
/// prefer over the u64 kernels on a device where this rate is higher.
#[cfg(feature = "cuda")]
fn device_dgemm(convs: &[ConvShape], reps: usize, row: &dyn Fn(&str, f64)) {
    let measured = ksnn_runtime::backend::cuda::Cuda::open(0).and_then(|gpu| {
        convs.iter().try_fold(0.0, |acc, c| {
            let per = gpu.dgemm_seconds(c.gemm_dims(), reps)?;
            Ok(acc + per * f64::from(c.conv.groups))
        })
    });
    match measured {
        Ok(secs) => {
            row("f64 DGEMMs of the same shapes on CUDA (cuBLAS)", secs);
            row(
                "the limb route on cuBLAS, bound (10 DGEMMs each)",
                10.0 * secs,
            );
        }
        Err(e) => println!("  f64 DGEMMs on CUDA: not measured ({e})"),
    }
}

#[cfg(not(feature = "cuda"))]
fn device_dgemm(_: &[ConvShape], _: usize, _: &dyn Fn(&str, f64)) {}
