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
    /// The input is shorter than the fixed header, so nothing after it can be trusted.
    #[error("{file}: truncated: the header needs {needed} bytes but the file has {got}")]
    Truncated {
        /// The kind of file being read.
        file: FileKind,
        /// Bytes the header occupies.
        needed: u64,
        /// Bytes actually present.
        got: u64,
    },
    /// The first 8 bytes are not this kind's magic: the wrong file was passed.
    #[error("{file}: bad magic {found:02x?}: this is not a {file}")]
    BadMagic {
        /// The kind of file that was expected.
        file: FileKind,
        /// The 8 bytes found where the magic belongs.
        found: [u8; 8],
    },
    /// Written by a build with a different format version; its layout may differ.
    #[error(
        "{file}: format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The kind of file being read.
        file: FileKind,
        /// Version recorded in the header.
        found: u16,
        /// The only version this build reads.
        supported: u16,
    },
    /// The header's body length disagrees with the bytes that follow (truncated or appended).
    #[error("{file}: header declares a {claimed}-byte body but {actual} bytes follow")]
    BodyLength {
        /// The kind of file being read.
        file: FileKind,
        /// Body length the header declares.
        claimed: u64,
        /// Body bytes actually present after the header.
        actual: u64,
    },
    /// The body's SHA-256 differs from the header's: the file was corrupted or edited.
    #[error(
        "{file}: content hash mismatch (header says {expected}, body hashes to {actual}): the file is corrupted"
    )]
    HashMismatch {
        /// The kind of file being read.
        file: FileKind,
        /// Hash recorded in the header.
        expected: ContentHash,
        /// Hash of the body as read.
        actual: ContentHash,
    },
    /// The weight file was made for a different program than the one loaded.
    #[error("weight file belongs to program {found}, not to this program ({expected})")]
    WrongProgram {
        /// Hash of the program loaded.
        expected: ContentHash,
        /// Program hash the weight file records.
        found: ContentHash,
    },
    /// The weight tensors are not the ones the program was compiled against.
    #[error(
        "the program expects weights with content hash {expected}, but this weight file's tensors hash to {found}"
    )]
    WrongWeights {
        /// Weights hash the program records.
        expected: ContentHash,
        /// Hash of the weight file's tensors.
        found: ContentHash,
    },
    /// The body passed the hash check but is not valid postcard/JSON for this kind.
    #[error("{file}: body does not decode: {reason}")]
    Decode {
        /// The kind of file being read.
        file: FileKind,
        /// The decoder's own explanation.
        reason: String,
    },
    /// A file-level field (not tied to one layer or tensor) is invalid.
    #[error("{file}: field `{field}`: {problem}")]
    Field {
        /// The kind of file being read.
        file: FileKind,
        /// Path of the offending field within the file (e.g. `input.shape`).
        field: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// One layer of a program is invalid.
    #[error("program layer {index} `{name}` ({op}): {problem}")]
    Layer {
        /// Position of the layer in the program.
        index: usize,
        /// The layer's name (from the source model).
        name: String,
        /// The op kind, as [`crate::Op::kind`] names it.
        op: &'static str,
        /// What is wrong with it.
        problem: Problem,
    },
    /// One layer's entry in a block spec is invalid.
    #[error("block spec, layer `{layer}`: {problem}")]
    Spec {
        /// Name of the layer the entry is keyed by.
        layer: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// One tensor of a weight file is invalid.
    #[error("weight file, tensor `{tensor}`: {problem}")]
    Weight {
        /// The tensor's name (`layer.role`).
        tensor: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What exactly is wrong with a field, a layer or a spec entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Wrong number of inputs for the op.
    Arity {
        /// The accepted input count, in words (e.g. "exactly 2", "1 or more").
        expected: &'static str,
        /// Inputs the layer lists.
        got: usize,
    },
    /// An input names a tensor that is not defined before this layer.
    UnknownTensor {
        /// The tensor id referenced.
        id: u32,
        /// Highest tensor id defined at this point (0 is the program input).
        defined: u32,
    },
    /// A field that must be positive is zero.
    Zero {
        /// Name of the zero field.
        field: &'static str,
    },
    /// A value exceeds a limit (format limit or activation size).
    TooLarge {
        /// Name of the oversized field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A value disagrees with what the surrounding program implies.
    Mismatch {
        /// Name of the disagreeing field.
        field: &'static str,
        /// The value the program implies.
        expected: u64,
        /// The value found.
        got: u64,
    },
    /// A value must divide another.
    NotDivisible {
        /// Name of the field that must be divisible.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The divisor it must be a multiple of.
        by: u64,
    },
    /// Input shapes that must agree do not.
    ShapeMismatch {
        /// The shape the first input (or the op) requires.
        expected: Shape,
        /// The disagreeing input's shape.
        got: Shape,
    },
    /// A pooling/conv window leaves no output.
    EmptyOutput {
        /// The spatial axis left without output positions.
        axis: &'static str,
    },
    /// A float that must be finite (and maybe positive) is not.
    NotFinite {
        /// Name of the non-finite field.
        field: &'static str,
    },
    /// A pair that must be ordered is not (e.g. clip min < max).
    Order {
        /// Name of the pair.
        field: &'static str,
        /// The lower end found.
        low: i64,
        /// The upper end found.
        high: i64,
    },
    /// A name that must be unique appears twice.
    Duplicate {
        /// What is duplicated, in words.
        what: &'static str,
    },
    /// Something required is absent.
    Missing {
        /// What is missing, in words.
        what: &'static str,
    },
    /// Something is present that nothing asks for.
    Unexpected {
        /// What is superfluous, in words.
        what: &'static str,
    },
    /// A block spec's length differs from the layer's channels.
    SpecLength {
        /// Channels of the layer (one block per channel).
        expected: u64,
        /// Entries in the spec.
        got: u64,
    },
    /// A block code that is neither a size nor one of `[0,1]`, `[1,0]`.
    BadBlock {
        /// The channel whose block is invalid.
        channel: u64,
        /// The invalid block.
        block: Block,
    },
    /// A block larger than the activation it tiles.
    BlockTooLarge {
        /// The channel whose block is too large.
        channel: u64,
        /// The oversized block.
        block: Block,
        /// Activation height in pixels.
        h: u32,
        /// Activation width in pixels.
        w: u32,
    },
    /// A spec names a layer that is not a budgeted activation layer.
    NotBudgeted,
    /// Arithmetic on the declared sizes overflows.
    Overflow {
        /// The quantity whose computation overflows.
        field: &'static str,
    },
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
            Problem::NotBudgeted => f.write_str(
                "is not a budgeted activation layer (block ReLU, leaky ReLU, PReLU, hard sigmoid, hard swish)",
            ),
            Problem::Overflow { field } => write!(f, "`{field}` overflows"),
            Problem::Invalid(what) => f.write_str(what),
        }
    }
}
