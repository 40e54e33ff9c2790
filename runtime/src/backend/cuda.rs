//! The CUDA device (feature `cuda`): cudarc with dynamic loading, so nothing of CUDA is
//! needed to build or to run on a machine without it. [`Cuda::open`] checks for the driver
//! and NVRTC libraries before cudarc touches them (cudarc panics on a missing library), then
//! creates the context, compiles [`SOURCE`] with NVRTC to a CUBIN for the device's
//! architecture ([`compile_cubin`]; PTX only for an architecture NVRTC does not know) and
//! loads its kernels.
//!
//! Two routes compute a convolution, both exact on Z_2^64:
//! - **u64 kernels**: an implicit GEMM in native 64-bit arithmetic (`conv_u64`, 16×16 tiles in
//!   shared memory, the input gathered in place of an im2col matrix) and a direct depthwise
//!   kernel (`depthwise_u64`). `backend::geometry::emulate` runs their index arithmetic on the
//!   CPU, tile by tile.
//! - **cuBLAS limbs**: ten DGEMMs over 16-bit limbs (`backend::limb_route`, whose `emulate` is
//!   the same plan and kernels on the CPU), for devices whose f64 rate is the higher one.
//!
//! The tests check both emulations against `kernels::conv2d`. Opening the device runs both
//! routes on check convolutions against the CPU and times them, and the faster correct one
//! takes the device's convolutions (depthwise ones, one-pixel outputs and reductions the limb
//! plan refuses always take the u64 kernels).
//!
//! Memory: a session's coefficients are uploaded once ([`Device::keep`]); the input, output
//! and per-product coefficient buffers grow to the largest layer and are reused by every
//! product after it, so a steady-state product allocates nothing on the device.

// FFI: probing the libraries and launching the kernels are `unsafe` in cudarc; each block
// says why it holds.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, DriverError, LaunchArgs,
    LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use ksnn_formats::Shape;
use ksnn_formats::example::SplitMix;
use ksnn_formats::infer::output_shape;
use ksnn_formats::layer::{Conv2d, Op, Padding};

use super::geometry::{Geometry, int};
use super::limb_route::{CHUNK_BYTES, Plan, by_shift};
use super::{BackendError, Coeffs, ConvJob, Device, Pending, Resident};
use crate::kernels::gemm::limbs::LIMBS;

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

/// `library` is not on the loader's path.
fn missing(library: &str) -> BackendError {
    BackendError::NoDriver(format!("the {library} is not on the loader's path"))
}

/// The NVRTC library, or why not.
fn nvrtc_loads() -> Result<(), BackendError> {
    if nvrtc_present() {
        Ok(())
    } else {
        Err(missing("NVRTC library (libnvrtc.so)"))
    }
}

/// Compiles the kernels to PTX (needs NVRTC, not a device): what a device whose architecture
/// this NVRTC does not know gets, for its driver to JIT.
pub fn compile() -> Result<cudarc::nvrtc::Ptx, BackendError> {
    nvrtc_loads()?;
    cudarc::nvrtc::compile_ptx(SOURCE).map_err(|e| BackendError::Cuda(format!("NVRTC: {e}")))
}

/// Which way a (non-depthwise) convolution runs on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The implicit-GEMM u64 kernel (`conv_u64`).
    U64,
    /// Exact cuBLAS DGEMMs over 16-bit limbs (`super::limb_route`).
    Limbs,
}

/// Buffers reused from product to product: each grows to the largest request and stays.
#[derive(Default)]
struct Buffers {
    x: Option<CudaSlice<u64>>,
    w: Option<CudaSlice<u64>>,
    y: Option<CudaSlice<u64>>,
    limbs: LimbBuffers,
}

/// The limb route's weight limbs, im2col limbs and per-shift sums.
#[derive(Default)]
struct LimbBuffers {
    wl: Option<CudaSlice<f64>>,
    xl: Option<CudaSlice<f64>>,
    p: Option<CudaSlice<f64>>,
}

