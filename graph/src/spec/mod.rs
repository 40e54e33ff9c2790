//! Block specs from elsewhere: the original system's pickles ([`pickle`]), and [`read`], which
//! takes a spec file in any of the forms a user may hold.

pub mod pickle;

pub use pickle::{PickleError, read_block_spec};

use ksnn_formats::envelope::Magic;
use ksnn_formats::{BlockSpec, FormatError};
use thiserror::Error;

/// Why a spec file's bytes are not a block spec, in the form they were taken for.
#[derive(Debug, Error)]
pub enum SpecReadError {
    /// The JSON form or ksnn's binary (envelope) form is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A pickle (first byte 0x80, the protocol opcode) that is not a valid block spec.
    #[error("block-spec pickle: {0}")]
    Pickle(#[from] PickleError),
}

/// A block spec from a file's bytes, by content: ksnn's binary form (its envelope magic), the
/// original's pickle (protocol 2 or later: first byte 0x80), else the JSON form. Structure
/// only; lowering or `Program::apply_spec` checks it against a model's layers.
pub fn read(bytes: &[u8]) -> Result<BlockSpec, SpecReadError> {
    if Magic::sniff(bytes) == Some(Magic::Spec) {
        Ok(BlockSpec::decode(bytes)?)
    } else if bytes.first() == Some(&0x80) {
        Ok(BlockSpec {
            layers: read_block_spec(bytes)?,
        })
    } else {
        Ok(BlockSpec::from_json(&String::from_utf8_lossy(bytes))?)
    }
}
