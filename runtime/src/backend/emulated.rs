//! A device for tests (feature `test-utils`): the CUDA kernels' index arithmetic run on the
//! CPU ([`super::geometry::emulate`]), resident coefficients as host copies, counters, and an
//! injected failure. With it the device path of the protocols — coefficients kept for the
//! session, products started and finished apart, the CPU taking over from a failed device —
//! runs end to end where no GPU exists.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{BackendError, Coeffs, ConvJob, Device, Pending, Resident, geometry};

/// The emulated device and what it has been asked to do.
#[derive(Default)]
pub struct Emulated {
    /// Coefficient tensors kept resident.
    pub kept: AtomicUsize,
    /// Products started.
    pub products: AtomicUsize,
    /// Products whose coefficients were resident (not sent with the product).
    pub from_resident: AtomicUsize,
    /// The product (counted from 1) whose finish fails; 0 for none.
    pub fail_product: usize,
}

/// A resident tensor: the host copy stands for device memory.
struct Copy(Vec<u64>);

/// A product computed at start (the emulation is synchronous).
struct Done(Result<Vec<u64>, BackendError>);

impl Pending for Done {
    fn finish(self: Box<Self>) -> Result<Vec<u64>, BackendError> {
        self.0
    }
}

impl Device for Emulated {
    fn describe(&self) -> String {
        "emulated CUDA kernels (on the CPU)".into()
    }

    fn min_macs(&self) -> usize {
        0
    }

    fn keep(&self, w: &[u64]) -> Result<Resident, BackendError> {
        self.kept.fetch_add(1, Ordering::Relaxed);
        Ok(Resident::new(Copy(w.to_vec())))
    }

    fn start<'a>(
        &'a self,
        job: &ConvJob,
        x: &[u64],
        w: Coeffs<'a>,
    ) -> Result<Box<dyn Pending + 'a>, BackendError> {
        let n = self.products.fetch_add(1, Ordering::Relaxed) + 1;
        let coeffs = match w.resident.and_then(|r| r.get::<Copy>()) {
            Some(Copy(c)) if c.len() == w.host.len() => {
                self.from_resident.fetch_add(1, Ordering::Relaxed);
                c.as_slice()
            }
            _ => w.host,
        };
        let y = if n == self.fail_product {
            Err(BackendError::Cuda(format!(
                "injected failure of product {n}"
            )))
        } else {
            geometry::emulate(job, x, coeffs)
        };
        Ok(Box::new(Done(y)))
    }
}