/// `slot`, grown to at least `len` elements (by powers of two, so a model's layers settle
/// after a few products).
fn grown<'b, T: DeviceRepr + ValidAsZeroBits>(
    stream: &Arc<CudaStream>,
    slot: &'b mut Option<CudaSlice<T>>,
    len: usize,
) -> Result<&'b mut CudaSlice<T>, BackendError> {
    if slot.as_ref().is_none_or(|b| b.len() < len) {
        *slot = None; // free the old one first
        *slot = Some(
            stream
                .alloc_zeros(len.max(1).next_power_of_two())
                .map_err(driver)?,
        );
    }
    Ok(slot.as_mut().expect("just allocated"))
}

/// The loaded kernels.
struct Kernels {
    conv: CudaFunction,
    depthwise: CudaFunction,
    split: CudaFunction,
    im2col: CudaFunction,
    recombine: CudaFunction,
}

/// Compiles the kernels to a CUBIN for `arch` (`sm_80`, `sm_89`, …; needs NVRTC, not a
/// device): machine code the driver loads as it is. PTX from an NVRTC newer than the driver
/// would need a JIT of a PTX version the driver may not know (CUDA's minor-version
/// compatibility excludes it); a CUBIN does not.
pub fn compile_cubin(arch: &str) -> Result<Vec<u8>, BackendError> {
    use cudarc::nvrtc::{result, sys};
    nvrtc_loads()?;
    let nvrtc =
        |what: &str, e: result::NvrtcError| BackendError::Cuda(format!("NVRTC {what}: {e:?}"));
    let src = std::ffi::CString::new(SOURCE).expect("the kernels' source has no NUL");
    let prog = result::create_program(&src, None).map_err(|e| nvrtc("create", e))?;
    let cubin = (|| {
        // SAFETY (this block and the two below): `prog` is the program created above, not
        // yet destroyed; the CUBIN buffer has the size NVRTC reports.
        if let Err(e) =
            unsafe { result::compile_program(prog, &[format!("--gpu-architecture={arch}")]) }
        {
            let log = unsafe { result::get_program_log(prog) }
                .map(|l| l.iter().map(|&c| c as u8 as char).collect::<String>())
                .unwrap_or_default();
            return Err(BackendError::Cuda(format!(
                "NVRTC for {arch}: {e:?}: {}",
                log.trim_end_matches('\0').trim()
            )));
        }
        let mut size = 0usize;
        unsafe { sys::nvrtcGetCUBINSize(prog, &mut size) }
            .result()
            .map_err(|e| nvrtc("CUBIN size", e))?;
        let mut bin = vec![0u8; size];
        unsafe { sys::nvrtcGetCUBIN(prog, bin.as_mut_ptr().cast()) }
            .result()
            .map_err(|e| nvrtc("CUBIN", e))?;
        Ok(bin)
    })();
    // SAFETY: destroys the program once; nothing uses it after.
    let _ = unsafe { result::destroy_program(prog) };
    cubin
}

/// The kernels for the device of `ctx`: a CUBIN for its architecture, or, when this NVRTC
/// does not know the architecture, PTX for the driver to JIT (an error that names both
/// versions when the driver is older than NVRTC).
fn load_kernels(ctx: &Arc<CudaContext>) -> Result<Arc<cudarc::driver::CudaModule>, BackendError> {
    let (major, minor) = ctx.compute_capability().map_err(driver)?;
    let arch = format!("sm_{major}{minor}");
    let image = match compile_cubin(&arch) {
        Ok(bin) => cudarc::nvrtc::Ptx::from_binary(bin),
        Err(_) => compile()?,
    };
    ctx.load_module(image).map_err(|e| {
        if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_UNSUPPORTED_PTX_VERSION {
            let mut driver_version = 0;
            // SAFETY: writes one int; the driver is loaded (a context exists).
            let _ = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut driver_version) };
            let (mut a, mut b) = (0, 0);
            // SAFETY: writes two ints; NVRTC is loaded (it compiled the PTX).
            let _ = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut a, &mut b) };
            BackendError::Cuda(format!(
                "the driver (CUDA {}.{}) cannot load PTX from NVRTC {a}.{b} for {arch}: use an \
                 NVRTC no newer than the driver, or one that knows {arch}",
                driver_version / 1000,
                driver_version % 1000 / 10
            ))
        } else {
            driver(e)
        }
    })
}

