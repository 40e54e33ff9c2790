//! ksnn's offline compiler: the graph IR, ONNX import and model zoo, datasets, and training
//! with libtorch.
pub mod data;
pub mod ir;
pub mod onnx;
pub mod torch;
