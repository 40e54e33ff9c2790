//! The program (`model.ksnn`): everything the three parties share about a model — its layers,
//! shapes, block spec, fixed point and protocol choices — and nothing secret. Weights live in
//! the server's weight file; the program records only that file's content hash.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::envelope::{self, Magic};
use crate::error::{FileKind, FormatError, Problem};
use crate::hash::ContentHash;
use crate::infer::{arity, output_shape};
use crate::layer::{Layer, TensorId};
use crate::limits::{MAX_FRAC_BITS, MAX_LAYERS, MAX_NAME_LEN};
use crate::shape::Shape;
use crate::spec::BlockSpec;

/// The ring and its fixed-point encoding: a real x is `round(x·2^frac_bits)` mod `2^ring_bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedPoint {
    /// Always 64 in this version (Z_2^64 on `u64`).
    pub ring_bits: u8,
    /// Fractional bits f of the encoding (1..=30): a real x is stored as round(x·2^f).
    pub frac_bits: u8,
}

impl Default for FixedPoint {
    fn default() -> Self {
        Self {
            ring_bits: 64,
            frac_bits: 12,
        }
    }
}

/// The input the client provides and how it is normalised before encoding: pixel values in
/// `[0, 1]` become `(x - mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Shape of the one input tensor (tensor 0) at batch 1.
    pub shape: Shape,
    /// Per-channel mean subtracted before encoding; one finite value per channel.
    pub mean: Vec<f32>,
    /// Per-channel divisor applied after the mean; one finite, positive value per channel.
    pub std: Vec<f32>,
}

/// What an output tensor means to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputKind {
    /// Class scores; the prediction is the argmax.
    Logits,
    /// Per-pixel class scores `classes×H×W`; the map is the per-pixel argmax.
    SegmentationLogits,
}

impl OutputKind {
    /// The meaning of an output of shape `s`: a map with more than one pixel is per-pixel
    /// scores, anything else (`K`, `K×1×1`) class scores.
    pub fn of_shape(s: Shape) -> Self {
        if s.plane() > 1 {
            OutputKind::SegmentationLogits
        } else {
            OutputKind::Logits
        }
    }
}

/// One program output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The tensor revealed to the client at the end of the inference.
    pub tensor: TensorId,
    /// How the client turns that tensor into a prediction.
    pub kind: OutputKind,
}

/// Which secure comparison the DReLUs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DreluProtocol {
    /// SecureNN-style: the wrap-bit protocol on PrivateCompare mod 67 with a zero-sharing
    /// (26 + 3·(63 − g) bytes and 4 rounds per DReLU; `docs/design-notes.md` item 1).
    #[cfg_attr(feature = "clap", value(name = "securenn"))]
    SecureNn,
    /// Function secret sharing: helper-dealt DCF keys (2·(16·(63 − g) + 2·⌈(63 − g)/8⌉ + 1)
    /// bytes offline per DReLU); a block ReLU in two online rounds (`docs/design.md` §4.14).
    #[cfg_attr(feature = "clap", value(name = "fss"))]
    Fss,
}

/// Approximate comparison (docs/original.md §7.9): shift the compared value right by `k` bits,
/// then compare only its top `64 - g` bits. `k = g = 0` is exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproxCompare {
    /// Low bits each share drops (arithmetic right shift) before the comparison (0..=62).
    pub k: u8,
    /// High bits ignored: the comparison runs on the top `64 − g` bits only (0..=62);
    /// correct while |x| < 2^(63−g+k) raw units.
    pub g: u8,
}

impl ApproxCompare {
    /// The largest `k` or `g` a program may declare: at least one bit is compared.
    pub const MAX_BITS: u8 = 62;

    /// Bits actually compared, NB = 64 − g.
    pub const fn compared_bits(&self) -> u32 {
        64 - self.g as u32
    }
}

/// How products are brought back to f fractional bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Truncation {
    /// Each party shifts its own share (SecureML): ±1 LSB, rarely a large error.
    #[cfg_attr(feature = "clap", value(name = "local"))]
    LocalShift,
    /// Helper-assisted truncation with the exact wrap correction.
    #[cfg_attr(feature = "clap", value(name = "exact"))]
    HelperExact,
}

/// The protocol choices every party must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolConfig {
    /// The secure comparison behind every DReLU.
    pub drelu: DreluProtocol,
    /// How much of each compared value the DReLUs look at.
    pub approx: ApproxCompare,
    /// How products are rescaled to `frac_bits` fractional bits.
    pub truncation: Truncation,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            drelu: DreluProtocol::SecureNn,
            approx: ApproxCompare::default(),
            truncation: Truncation::LocalShift,
        }
    }
}

/// A compiled model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Model name for messages and reports (non-empty, at most 256 bytes).
    pub name: String,
    /// Ring and fixed-point encoding of every shared value.
    pub fixed_point: FixedPoint,
    /// The client's input: shape and normalisation.
    pub input: InputSpec,
    /// SSA: layer `i` writes tensor `i + 1`; tensor 0 is the input.
    pub layers: Vec<Layer>,
    /// Tensors revealed to the client, in order; at least one.
    pub outputs: Vec<Output>,
    /// Protocol choices all parties must agree on.
    pub protocol: ProtocolConfig,
    /// Content hash of the weight file this program expects ([`crate::Weights::content_hash`]).
    pub weights_hash: ContentHash,
}

impl Program {
    /// Encodes to the `model.ksnn` bytes. Validate first: encoding does not.
    pub fn encode(&self) -> Vec<u8> {
        envelope::seal(Magic::Program, self)
    }

