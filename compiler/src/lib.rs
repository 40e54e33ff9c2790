//! ksnn's offline compiler: datasets, training with libtorch, distortion, and the float checks
//! of a lowered program. The graph itself (IR, zoo, ONNX import, lowering) is `ksnn-graph`.
pub mod check;
pub mod data;
pub mod distortion;
pub mod experiment;
pub mod plot;
pub mod torch;
