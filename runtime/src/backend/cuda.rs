//! The CUDA device (feature `cuda`): cudarc with dynamic loading, so nothing of CUDA is
//! needed to build or to run on a machine without it. [`Cuda::open`] checks for the driver
//! and NVRTC libraries before cudarc touches them (cudarc panics on a missing library), then
//! creates the context, compiles [`SOURCE`] with NVRTC and loads its two kernels.
//!
//! The kernels are the ring's convolution in native 64-bit arithmetic: an implicit GEMM
//! (`conv_u64`, 16×16 tiles in shared memory, the input gathered in place of an im2col
//! matrix) and a direct depthwise kernel (`depthwise_u64`). `backend::geometry::emulate` runs
//! the same index arithmetic on the CPU, tile by tile; the tests check it against
//! `kernels::conv2d`.
//!
//! Memory: a session's coefficients are uploaded once ([`Device::keep`]); the input, output
//! and per-product coefficient buffers grow to the largest layer and are reused by every
//! product after it, so a steady-state product allocates nothing on the device.

// FFI: probing the libraries and launching the kernels are `unsafe` in cudarc; each block
// says why it holds.
#![allow(unsafe_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, PushKernelArg,
};

use super::geometry::Geometry;
use super::{BackendError, Coeffs, ConvJob, Device, Pending, Resident};

/// The kernels' source (`conv_u64.cu`).
pub const SOURCE: &str = include_str!("conv_u64.cu");

/// Whether the driver library loads (without creating anything).
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the library with libloading; no CUDA call is made.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether NVRTC loads.
pub fn nvrtc_present() -> bool {
    // SAFETY: as above.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles the kernels to PTX (needs NVRTC, not a device).
pub fn compile() -> Result<cudarc::nvrtc::Ptx, BackendError> {
    if !nvrtc_present() {
        return Err(BackendError::NoDriver(
            "the NVRTC library (libnvrtc.so) is not on the loader's path".into(),
        ));
    }
    cudarc::nvrtc::compile_ptx(SOURCE).map_err(|e| BackendError::Cuda(format!("NVRTC: {e}")))
}

/// Buffers reused from product to product: each grows to the largest request and stays.
#[derive(Default)]
struct Buffers {
    x: Option<CudaSlice<u64>>,
    w: Option<CudaSlice<u64>>,
    y: Option<CudaSlice<u64>>,
}

/// `slot`, grown to at least `len` elements (by powers of two, so a model's layers settle
/// after a few products).
fn grown<'b>(
    stream: &Arc<CudaStream>,
    slot: &'b mut Option<CudaSlice<u64>>,
    len: usize,
) -> Result<&'b mut CudaSlice<u64>, DriverError> {
    if slot.as_ref().is_none_or(|b| b.len() < len) {
        *slot = None; // free the old one first
        *slot = Some(stream.alloc_zeros(len.max(1).next_power_of_two())?);
    }
    Ok(slot.as_mut().expect("just allocated"))
}

/// One device, its stream, the loaded kernels and the reusable buffers.
pub struct Cuda {
    ordinal: usize,
    name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    conv: CudaFunction,
    depthwise: CudaFunction,
    buffers: Mutex<Buffers>,
}

fn driver(e: DriverError) -> BackendError {
    BackendError::Cuda(e.to_string())
}

impl Cuda {
    /// Device `ordinal`, with the kernels compiled and loaded.
    pub fn open(ordinal: usize) -> Result<Self, BackendError> {
        if !driver_present() {
            return Err(BackendError::NoDriver(
                "the driver library (libcuda.so.1) is not on the loader's path".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| match e.0 {
            cudarc::driver::sys::CUresult::CUDA_ERROR_NO_DEVICE => {
                BackendError::NoDriver("the driver reports no CUDA device".into())
            }
            _ => driver(e),
        })?;
        let name = ctx.name().map_err(driver)?;
        let ptx = compile()?;
        let module = ctx.load_module(ptx).map_err(driver)?;
        let conv = module.load_function("conv_u64").map_err(driver)?;
        let depthwise = module.load_function("depthwise_u64").map_err(driver)?;
        let stream = ctx.default_stream();
        Ok(Cuda {
            ordinal,
            name,
            ctx,
            stream,
            conv,
            depthwise,
            buffers: Mutex::new(Buffers::default()),
        })
    }

    fn buffers(&self) -> MutexGuard<'_, Buffers> {
        // A panic elsewhere cannot leave the buffers half-valid: each product rewrites them.
        self.buffers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A product launched on the stream: its output waits in the device's `y` buffer.
struct Launched<'a> {
    stream: Arc<CudaStream>,
    buffers: MutexGuard<'a, Buffers>,
    len: usize,
}

impl Pending for Launched<'_> {
    fn finish(self: Box<Self>) -> Result<Vec<u64>, BackendError> {
        let y = self.buffers.y.as_ref().expect("allocated at launch");
        let mut out = vec![0u64; self.len];
        self.stream
            .memcpy_dtoh(&y.slice(0..self.len), &mut out)
            .map_err(driver)?;
        self.stream.synchronize().map_err(driver)?;
        Ok(out)
    }
}

impl Device for Cuda {
    fn describe(&self) -> String {
        format!("CUDA device {} ({})", self.ordinal, self.name)
    }

