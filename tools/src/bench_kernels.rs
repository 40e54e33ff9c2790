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
use ksnn_graph::ir::{IrOp, zoo};
use ksnn_runtime::backend::ConvJob;
use ksnn_runtime::kernels::conv2d;
use ksnn_runtime::kernels::gemm::tiled;

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

/// The benchmark (module docs); `cuda` adds the CUDA device's rows, or fails without one.
pub fn run(model: &str, reps: usize, cuda: bool) -> Result<()> {
    let gpu = if cuda { Some(gpu::open()?) } else { None };
    let graph = zoo::build(model).with_context(|| {
        format!(
            "unknown model `{model}`; the zoo has {}",
            zoo::MODELS.join(", ")
        )
    })?;
    let shapes = graph.shapes()?;
    let convs: Vec<ConvJob> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.op {
            IrOp::Conv(c) => Some(ConvJob {
                op: c.clone(),
                x: shapes[n.inputs[0] as usize],
                y: shapes[i + 1],
            }),
            _ => None,
        })
        .collect();
    if convs.is_empty() {
        bail!("`{model}` has no convolutions");
    }
    let total: f64 = convs.iter().map(|c| c.macs() as f64).sum();
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
    let (mut conv, mut f64s) = (0.0, 0.0);
    let mut per_isa = vec![0.0; isas.len()];
    for c in &convs {
        let x: Vec<u64> = (0..c.x.elements()).map(|_| r()).collect();
        let (m, k, n) = c.gemm_dims();
        let groups = c.op.groups as usize;
        let w: Vec<u64> = (0..c.w_len()).map(|_| r()).collect();
        conv += best(reps, || {
            std::hint::black_box(conv2d(&x, c.x, &c.op, c.y, &w));
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
    row("f64 GEMMs of the same shapes (faer, reference)", f64s);
    if let Some(gpu) = gpu {
        gpu::rows(&gpu, &convs, reps, &row)?;
    }
    Ok(())
}

/// The device's rows (feature `cuda`).
#[cfg(feature = "cuda")]
mod gpu {
    use anyhow::{Context, Result};
    use ksnn_runtime::backend::cuda::{Cuda, Route};
    use ksnn_runtime::backend::{Coeffs, ConvJob, Device};

    use super::best;

    /// Device 0, said in one line (its opening check and route choice included).
    pub fn open() -> Result<Cuda> {
        let gpu = Cuda::open(0).context("--backend cuda")?;
        println!("{}", gpu.describe());
        Ok(gpu)
    }

    /// Whole convolutions on the device by each route (weights resident as in a session,
    /// and uploaded with each product), inputs and outputs transferred; then cuBLAS DGEMMs
    /// of the same shapes, the f64 rate the limb route builds on.
    pub fn rows(gpu: &Cuda, convs: &[ConvJob], reps: usize, row: &dyn Fn(&str, f64)) -> Result<()> {
        let mut g = ksnn_formats::example::SplitMix(0x5EED);
        let chosen = gpu.route();
        for route in [Route::U64, Route::Limbs] {
            if let Err(e) = gpu.set_route(route) {
                println!("  {route:?} route on CUDA: not measured ({e})");
                continue;
            }
            let (mut resident, mut uploaded) = (0.0, 0.0);
            for job in convs {
                let x: Vec<u64> = (0..job.x.elements()).map(|_| g.next_u64()).collect();
                let w: Vec<u64> = (0..job.w_len()).map(|_| g.next_u64()).collect();
                let kept = gpu.keep(&w).with_context(|| gpu.describe())?;
                let time = |coeffs: Coeffs<'_>| -> Result<f64> {
                    let mut failed = None;
                    let t = best(reps, || {
                        match gpu.start(job, &x, coeffs).and_then(|p| p.finish()) {
                            Ok(y) => drop(std::hint::black_box(y)),
                            Err(e) => failed = Some(e),
                        }
                    });
                    match failed {
                        Some(e) => Err(e).with_context(|| gpu.describe()),
                        None => Ok(t),
                    }
                };
                resident += time(Coeffs {
                    host: &w,
                    resident: Some(&kept),
                })?;
                uploaded += time(w.as_slice().into())?;
            }
            let name = match route {
                Route::U64 => "u64 kernels",
                Route::Limbs => "cuBLAS limbs",
            };
            row(&format!("on CUDA, {name}, weights resident"), resident);
            row(&format!("on CUDA, {name}, weights uploaded too"), uploaded);
        }
        gpu.set_route(chosen)?;
        let dgemm = convs.iter().try_fold(0.0, |acc, c| {
            let per = gpu.dgemm_seconds(c.gemm_dims(), reps)?;
            Ok::<_, ksnn_runtime::backend::BackendError>(acc + per * f64::from(c.op.groups))
        });
        match dgemm {
            Ok(secs) => row("f64 DGEMMs of the same shapes on CUDA (cuBLAS)", secs),
            Err(e) => println!("  f64 DGEMMs on CUDA: not measured ({e})"),
        }
        Ok(())
    }
}

/// Without the `cuda` feature `--backend cuda` is an error.
#[cfg(not(feature = "cuda"))]
mod gpu {
    use anyhow::{Result, bail};

    /// Never a device.
    pub enum Never {}

    pub fn open() -> Result<Never> {
        bail!("--backend cuda: this ksnn-tools was built without the `cuda` feature")
    }

    pub fn rows(gpu: &Never, _: &[super::ConvJob], _: usize, _: &dyn Fn(&str, f64)) -> Result<()> {
        match *gpu {}
    }
}