    /// Decodes and fully validates `model.ksnn` bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let program: Program = envelope::open(Magic::Program, bytes)?;
        program.validate()?;
        Ok(program)
    }

    /// The program's identity: the hash of its encoded body. Parties compare it at handshake
    /// and the weight file records it.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of_encoding(self)
    }

    /// Checks everything a decoder must and returns every tensor's shape (index = tensor id).
    pub fn validate(&self) -> Result<Vec<Shape>, FormatError> {
        let field = |field: &str, problem| FormatError::Field {
            file: FileKind::Program,
            field: field.into(),
            problem,
        };
        check_name(&self.name).map_err(|p| field("name", p))?;
        if self.fixed_point.ring_bits != 64 {
            return Err(field(
                "fixed_point.ring_bits",
                Problem::Mismatch {
                    field: "ring_bits",
                    expected: 64,
                    got: self.fixed_point.ring_bits.into(),
                },
            ));
        }
        let f = self.fixed_point.frac_bits;
        if f == 0 || f > MAX_FRAC_BITS {
            return Err(field(
                "fixed_point.frac_bits",
                Problem::TooLarge {
                    field: "frac_bits (1..=30)",
                    value: f.into(),
                    max: MAX_FRAC_BITS.into(),
                },
            ));
        }
        let a = self.protocol.approx;
        if a.g > ApproxCompare::MAX_BITS || a.k > ApproxCompare::MAX_BITS {
            return Err(field(
                "protocol.approx",
                Problem::TooLarge {
                    field: "k or g",
                    value: a.g.max(a.k).into(),
                    max: ApproxCompare::MAX_BITS.into(),
                },
            ));
        }
        self.input
            .shape
            .check()
            .map_err(|p| field("input.shape", p))?;
        for (name, values) in [
            ("input.mean", &self.input.mean),
            ("input.std", &self.input.std),
        ] {
            if values.len() as u64 != u64::from(self.input.shape.c) {
                return Err(field(
                    name,
                    Problem::Mismatch {
                        field: "length",
                        expected: self.input.shape.c.into(),
                        got: values.len() as u64,
                    },
                ));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(field(name, Problem::NotFinite { field: "value" }));
            }
        }
        if self.input.std.iter().any(|&s| s <= 0.0) {
            return Err(field("input.std", Problem::Zero { field: "std" }));
        }
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(field(
                "layers",
                Problem::TooLarge {
                    field: "layer count (1 or more)",
                    value: self.layers.len() as u64,
                    max: MAX_LAYERS as u64,
                },
            ));
        }

        let mut shapes = Vec::with_capacity(self.layers.len() + 1);
        shapes.push(self.input.shape);
        let mut names = BTreeSet::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let err = |problem| FormatError::Layer {
                index,
                name: layer.name.clone(),
                op: layer.op.kind(),
                problem,
            };
            check_name(&layer.name).map_err(err)?;
            if !names.insert(layer.name.as_str()) {
                return Err(err(Problem::Duplicate { what: "layer name" }));
            }
            let (min, max, words) = arity(&layer.op);
            if layer.inputs.len() < min || layer.inputs.len() > max {
                return Err(err(Problem::Arity {
                    expected: words,
                    got: layer.inputs.len(),
                }));
            }
            let mut inputs = Vec::with_capacity(layer.inputs.len());
            for &id in &layer.inputs {
                let s = shapes.get(id as usize).ok_or(Problem::UnknownTensor {
                    id,
                    defined: index as u32,
                });
                inputs.push(*s.map_err(err)?);
            }
            shapes.push(output_shape(&layer.op, &inputs).map_err(err)?);
        }

        if self.outputs.is_empty() {
            return Err(field("outputs", Problem::Missing { what: "output" }));
        }
        for (i, out) in self.outputs.iter().enumerate() {
            if out.tensor as usize >= shapes.len() {
                return Err(field(
                    &format!("outputs[{i}]"),
                    Problem::UnknownTensor {
                        id: out.tensor,
                        defined: self.layers.len() as u32,
                    },
                ));
            }
        }
        Ok(shapes)
    }

    /// The block spec carried by the program's budgeted layers (block ReLU and the other
    /// activations).
    pub fn block_spec(&self) -> BlockSpec {
        let mut spec = BlockSpec::default();
        for layer in &self.layers {
            if let Some(blocks) = layer.op.blocks() {
                spec.layers.insert(layer.name.clone(), blocks.to_vec());
            }
        }
        spec
    }

    /// Installs `spec` into the named budgeted layers after checking every entry against
    /// the real activation shapes. On error the program is unchanged.
    pub fn apply_spec(&mut self, spec: &BlockSpec) -> Result<(), FormatError> {
        let shapes = self.validate()?;
        let mut updated = self.clone();
        for (name, blocks) in &spec.layers {
            let err = |problem| FormatError::Spec {
                layer: name.clone(),
                problem,
            };
            let index = self
                .layers
                .iter()
                .position(|l| &l.name == name)
                .ok_or_else(|| {
                    err(Problem::Missing {
                        what: "layer of that name in the program",
                    })
                })?;
            let Some(target) = updated.layers[index].op.blocks_mut() else {
                return Err(err(Problem::NotBudgeted));
            };
            let x = shapes[self.layers[index].inputs[0] as usize];
            if blocks.len() as u64 != u64::from(x.c) {
                return Err(err(Problem::SpecLength {
                    expected: x.c.into(),
                    got: blocks.len() as u64,
                }));
            }
            for (ch, block) in blocks.iter().enumerate() {
                block.check(ch as u64, x.h, x.w).map_err(err)?;
            }
            target.clone_from(blocks);
        }
        *self = updated;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), Problem> {
    if name.is_empty() {
        return Err(Problem::Missing { what: "name" });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Problem::TooLarge {
            field: "name length",
            value: name.len() as u64,
            max: MAX_NAME_LEN as u64,
        });
    }
    Ok(())
}
