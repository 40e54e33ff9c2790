//! Typed decode and validation errors. Every message says which file, which layer and which
//! field is wrong, so a user can fix the input without reading the decoder.

use alloc::string::String;
use core::fmt;

use thiserror::Error;

use crate::hash::ContentHash;
use crate::shape::Shape;
use crate::spec::Block;

/// Which kind of file an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `model.ksnn`.
    Program,
    /// `weights.ksnw`.
    Weights,
    /// A block spec, JSON or postcard.
    Spec,
    /// `report.json`.
    Report,
    /// A dataset file (MNIST IDX, …).
    Dataset,
    /// `model.ksnn-graph`, the compiler's graph IR.
    Graph,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Program => "program (model.ksnn)",
            FileKind::Weights => "weight file (weights.ksnw)",
            FileKind::Spec => "block spec",
            FileKind::Report => "report",
            FileKind::Dataset => "dataset file",
            FileKind::Graph => "graph (model.ksnn-graph)",
        })
    }
}

/// An error while decoding or validating a ksnn file.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
    #[error("{file}: truncated: the header needs {needed} bytes but the file has {got}")]
    Truncated {
        file: FileKind,
        needed: u64,
        got: u64,
    },
    #[error("{file}: bad magic {found:02x?}: this is not a {file}")]
    BadMagic { file: FileKind, found: [u8; 8] },
    #[error(
        "{file}: format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        file: FileKind,
        found: u16,
        supported: u16,
    },
    #[error("{file}: header declares a {claimed}-byte body but {actual} bytes follow")]
    BodyLength {
        file: FileKind,
        claimed: u64,
        actual: u64,
    },
    #[error(
        "{file}: content hash mismatch (header says {expected}, body hashes to {actual}): the file is corrupted"
    )]
    HashMismatch {
        file: FileKind,
        expected: ContentHash,
        actual: ContentHash,
    },
    #[error("weight file belongs to program {found}, not to this program ({expected})")]
    WrongProgram {
        expected: ContentHash,
        found: ContentHash,
    },
    #[error(
        "the program expects weights with content hash {expected}, but this weight file's tensors hash to {found}"
    )]
    WrongWeights {
        expected: ContentHash,
        found: ContentHash,
    },
    #[error("{file}: body does not decode: {reason}")]
    Decode { file: FileKind, reason: String },
    #[error("{file}: field `{field}`: {problem}")]
    Field {
        file: FileKind,
        field: String,
        problem: Problem,
    },
    #[error("program layer {index} `{name}` ({op}): {problem}")]
    Layer {
        index: usize,
        name: String,
        op: &'static str,
        problem: Problem,
    },
    #[error("block spec, layer `{layer}`: {problem}")]
    Spec { layer: String, problem: Problem },
    #[error("weight file, tensor `{tensor}`: {problem}")]
    Weight { tensor: String, problem: Problem },
}

/// What exactly is wrong with a field, a layer or a spec entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Wrong number of inputs for the op.
    Arity { expected: &'static str, got: usize },
    /// An input names a tensor that is not defined before this layer.
    UnknownTensor { id: u32, defined: u32 },
    /// A field that must be positive is zero.
    Zero { field: &'static str },
    /// A value exceeds a limit (format limit or activation size).
    TooLarge {
        field: &'static str,
        value: u64,
        max: u64,
    },
    /// A value disagrees with what the surrounding program implies.
    Mismatch {
        field: &'static str,
        expected: u64,
        got: u64,
    },
    /// A value must divide another.
    NotDivisible {
        field: &'static str,
        value: u64,
        by: u64,
    },
    /// Input shapes that must agree do not.
    ShapeMismatch { expected: Shape, got: Shape },
    /// A pooling/conv window leaves no output.
    EmptyOutput { axis: &'static str },
    /// A float that must be finite (and maybe positive) is not.
    NotFinite { field: &'static str },
    /// A pair that must be ordered is not (e.g. clip min < max).
    Order {
        field: &'static str,
        low: i64,
        high: i64,
    },
    /// A name that must be unique appears twice.
    Duplicate { what: &'static str },
    /// Something required is absent.
    Missing { what: &'static str },
    /// Something is present that nothing asks for.
    Unexpected { what: &'static str },
    /// A block spec's length differs from the layer's channels.
    SpecLength { expected: u64, got: u64 },
    /// A block code that is neither a size nor one of `[0,1]`, `[1,0]`.
    BadBlock { channel: u64, block: Block },
    /// A block larger than the activation it tiles.
    BlockTooLarge {
        channel: u64,
        block: Block,
        h: u32,
        w: u32,
    },
    /// A spec names a layer that is not a block-ReLU layer.
    NotBlockRelu,
    /// Arithmetic on the declared sizes overflows.
    Overflow { field: &'static str },
    /// Anything else, said in words.
    Invalid(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Arity { expected, got } => write!(f, "takes {expected} input(s), got {got}"),
            Problem::UnknownTensor { id, defined } => write!(
                f,
                "input tensor {id} is not defined yet (tensors 0..={defined} exist here; 0 is the program input)"
            ),
            Problem::Zero { field } => write!(f, "`{field}` must be positive, got 0"),
            Problem::TooLarge { field, value, max } => {
                write!(f, "`{field}` = {value} exceeds the limit {max}")
            }
            Problem::Mismatch {
                field,
                expected,
                got,
            } => write!(f, "`{field}` is {got} but the program implies {expected}"),
            Problem::NotDivisible { field, value, by } => {
                write!(f, "`{field}` = {value} is not divisible by {by}")
            }
            Problem::ShapeMismatch { expected, got } => {
                write!(f, "input shape {got} does not match {expected}")
            }
            Problem::EmptyOutput { axis } => {
                write!(f, "the window is larger than the padded input along {axis}")
            }
            Problem::NotFinite { field } => write!(f, "`{field}` must be a finite number"),
            Problem::Order { field, low, high } => {
                write!(f, "`{field}` needs low < high, got [{low}, {high}]")
            }
            Problem::Duplicate { what } => write!(f, "duplicate {what}"),
            Problem::Missing { what } => write!(f, "missing {what}"),
            Problem::Unexpected { what } => write!(f, "unexpected {what}"),
            Problem::SpecLength { expected, got } => write!(
                f,
                "block spec has {got} entries but the layer has {expected} channels"
            ),
            Problem::BadBlock { channel, block } => write!(
                f,
                "channel {channel}: block {block} is not a size, [0,1] (identity) or [1,0] (zero)"
            ),
            Problem::BlockTooLarge {
                channel,
                block,
                h,
                w,
            } => write!(
                f,
                "channel {channel}: block {block} does not fit the {h}x{w} activation"
            ),
            Problem::NotBlockRelu => f.write_str("is not a block-ReLU layer"),
            Problem::Overflow { field } => write!(f, "`{field}` overflows"),
            Problem::Invalid(what) => f.write_str(what),
        }
    }
}
