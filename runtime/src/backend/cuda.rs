//! The CUDA device (feature `cuda`): cudarc with dynamic loading, so nothing of CUDA is
//! needed to build or to run on a machine without it. [`Cuda::open`] checks for the driver
//! and NVRTC libraries before cudarc touches them (cudarc panics on a missing library), then
//! creates the context, compiles [`GEMM_U64`] with NVRTC and loads it.
//!
//! The kernel is the ring product itself in native 64-bit arithmetic, tiled in shared memory:
//! [`emulate`] is the same tiling on the CPU, and the tests check it against the u64 loop.
//! The exact f64 route over 16-bit limbs (`kernels::gemm::limbs`) is the alternative for
//! cuBLAS; `docs/gpu.md` says which to measure.

// FFI: probing the libraries and launching the kernel are `unsafe` in cudarc; each block says
// why it holds.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};

use super::{BackendError, Device};

/// The kernel's source (`gemm_u64.cu`).
pub const GEMM_U64: &str = include_str!("gemm_u64.cu");

/// The kernel's tile side (its `TILE`).
pub const TILE: usize = 16;

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

/// Compiles the kernel to PTX (needs NVRTC, not a device).
pub fn compile() -> Result<cudarc::nvrtc::Ptx, BackendError> {
    if !nvrtc_present() {
        return Err(BackendError::NoDriver(
            "the NVRTC library (libnvrtc.so) is not on the loader's path".into(),
        ));
    }
    cudarc::nvrtc::compile_ptx(GEMM_U64).map_err(|e| BackendError::Cuda(format!("NVRTC: {e}")))
}

/// One device, its stream and the loaded kernel.
pub struct Cuda {
    ordinal: usize,
    name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    kernel: CudaFunction,
}

impl Cuda {
    /// Device `ordinal`, with the kernel compiled and loaded.
    pub fn open(ordinal: usize) -> Result<Self, BackendError> {
        if !driver_present() {
            return Err(BackendError::NoDriver(
                "the driver library (libcuda.so.1) is not on the loader's path".into(),
            ));
        }
        let err = |e: cudarc::driver::DriverError| BackendError::Cuda(e.to_string());
        let ctx = CudaContext::new(ordinal).map_err(|e| match e.0 {
            cudarc::driver::sys::CUresult::CUDA_ERROR_NO_DEVICE => {
                BackendError::NoDriver("the driver reports no CUDA device".into())
            }
            _ => err(e),
        })?;
        let name = ctx.name().map_err(err)?;
        let ptx = compile()?;
        let module = ctx.load_module(ptx).map_err(err)?;
        let kernel = module.load_function("gemm_u64").map_err(err)?;
        let stream = ctx.default_stream();
        Ok(Cuda {
            ordinal,
            name,
            ctx,
            stream,
            kernel,
        })
    }
}

impl Device for Cuda {
    fn describe(&self) -> String {
        format!("CUDA device {} ({})", self.ordinal, self.name)
    }

    fn gemm(
        &self,
        w: &[u64],
        x: &[u64],
        c: &mut [u64],
        (m, k, n): (usize, usize, usize),
    ) -> Result<(), BackendError> {
        let err = |e: cudarc::driver::DriverError| BackendError::Cuda(e.to_string());
        let dim = |v: usize| {
            i32::try_from(v).map_err(|_| BackendError::Cuda(format!("dimension {v} over 2^31")))
        };
        let (mi, ki, ni) = (dim(m)?, dim(k)?, dim(n)?);
        self.ctx.bind_to_thread().map_err(err)?;
        let s = &self.stream;
        let wd = s.clone_htod(w).map_err(err)?;
        let xd = s.clone_htod(x).map_err(err)?;
        let mut cd = s.clone_htod(c).map_err(err)?;
        let cfg = LaunchConfig {
            grid_dim: (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, 1),
            block_dim: (TILE as u32, TILE as u32, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = s.launch_builder(&self.kernel);
        launch
            .arg(&wd)
            .arg(&xd)
            .arg(&mut cd)
            .arg(&mi)
            .arg(&ki)
            .arg(&ni);
        // SAFETY: the kernel reads m·k and k·n elements and writes m·n, the sizes uploaded.
        unsafe { launch.launch(cfg) }.map_err(err)?;
        let mut out = vec![0u64; c.len()];
        s.memcpy_dtoh(&cd, &mut out).map_err(err)?;
        c.copy_from_slice(&out);
        Ok(())
    }
}

/// The kernel's tiling on the CPU: per output element, k in tiles of [`TILE`], each tile's
/// products summed in the kernel's order, then added to `c`. Wrapping sums do not depend on
/// order, so this equals the u64 loop; the test keeps the kernel's index arithmetic honest.
pub fn emulate(w: &[u64], x: &[u64], c: &mut [u64], (m, k, n): (usize, usize, usize)) {
    for row in 0..m {
        for col in 0..n {
            let mut acc = 0u64;
            for t in (0..k).step_by(TILE) {
                for p in 0..TILE {
                    let (wk, xk) = (t + p, t + p);
                    let a = if wk < k { w[row * k + wk] } else { 0 };
                    let b = if xk < k { x[xk * n + col] } else { 0 };
                    acc = acc.wrapping_add(a.wrapping_mul(b));
                }
            }
            c[row * n + col] = c[row * n + col].wrapping_add(acc);
        }
    }
}