/// One device, its stream, the loaded kernels, cuBLAS, the route and the reusable buffers.
pub struct Cuda {
    ordinal: usize,
    name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    /// cuBLAS, when `libcublas.so` loads (the limb route needs it).
    blas: Option<CudaBlas>,
    /// Whether the limb route runs the convolutions (see [`Cuda::open`]).
    limbs: AtomicBool,
    /// What the opening check measured, for the log line.
    measured: String,
    buffers: Mutex<Buffers>,
}

fn driver(e: DriverError) -> BackendError {
    BackendError::Cuda(e.to_string())
}

fn blas_err(e: cudarc::cublas::result::CublasError) -> BackendError {
    BackendError::Cuda(format!("cuBLAS: {e:?}"))
}

/// The window's ten `int`s in the kernels' order: kernel, stride, dilation, padding (top,
/// left), output size.
fn push_window<'a>(launch: &mut LaunchArgs<'a>, g: &'a Geometry) {
    for v in [
        &g.kh, &g.kw, &g.sh, &g.sw, &g.dh, &g.dw, &g.pt, &g.pl, &g.oh, &g.ow,
    ] {
        launch.arg(v);
    }
}

/// Seconds of the fastest of `reps` (at least one) runs of `run`, stopping at its first error.
fn fastest(
    reps: usize,
    mut run: impl FnMut() -> Result<(), BackendError>,
) -> Result<f64, BackendError> {
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = std::time::Instant::now();
        run()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// A 1-D launch of `n` threads, 256 per block.
fn line(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(256).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Cuda {
    /// Device `ordinal`, with the kernels compiled and loaded, checked and timed: both routes
    /// run a small convolution that must equal `kernels::conv2d` (a wrong u64 kernel is an
    /// error; a wrong limb route is left unused), then a 3×3, 128-channel one, and the faster
    /// route takes the device's convolutions.
    pub fn open(ordinal: usize) -> Result<Self, BackendError> {
        if !driver_present() {
            return Err(missing("driver library (libcuda.so.1)"));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| match e.0 {
            cudarc::driver::sys::CUresult::CUDA_ERROR_NO_DEVICE => {
                BackendError::NoDriver("the driver reports no CUDA device".into())
            }
            _ => driver(e),
        })?;
        let name = ctx.name().map_err(driver)?;
        let module = load_kernels(&ctx)?;
        let load = |f: &str| module.load_function(f).map_err(driver);
        let kernels = Kernels {
            conv: load("conv_u64")?,
            depthwise: load("depthwise_u64")?,
            split: load("split_limbs")?,
            im2col: load("im2col_limbs")?,
            recombine: load("recombine_limbs")?,
        };
        let stream = ctx.default_stream();
        // SAFETY: only tries to open the library.
        let blas = if unsafe { cudarc::cublas::sys::is_culib_present() } {
            CudaBlas::new(stream.clone()).ok()
        } else {
            None
        };
        let mut cuda = Cuda {
            ordinal,
            name,
            ctx,
            stream,
            kernels,
            blas,
            limbs: AtomicBool::new(false),
            measured: String::new(),
            buffers: Mutex::new(Buffers::default()),
        };
        cuda.measured = cuda.choose_route()?;
        Ok(cuda)
    }

    /// The route convolutions take now.
    pub fn route(&self) -> Route {
        if self.limbs.load(Ordering::Relaxed) {
            Route::Limbs
        } else {
            Route::U64
        }
    }

    /// Sends convolutions by `route` (benchmarks compare them); the limb route needs cuBLAS.
    pub fn set_route(&self, route: Route) -> Result<(), BackendError> {
        if route == Route::Limbs {
            self.blas()?;
        }
        self.limbs.store(route == Route::Limbs, Ordering::Relaxed);
        Ok(())
    }

    /// cuBLAS, or why not.
    fn blas(&self) -> Result<&CudaBlas, BackendError> {
        self.blas
            .as_ref()
            .ok_or_else(|| missing("cuBLAS library (libcublas.so)"))
    }

    /// Checks both routes and times them (see [`Cuda::open`]); returns what it measured.
    fn choose_route(&self) -> Result<String, BackendError> {
        let checks = [
            probe_conv(16, 24, [3, 3], 2, 2, (11, 9)),
            probe_conv(8, 8, [3, 3], 1, 8, (9, 10)),
            probe_conv(40, 10, [1, 1], 1, 1, (1, 1)),
        ];
        let time = probe_conv(256, 256, [3, 3], 1, 1, (28, 28));
        let u64_rate = self.check_and_time(Route::U64, &checks, &time)?;
        let limbs = match self.blas() {
            Err(e) => Err(e.to_string()),
            Ok(_) => match self.check_and_time(Route::Limbs, &checks, &time) {
                Ok(rate) => Ok(rate),
                Err(e) => {
                    // A fault may have left the context unusable: the u64 kernels must still
                    // pass, or the device is not used at all.
                    self.set_route(Route::U64)?;
                    self.check_and_time(Route::U64, &checks[..1], &checks[0])?;
                    Err(e.to_string())
                }
            },
        };
        Ok(match limbs {
            Ok(limb_rate) if limb_rate > u64_rate => {
                self.set_route(Route::Limbs)?;
                format!("cuBLAS limb route, {limb_rate:.1} G MAC/s; u64 kernels {u64_rate:.1}")
            }
            Ok(limb_rate) => {
                self.set_route(Route::U64)?;
                format!("u64 kernels, {u64_rate:.1} G MAC/s; cuBLAS limb route {limb_rate:.1}")
            }
            Err(why) => {
                self.set_route(Route::U64)?;
                format!("u64 kernels, {u64_rate:.1} G MAC/s; limb route unused: {why}")
            }
        })
    }

    /// Runs each of `checks` by `route` against the CPU, then `time` with its weights
    /// resident, as in a session (best of three after a warm-up); returns `time`'s ring
    /// multiply-adds per second, in G.
    fn check_and_time(
        &self,
        route: Route,
        checks: &[(ConvJob, Vec<u64>, Vec<u64>)],
        time: &(ConvJob, Vec<u64>, Vec<u64>),
    ) -> Result<f64, BackendError> {
        self.set_route(route)?;
        for (job, x, w) in checks {
            let got = self.start(job, x, w.as_slice().into())?.finish()?;
            if got != crate::kernels::conv2d(x, job.x, &job.op, job.y, w) {
                return Err(BackendError::Cuda(format!(
                    "the {route:?} route's check convolution {:?} on {:?} differs from the CPU's",
                    job.op.kernel, job.x
                )));
            }
        }
        let (job, x, w) = time;
        let kept = self.keep(w)?;
        let coeffs = Coeffs {
            host: w,
            resident: Some(&kept),
        };
        self.start(job, x, coeffs)?.finish()?;
        let secs = fastest(3, || self.start(job, x, coeffs)?.finish().map(drop))?;
        Ok(job.macs() as f64 / secs / 1e9)
    }

    fn buffers(&self) -> MutexGuard<'_, Buffers> {
        // A panic elsewhere cannot leave the buffers half-valid: each product rewrites them.
        self.buffers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The u64 kernels: `y = conv(x, w)` in one launch.
    fn launch_u64(
        &self,
        g: &Geometry,
        x: &CudaSlice<u64>,
        w: &CudaSlice<u64>,
        y: &mut CudaSlice<u64>,
    ) -> Result<(), BackendError> {
        let kernel = if g.depthwise() {
            &self.kernels.depthwise
        } else {
            &self.kernels.conv
        };
        let mut launch = self.stream.launch_builder(kernel);
        launch.arg(x).arg(w).arg(y).arg(&g.h).arg(&g.wd);
        if !g.depthwise() {
            launch.arg(&g.cin_g).arg(&g.cout_g);
        }
        push_window(&mut launch, g);
        let (grid_dim, block_dim) = g.grid();
        let cfg = LaunchConfig {
            grid_dim,
            block_dim,
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments are the kernel's, in its order; it reads the geometry's
        // x_len inputs and w_len coefficients and writes y_len outputs, within the buffers
        // (the caller checked the sizes).
        unsafe { launch.launch(cfg) }.map_err(driver)?;
        Ok(())
    }

    /// The limb route (`super::limb_route`): per group, the weights' limbs; per chunk of
    /// output pixels, the im2col limbs, ten DGEMMs into four per-shift sums, and the
    /// recombination into `y`.
    fn launch_limbs(
        &self,
        g: &Geometry,
        plan: &Plan,
        x: &CudaSlice<u64>,
        w: &CudaSlice<u64>,
        y: &mut CudaSlice<u64>,
        b: &mut LimbBuffers,
    ) -> Result<(), BackendError> {
        let blas = self.blas()?;
        let s = &self.stream;
        let (m, k, plane) = (plan.m, plan.k, plan.plane);
        let (mi, ki, planei) = (
            int(m as u64, "output channels")?,
            int(k as u64, "reduction length")?,
            int(plane as u64, "output plane")?,
        );
        let wl = grown(s, &mut b.wl, LIMBS * m * k)?;
        let xl = grown(s, &mut b.xl, LIMBS * k * plan.cols)?;
        let p = grown(s, &mut b.p, LIMBS * m * plan.cols)?;
        let shifts = by_shift();
        for grp in 0..plan.groups {
            let wg = w.slice(grp * m * k..(grp + 1) * m * k);
            let len = (m * k) as i64;
            let mut launch = s.launch_builder(&self.kernels.split);
            launch.arg(&wg).arg(&mut *wl).arg(&len);
            // SAFETY: reads m·k words, writes 4·m·k doubles (wl holds at least that).
            unsafe { launch.launch(line(m * k)) }.map_err(driver)?;
            for (c0, cols) in plan.chunks() {
                let (grpi, c0i, colsi) = (
                    int(grp as u64, "group")?,
                    int(c0 as u64, "chunk start")?,
                    int(cols as u64, "chunk width")?,
                );
                let mut launch = s.launch_builder(&self.kernels.im2col);
                launch
                    .arg(x)
                    .arg(&mut *xl)
                    .arg(&g.h)
                    .arg(&g.wd)
                    .arg(&g.cin_g);
                push_window(&mut launch, g);
                launch.arg(&grpi).arg(&c0i).arg(&colsi);
                let cfg = LaunchConfig {
                    grid_dim: (cols.div_ceil(256) as u32, k as u32, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                // SAFETY: reads group grp's input within x; writes 4·k·cols doubles, within
                // xl (sized for the plan's widest chunk); k ≤ 65,535 rows (Plan::of).
                unsafe { launch.launch(cfg) }.map_err(driver)?;
                for (shift, pairs) in shifts.iter().enumerate() {
                    let mut sum = p.slice_mut(shift * m * cols..(shift + 1) * m * cols);
                    for (n, &(i, j)) in pairs.iter().enumerate() {
                        // Row-major (m×k)·(k×cols) is column-major (cols×k)·(k×m).
                        let cfg = GemmConfig {
                            transa: cublasOperation_t::CUBLAS_OP_N,
                            transb: cublasOperation_t::CUBLAS_OP_N,
                            m: colsi,
                            n: mi,
                            k: ki,
                            alpha: 1.0,
                            lda: colsi,
                            ldb: ki,
                            beta: if n == 0 { 0.0 } else { 1.0 },
                            ldc: colsi,
                        };
                        let a = xl.slice(j * k * cols..(j + 1) * k * cols);
                        let bw = wl.slice(i * m * k..(i + 1) * m * k);
                        // SAFETY: a is cols×k (lda cols), bw k×m (ldb k), sum cols×m (ldc
                        // cols), each the slice's exact size.
                        unsafe { blas.gemm(cfg, &a, &bw, &mut sum) }.map_err(blas_err)?;
                    }
                }
                let mut yg = y.slice_mut(grp * m * plane..(grp + 1) * m * plane);
                let mut launch = s.launch_builder(&self.kernels.recombine);
                launch
                    .arg(&*p)
                    .arg(&mut yg)
                    .arg(&mi)
                    .arg(&planei)
                    .arg(&c0i)
                    .arg(&colsi);
                // SAFETY: reads 4·m·cols doubles of p, writes m rows of cols words of this
                // group's output, within yg.
                unsafe { launch.launch(line(m * cols)) }.map_err(driver)?;
            }
        }
        Ok(())
    }
}

/// A random convolution `cin → cout` (a `k×k` kernel, "same" padding) on `cin×h×w` and its
/// operands, for the opening check.
fn probe_conv(
    cin: u32,
    cout: u32,
    kernel: [u32; 2],
    stride: u32,
    groups: u32,
    (h, w): (u32, u32),
) -> (ConvJob, Vec<u64>, Vec<u64>) {
    let pad = kernel[0] / 2;
    let op = Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride: [stride, stride],
        padding: Padding {
            top: pad,
            left: pad,
            bottom: pad,
            right: pad,
        },
        dilation: [1, 1],
        groups,
        bias: false,
    };
    let x = Shape::new(cin, h, w);
    let y = output_shape(&Op::Conv2d(op.clone()), &[x]).expect("a valid probe convolution");
    let job = ConvJob { op, x, y };
    // Any spread of words will do for a check.
    let mut g = SplitMix(u64::from(cin * 131 + cout));
    let mut words = |n: usize| -> Vec<u64> { (0..n).map(|_| g.next_u64()).collect() };
    let (xs, ws) = (words(x.elements() as usize), words(job.w_len()));
    (job, xs, ws)
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
        format!(
            "CUDA device {} ({}; {})",
            self.ordinal, self.name, self.measured
        )
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
        if x.len() != x_len || w.host.len() != job.w_len() {
            return Err(BackendError::Cuda(format!(
                "{} inputs and {} coefficients for a convolution of {x_len} and {}",
                x.len(),
                w.host.len(),
                job.w_len()
            )));
        }
        self.ctx.bind_to_thread().map_err(driver)?;
        let s = &self.stream;
        let mut guard = self.buffers();
        let Buffers {
            x: x_buf,
            w: w_buf,
            y: y_buf,
            limbs,
        } = &mut *guard;
        let xd = grown(s, x_buf, x_len)?;
        s.memcpy_htod(x, &mut xd.slice_mut(0..x_len))
            .map_err(driver)?;
        let wd = match w.resident.and_then(|r| r.get::<CudaSlice<u64>>()) {
            Some(d) if d.len() == w.host.len() => d,
            _ => {
                let n = w.host.len();
                let buf = grown(s, w_buf, n)?;
                s.memcpy_htod(w.host, &mut buf.slice_mut(0..n))
                    .map_err(driver)?;
                buf
            }
        };
        let yd = grown(s, y_buf, y_len)?;
        // Depthwise convolutions, one-pixel outputs (fully connected layers: ten GEMVs over
        // weights four times the size), and reductions the plan refuses take the u64 kernels
        // whatever the route.
        let plan = (self.route() == Route::Limbs && !g.depthwise() && g.plane() > 1)
            .then(|| Plan::of(&g, CHUNK_BYTES).ok())
            .flatten();
        match plan {
            Some(plan) => self.launch_limbs(&g, &plan, xd, wd, yd, limbs)?,
            None => self.launch_u64(&g, xd, wd, yd)?,
        }
        Ok(Box::new(Launched {
            stream: s.clone(),
            buffers: guard,
            len: y_len,
        }))
    }
}

impl Cuda {
    /// Seconds of the fastest of `reps` cuBLAS DGEMMs `m×k · k×n` on operands already on the
    /// device: the f64 rate the limb route (ten DGEMMs per ring product) builds on, for the
    /// benchmark's reference row. Needs `libcublas.so`.
    pub fn dgemm_seconds(
        &self,
        (m, k, n): (usize, usize, usize),
        reps: usize,
    ) -> Result<f64, BackendError> {
        let handle = self.blas()?;
        let int = |v: usize| int(v as u64, "GEMM dimension");
        self.ctx.bind_to_thread().map_err(driver)?;
        let s = &self.stream;
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
        fastest(reps, || {
            // SAFETY: a is m×k, b k×n, c m×n with the leading dimensions given.
            unsafe { handle.gemm(cfg, &a, &b, &mut c) }.map_err(blas_err)?;
            s.synchronize().map_err(driver)
        })
    }
}
