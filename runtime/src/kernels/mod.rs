//! CPU kernels on ring elements (wrapping `u64`). They are linear maps with public or
//! server-held coefficients, applied alike to cleartext values (the reference executor) and
//! to shares (the secure protocols): one implementation for both, so they cannot diverge.

pub mod bilinear;
pub mod conv;
pub mod gemm;
pub mod layout;
pub mod pool;
pub mod resize;

pub use conv::{conv2d, linear, scale_channels};
