//! Where the linear layers' ring products (convolutions and fully connected layers over
//! Z_2^64) run: the CPU kernels (`kernels::conv`), or a CUDA device where a driver is present
//! (feature `cuda`, cudarc with dynamic loading: the party binary builds and runs without
//! CUDA installed).
//!
//! On a device, a session's coefficients (the server's weights, the helper's masked weights)
//! are uploaded once ([`keep`], [`Resident`]) and each product moves only its input and
//! output, through buffers the device reuses from layer to layer. A product is started and
//! finished apart ([`Pending`]), so the party draws its masks while the device computes.
//!
//! A party chooses once per process (`backend = "auto" | "cpu" | "cuda"` in its
//! configuration, `ksnn-party local --backend`). `auto` looks for the driver library before
//! creating any CUDA context and falls back to the CPU, saying why in one line; `cuda` without a
//! driver is an error. The choice changes where products run, never what they are: every
//! backend computes the same ring product bit for bit, so the parties need not agree on it.

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "test-utils")]
pub mod emulated;
pub mod geometry;
pub mod limb_route;

use std::any::Any;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use ksnn_formats::Shape;
use ksnn_formats::layer::Conv2d;
use thiserror::Error;

/// Products below this many multiply-adds stay on the CPU: the transfers would cost more.
pub const DEVICE_MIN_MACS: usize = 1 << 22;

/// What a configuration asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// CUDA when a driver and a device are present, else the CPU.
    #[default]
    Auto,
    /// The CPU loop.
    Cpu,
    /// CUDA, or an error.
    Cuda,
}

impl BackendChoice {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Cuda => "cuda",
        }
    }
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "cuda" => Ok(BackendChoice::Cuda),
            other => Err(format!(
                "backend \"{other}\": use \"auto\", \"cpu\" or \"cuda\""
            )),
        }
    }
}

/// Why CUDA is not available.
#[derive(Debug, Error)]
pub enum BackendError {
    /// This build has no CUDA backend.
    #[error("this ksnn-party was built without the `cuda` feature")]
    NotBuilt,
    /// No driver library, or no usable device.
    #[error("no CUDA driver: {0}")]
    NoDriver(String),
    /// The driver or NVRTC failed.
    #[error("CUDA: {0}")]
    Cuda(String),
}

/// A convolution's geometry: the layer and its input and output shapes (a fully connected
/// layer is a 1×1 convolution of an `in×1×1` input).
#[derive(Clone, Debug)]
pub struct ConvJob {
    /// Channels, kernel, stride, padding, dilation, groups.
    pub op: Conv2d,
    /// Input shape.
    pub x: Shape,
    /// Output shape.
    pub y: Shape,
}

impl ConvJob {
    /// The GEMM of each group: `cout_g × (cin_g·kh·kw) × OH·OW`.
    pub fn gemm_dims(&self) -> (usize, usize, usize) {
        let c = &self.op;
        let groups = c.groups.max(1);
        (
            (c.out_channels / groups) as usize,
            ((c.in_channels / groups) * c.kernel[0] * c.kernel[1]) as usize,
            self.y.plane() as usize,
        )
    }

    /// Ring multiply-adds of one application.
    pub fn macs(&self) -> usize {
        let (m, k, n) = self.gemm_dims();
        m * k * n * self.op.groups.max(1) as usize
    }

    /// Elements of the coefficients, `[out, in/groups, kh, kw]`.
    pub fn w_len(&self) -> usize {
        let (m, k, _) = self.gemm_dims();
        m * k * self.op.groups.max(1) as usize
    }
}

/// Coefficients held on the device for as long as this lives: a session's weights (the
/// server's `W`, the helper's masked `B`), uploaded once instead of with every product.
/// Dropping it frees the device memory.
pub struct Resident(Box<dyn Any + Send + Sync>);

impl Resident {
    /// Wraps a device's own buffer type.
    pub fn new(buffer: impl Any + Send + Sync) -> Self {
        Resident(Box::new(buffer))
    }
    /// The device's buffer, if it is of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

/// A product's coefficients: in host memory, and on the device too when they are resident.
#[derive(Clone, Copy)]
pub struct Coeffs<'a> {
    /// The coefficients (always present: the CPU path and the fallback read them).
    pub host: &'a [u64],
    /// The same coefficients on the installed device.
    pub resident: Option<&'a Resident>,
}

impl<'a> From<&'a [u64]> for Coeffs<'a> {
    fn from(host: &'a [u64]) -> Self {
        Coeffs {
            host,
            resident: None,
        }
    }
}

