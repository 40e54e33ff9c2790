//! The weight file (`weights.ksnw`), held by the server only: fixed-point tensors keyed by
//! layer name and role, plus the hash of the program they belong to.
//!
//! Two hashes tie the files together without a cycle: the program records the *content hash*
//! of the tensors ([`Weights::content_hash`]), and the weight file records the program's hash.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::envelope::{self, Magic};
use crate::error::{FileKind, FormatError, Problem};
use crate::hash::ContentHash;
use crate::layer::WeightRole;
use crate::limits::{MAX_NAME_LEN, MAX_WEIGHT_ELEMENTS, MAX_WEIGHT_TENSORS};
use crate::program::Program;

/// One fixed-point tensor, row-major.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightTensor {
    /// Name of the program layer that owns the tensor.
    pub layer: String,
    /// Which of that layer's tensors this is.
    pub role: WeightRole,
    /// Dimensions, outermost first; must equal what [`crate::Op::weight_shapes`] says.
    pub shape: Vec<u32>,
    /// Ring elements as signed integers (two's complement of the `u64` ring value).
    pub data: Vec<i64>,
}

impl WeightTensor {
    /// `layer.role`, as messages and tables name it.
    pub fn key(&self) -> String {
        format!("{}.{}", self.layer, self.role.as_str())
    }
}

/// What the content hash covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsContent {
    /// Fractional bits the tensors are encoded with; must equal the program's.
    pub frac_bits: u8,
    /// Every weight tensor of the program, at most one per (layer, role).
    pub tensors: Vec<WeightTensor>,
}

/// A decoded weight file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// [`Program::content_hash`] of the program these weights belong to.
    pub program_hash: ContentHash,
    /// The tensors and their encoding; what [`Weights::content_hash`] covers.
    pub content: WeightsContent,
}

impl Weights {
    /// The weight file for `tensors`, tying `program` and it together: the program records
    /// the tensors' content hash, the file the program's hash.
    pub fn bind(program: &mut Program, frac_bits: u8, tensors: Vec<WeightTensor>) -> Weights {
        let mut weights = Weights {
            program_hash: ContentHash::default(),
            content: WeightsContent { frac_bits, tensors },
        };
        program.weights_hash = weights.content_hash();
        weights.program_hash = program.content_hash();
        weights
    }

    /// Hash of the tensors, recorded in the program as `weights_hash`.
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of_encoding(&self.content)
    }

    /// Encodes to the `weights.ksnw` bytes. Validate first: encoding does not.
    pub fn encode(&self) -> Vec<u8> {
        envelope::seal(Magic::Weights, self)
    }

    /// Decodes and checks the file on its own (header, hash, tensor sizes). Use
    /// [`Weights::check_against`] to check it belongs to a program.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let weights: Weights = envelope::open(Magic::Weights, bytes)?;
        weights.validate()?;
        Ok(weights)
    }

    /// Self-consistency: names, counts and that each tensor's data matches its shape.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.content.tensors.len() > MAX_WEIGHT_TENSORS {
            return Err(FormatError::Field {
                file: FileKind::Weights,
                field: "tensors".into(),
                problem: Problem::TooLarge {
                    field: "tensor count",
                    value: self.content.tensors.len() as u64,
                    max: MAX_WEIGHT_TENSORS as u64,
                },
            });
        }
        for t in &self.content.tensors {
            let err = |problem| FormatError::Weight {
                tensor: t.key(),
                problem,
            };
            if t.layer.is_empty() || t.layer.len() > MAX_NAME_LEN {
                return Err(err(Problem::Invalid("layer name is empty or too long")));
            }
            let elements = t
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
                .filter(|&n| n <= MAX_WEIGHT_ELEMENTS)
                .ok_or(err(Problem::TooLarge {
                    field: "elements",
                    value: u64::MAX,
                    max: MAX_WEIGHT_ELEMENTS,
                }))?;
            if elements != t.data.len() as u64 {
                return Err(err(Problem::Mismatch {
                    field: "data length",
                    expected: elements,
                    got: t.data.len() as u64,
                }));
            }
        }
        Ok(())
    }

    /// Checks that these weights are exactly the ones `program` expects: both hashes, the
    /// fixed point, and one tensor of the right shape for every weight every layer needs.
    pub fn check_against(&self, program: &Program) -> Result<(), FormatError> {
        let field = |field: &str, problem| FormatError::Field {
            file: FileKind::Weights,
            field: field.into(),
            problem,
        };
        let program_hash = program.content_hash();
        if self.program_hash != program_hash {
            return Err(FormatError::WrongProgram {
                expected: program_hash,
                found: self.program_hash,
            });
        }
        let content = self.content_hash();
        if content != program.weights_hash {
            return Err(FormatError::WrongWeights {
                expected: program.weights_hash,
                found: content,
            });
        }
        if self.content.frac_bits != program.fixed_point.frac_bits {
            return Err(field(
                "frac_bits",
                Problem::Mismatch {
                    field: "frac_bits",
                    expected: program.fixed_point.frac_bits.into(),
                    got: self.content.frac_bits.into(),
                },
            ));
        }
        let mut have: BTreeMap<(&str, WeightRole), &WeightTensor> = BTreeMap::new();
        for t in &self.content.tensors {
            if have.insert((t.layer.as_str(), t.role), t).is_some() {
                return Err(FormatError::Weight {
                    tensor: t.key(),
                    problem: Problem::Duplicate { what: "tensor" },
                });
            }
        }
        for layer in &program.layers {
            for (role, shape) in layer.op.weight_shapes() {
                let key = format!("{}.{}", layer.name, role.as_str());
                let t = have.remove(&(layer.name.as_str(), role)).ok_or_else(|| {
                    FormatError::Weight {
                        tensor: key.clone(),
                        problem: Problem::Missing {
                            what: "tensor the program needs",
                        },
                    }
                })?;
                if t.shape != shape {
                    return Err(FormatError::Weight {
                        tensor: key,
                        problem: Problem::Invalid("shape differs from the program's layer"),
                    });
                }
            }
        }
        if let Some(t) = have.values().next() {
            return Err(FormatError::Weight {
                tensor: t.key(),
                problem: Problem::Unexpected {
                    what: "tensor (no layer of the program uses it)",
                },
            });
        }
        Ok(())
    }

    /// The tensor for `layer`/`role`, if present.
    pub fn get(&self, layer: &str, role: WeightRole) -> Option<&WeightTensor> {
        self.content
            .tensors
            .iter()
            .find(|t| t.layer == layer && t.role == role)
    }
}