    fn keep(&self, w: &[u64]) -> Result<Resident, BackendError> {
        self.ctx.bind_to_thread().map_err(driver)?;
        Ok(Resident::new(self.stream.clone_htod(w).map_err(driver)?))
    }

    fn start<'a>(
        &'a self,
        job: &ConvJob,
        x: &[u64],
        w: Coeffs<'a>,
    ) -> Result<Box<dyn Pending + 'a>, BackendError> {
        let g = Geometry::of(job)?;
        let (x_len, y_len) = (g.x_len(), g.y_len());
        if x.len() != x_len || w.host.len() != g.w_len() {
            return Err(BackendError::Cuda(format!(
                "{} inputs and {} coefficients for a convolution of {x_len} and {}",
                x.len(),
                w.host.len(),
                g.w_len()
            )));
        }
        self.ctx.bind_to_thread().map_err(driver)?;
        let s = &self.stream;
        let mut guard = self.buffers();
        let b = &mut *guard;
        s.memcpy_htod(
            x,
            &mut grown(s, &mut b.x, x_len)
                .map_err(driver)?
                .slice_mut(0..x_len),
        )
        .map_err(driver)?;
        let resident = w.resident.and_then(|r| r.get::<CudaSlice<u64>>());
        let wd = match resident {
            Some(d) if d.len() == w.host.len() => d,
            _ => {
                let n = w.host.len();
                let buf = grown(s, &mut b.w, n).map_err(driver)?;
                s.memcpy_htod(w.host, &mut buf.slice_mut(0..n))
                    .map_err(driver)?;
                &*buf
            }
        };
        let yd = grown(s, &mut b.y, y_len).map_err(driver)?;
        let xd = b.x.as_ref().expect("grown above");
        let kernel = if g.depthwise() {
            &self.depthwise
        } else {
            &self.conv
        };
        let mut launch = s.launch_builder(kernel);
        launch.arg(xd).arg(wd).arg(yd).arg(&g.h).arg(&g.wd);
        if !g.depthwise() {
            launch.arg(&g.cin_g).arg(&g.cout_g);
        }
        launch
            .arg(&g.kh)
            .arg(&g.kw)
            .arg(&g.sh)
            .arg(&g.sw)
            .arg(&g.dh)
            .arg(&g.dw)
            .arg(&g.pt)
            .arg(&g.pl)
            .arg(&g.oh)
            .arg(&g.ow);
        // SAFETY: the arguments are the kernel's, in its order; it reads x_len inputs and
        // w_len coefficients and writes y_len outputs (checked above), within the buffers.
        let (grid_dim, block_dim) = g.grid();
        let cfg = LaunchConfig {
            grid_dim,
            block_dim,
            shared_mem_bytes: 0,
        };
        unsafe { launch.launch(cfg) }.map_err(driver)?;
        drop(launch);
        Ok(Box::new(Launched {
            stream: s.clone(),
            buffers: guard,
            len: y_len,
        }))
    }
}

impl Cuda {
    /// Seconds of the fastest of `reps` cuBLAS DGEMMs `m×k · k×n` on operands already on the
    /// device: the rate that exact f64 GEMMs over 16-bit limbs (`kernels::gemm::limbs`, ten
    /// DGEMMs per ring product) would build on, so a benchmark can say whether that route
    /// would beat the u64 kernels on this device. Needs `libcublas.so`.
    pub fn dgemm_seconds(
        &self,
        (m, k, n): (usize, usize, usize),
        reps: usize,
    ) -> Result<f64, BackendError> {
        use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
        // SAFETY: only tries to open the library.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(BackendError::NoDriver(
                "the cuBLAS library (libcublas.so) is not on the loader's path".into(),
            ));
        }
        let int =
            |v: usize| i32::try_from(v).map_err(|_| BackendError::Cuda(format!("{v} over 2^31")));
        let blas = |e: cudarc::cublas::result::CublasError| BackendError::Cuda(format!("{e:?}"));
        self.ctx.bind_to_thread().map_err(driver)?;
        let s = &self.stream;
        let handle = CudaBlas::new(s.clone()).map_err(blas)?;
        let a = s.alloc_zeros::<f64>(m * k).map_err(driver)?;
        let b = s.alloc_zeros::<f64>(k * n).map_err(driver)?;
        let mut c = s.alloc_zeros::<f64>(m * n).map_err(driver)?;
        // Column-major m×n = (m×k)(k×n); the values do not change the time.
        let cfg = GemmConfig {
            transa: cublasOperation_t::CUBLAS_OP_N,
            transb: cublasOperation_t::CUBLAS_OP_N,
            m: int(m)?,
            n: int(n)?,
            k: int(k)?,
            alpha: 1.0,
            lda: int(m)?,
            ldb: int(k)?,
            beta: 0.0,
            ldc: int(m)?,
        };
        let mut fastest = f64::INFINITY;
        for _ in 0..reps.max(1) {
            let t = std::time::Instant::now();
            // SAFETY: a is m×k, b k×n, c m×n with the leading dimensions given.
            unsafe { handle.gemm(cfg, &a, &b, &mut c) }.map_err(blas)?;
            s.synchronize().map_err(driver)?;
            fastest = fastest.min(t.elapsed().as_secs_f64());
        }
        Ok(fastest)
    }
}
