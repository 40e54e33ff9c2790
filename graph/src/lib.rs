//! ksnn's model graph, without libtorch: the IR and its model zoo ([`ir`]), ONNX import
//! ([`onnx`]), the rewrites, lowering a graph to a program and its weights ([`lower`]), and
//! block specs from the original system's pickles ([`spec`]). Training and the float checks
//! that need tch live in `ksnn-compiler`.
pub mod ir;
pub mod lower;
pub mod onnx;
pub mod spec;
