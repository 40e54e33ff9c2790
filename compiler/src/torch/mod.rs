//! Training and evaluation with libtorch (tch): any IR graph becomes a trainable module.

pub mod activation;
pub mod block_relu;
pub mod executor;
pub mod metrics;
pub mod pretrained;
pub mod train;
