//! ksnn's offline compiler: the graph IR and model zoo, datasets, and training with libtorch.
pub mod data;
pub mod ir;
pub mod torch;
