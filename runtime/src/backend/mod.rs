//! Where the linear layers' ring products (`C += W·X` over Z_2^64, behind every convolution
//! and fully connected layer) run: the CPU loop (`kernels::gemm::tiled`), or a CUDA device
//! where a driver is present (feature `cuda`, cudarc with dynamic loading: the party binary
//! builds and runs without CUDA installed).
//!
//! A party chooses once per process (`backend = "auto" | "cpu" | "cuda"` in its
//! configuration, `ksnn-party local --backend`). `auto` looks for the driver library before
//! creating any CUDA context and falls back to the CPU, saying why in one line; `cuda` without a
//! driver is an error. The choice changes where products run, never what they are: every
//! backend computes the same ring product bit for bit, so the parties need not agree on it.

#[cfg(feature = "cuda")]
pub mod cuda;

use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// A device that computes ring products.
pub trait Device: Send + Sync {
    /// For the log line, e.g. `CUDA device 0 (NVIDIA L4, sm_89)`.
    fn describe(&self) -> String;
    /// `c += w·x` mod 2^64, `w` `m×k`, `x` `k×n`, row-major; `c` is untouched on error.
    fn gemm(
        &self,
        w: &[u64],
        x: &[u64],
        c: &mut [u64],
        mkn: (usize, usize, usize),
    ) -> Result<(), BackendError>;
}

static DEVICE: OnceLock<Box<dyn Device>> = OnceLock::new();
static FELL_BACK: AtomicBool = AtomicBool::new(false);

/// Resolves `choice` and installs the device, if any, for the rest of the process. Returns
/// the one line to log (what runs the products, and why). Only the first call installs.
pub fn install(choice: BackendChoice) -> Result<String, BackendError> {
    let how = choice.as_str();
    if choice == BackendChoice::Cpu {
        return Ok(format!("linear layers on the CPU (backend = \"{how}\")"));
    }
    match open_device() {
        Ok(d) => {
            let line = format!("linear layers on {} (backend = \"{how}\")", d.describe());
            let _ = DEVICE.set(d);
            Ok(line)
        }
        Err(e) if choice == BackendChoice::Auto => Ok(format!(
            "linear layers on the CPU (backend = \"{how}\": {e})"
        )),
        Err(e) => Err(e),
    }
}

/// The installed device's name, if products go to one.
pub fn installed() -> Option<String> {
    device().map(|d| d.describe())
}

/// The installed device, if any (benchmarks call it directly, whatever the size).
pub fn device() -> Option<&'static dyn Device> {
    DEVICE.get().map(|d| d.as_ref())
}

/// Runs `c += w·x` on the installed device when it is worth it; false when the caller
/// must compute it. A device error falls back to the CPU, said once.
pub fn gemm(w: &[u64], x: &[u64], c: &mut [u64], (m, k, n): (usize, usize, usize)) -> bool {
    let Some(d) = DEVICE.get() else {
        return false;
    };
    if m.saturating_mul(k).saturating_mul(n) < DEVICE_MIN_MACS {
        return false;
    }
    match d.gemm(w, x, c, (m, k, n)) {
        Ok(()) => true,
        Err(e) => {
            if !FELL_BACK.swap(true, Ordering::Relaxed) {
                eprintln!("{}: {e}; computing on the CPU instead", d.describe());
            }
            false
        }
    }
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
