//! ksnn's file and wire formats.
//!
//! - [`Program`] (`model.ksnn`): the public program all three parties run — layers in SSA
//!   form, block spec, fixed point, protocol choices, the hash of the expected weights.
//! - [`Weights`] (`weights.ksnw`): the server's fixed-point tensors, tied to one program.
//! - [`BlockSpec`]: layer → per-channel `[bh, bw]`, as JSON for people and postcard inside.
//! - [`frame`]: the 24-byte wire header between parties.
//! - [`Report`] (`report.json`): what every secure run and benchmark writes.
//! - `image` (feature `image`, with `std`): PNG/JPEG files and MNIST's IDX pairs as planar
//!   floats, one decoder for the compiler's datasets and the client's inputs.
//!
//! Every decoder validates everything (magic, version, lengths, hashes, shapes that chain,
//! spec lengths and block sizes) and fails with a typed [`FormatError`] that names the file,
//! layer and field. No input makes a decoder panic, and allocation is bounded by the input
//! size, not by lengths the input claims. `no_std` + `alloc`.
#![no_std]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod candidates;
pub mod cost;
pub mod envelope;
pub mod error;
pub mod example;
pub mod frame;
pub mod hash;
pub mod idx;
#[cfg(feature = "image")]
pub mod image;
pub mod infer;
pub mod layer;
pub mod limits;
pub mod npy;
pub mod program;
pub mod report;
pub mod shape;
pub mod spec;
pub mod weights;

pub use cost::LayerCost;
pub use error::{FileKind, FormatError, Problem};
pub use frame::{FrameError, FrameHeader, FrameKind};
pub use hash::ContentHash;
pub use layer::{Layer, Op, TensorId, WeightRole};
pub use program::{
    ApproxCompare, DreluProtocol, FixedPoint, InputSpec, Output, OutputKind, Program,
    ProtocolConfig, Truncation,
};
pub use report::Report;
pub use shape::Shape;
pub use spec::{Block, BlockKind, BlockSpec};
pub use weights::{WeightTensor, Weights};
