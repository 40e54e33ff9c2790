//! ksnn's three-party runtime: the ring and fixed point, correlated randomness, the
//! protocols, the per-role interpreter, transports, CPU kernels and the cleartext reference.
//! It never links libtorch.
pub mod backend;
pub mod exec;
pub mod fss;
pub mod kernels;
pub mod memory;
pub mod net;
pub mod par;
pub mod prf;
pub mod protocol;
pub mod reference;
pub mod ring;
pub mod role;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
