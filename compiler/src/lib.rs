//! ksnn's offline compiler: the graph IR, ONNX import and model zoo, datasets, and training
//! with libtorch.
pub mod data;
pub mod distortion;
pub mod experiment;
pub mod ir;
pub mod lower;
pub mod onnx;
pub mod plot;
pub mod spec;
pub mod torch;