/// A product started on a device: the host is free until [`Pending::finish`] (the linear
/// protocol draws its masks meanwhile).
pub trait Pending {
    /// Waits for the product and downloads it.
    fn finish(self: Box<Self>) -> Result<Vec<u64>, BackendError>;
}

/// A device that computes ring products.
pub trait Device: Send + Sync {
    /// For the log line, e.g. `CUDA device 0 (NVIDIA L4, sm_89)`.
    fn describe(&self) -> String;
    /// Products below this many multiply-adds stay on the CPU.
    fn min_macs(&self) -> usize {
        DEVICE_MIN_MACS
    }
    /// Uploads `w` to stay for the session.
    fn keep(&self, w: &[u64]) -> Result<Resident, BackendError>;
    /// Starts `y = conv(x, w)` mod 2^64 (PyTorch semantics, no bias, as
    /// `kernels::conv2d`); uses `w.resident` when it is this device's. A device may run one
    /// product at a time: other threads wait, and a thread must finish its product before it
    /// starts another.
    fn start<'a>(
        &'a self,
        job: &ConvJob,
        x: &[u64],
        w: Coeffs<'a>,
    ) -> Result<Box<dyn Pending + 'a>, BackendError>;
}

static DEVICE: OnceLock<&'static dyn Device> = OnceLock::new();
static FELL_BACK: AtomicBool = AtomicBool::new(false);

/// Resolves `choice` and installs the device, if any, for the rest of the process. Returns
/// the one line to log (what runs the products, and why). Only the first call installs.
pub fn install(choice: BackendChoice) -> Result<String, BackendError> {
    let how = choice.as_str();
    if choice == BackendChoice::Cpu {
        return Ok(format!("linear layers on the CPU (backend = \"{how}\")"));
    }
    if let Some(d) = device() {
        return Ok(format!(
            "linear layers on {} (backend = \"{how}\", installed already)",
            d.describe()
        ));
    }
    match open_device() {
        Ok(d) => {
            let line = format!("linear layers on {} (backend = \"{how}\")", d.describe());
            // The device lives as long as the process.
            let _ = DEVICE.set(Box::leak(d));
            Ok(line)
        }
        Err(e) if choice == BackendChoice::Auto => Ok(format!(
            "linear layers on the CPU (backend = \"{how}\": {e})"
        )),
        Err(e) => Err(e),
    }
}

/// Installs `device` for the rest of the process (tests: `emulated::Emulated`); false when
/// one is installed already.
#[cfg(feature = "test-utils")]
pub fn install_device(device: &'static dyn Device) -> bool {
    DEVICE.set(device).is_ok()
}

/// The installed device's name, if products go to one.
pub fn installed() -> Option<String> {
    device().map(|d| d.describe())
}

/// The installed device, if any (benchmarks call it directly, whatever the size).
pub fn device() -> Option<&'static dyn Device> {
    DEVICE.get().copied()
}

/// Says once per process that the device failed and the CPU took over.
pub fn fell_back(e: &BackendError) {
    if !FELL_BACK.swap(true, Ordering::Relaxed)
        && let Some(d) = device()
    {
        eprintln!("{}: {e}; computing on the CPU instead", d.describe());
    }
}

/// Uploads a session's coefficients when a device is installed and products of `macs`
/// multiply-adds will go to it; `None` otherwise (or on a device error, said once).
pub fn keep(w: &[u64], macs: usize) -> Option<Resident> {
    let d = device()?;
    if macs < d.min_macs() {
        return None;
    }
    d.keep(w).map_err(|e| fell_back(&e)).ok()
}

/// Starts `job` on the installed device when it is worth it; `None` when the caller must
/// compute it (no device, a small product, or a device error, said once).
pub fn start<'a>(job: &ConvJob, x: &[u64], w: Coeffs<'a>) -> Option<Box<dyn Pending + 'a>> {
    let d = device()?;
    if job.macs() < d.min_macs() {
        return None;
    }
    d.start(job, x, w).map_err(|e| fell_back(&e)).ok()
}

#[cfg(feature = "cuda")]
fn open_device() -> Result<Box<dyn Device>, BackendError> {
    Ok(Box::new(cuda::Cuda::open(0)?))
}

#[cfg(not(feature = "cuda"))]
fn open_device() -> Result<Box<dyn Device>, BackendError> {
    Err(BackendError::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_refuse_with_the_options() {
        assert_eq!("auto".parse(), Ok(BackendChoice::Auto));
        assert_eq!("cpu".parse(), Ok(BackendChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(BackendChoice::Cuda));
        let e = "gpu".parse::<BackendChoice>().unwrap_err();
        assert!(e.contains("\"auto\", \"cpu\" or \"cuda\""), "{e}");
    }
}
