//! Block specs: which block size each channel of each block-ReLU layer uses.
//!
//! People read and write the JSON form (`{"stem": [[1,1],[2,2],…], …}`); programs carry the
//! same data inside their `BlockRelu` layers, and the postcard form travels in an envelope.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::envelope::{self, Magic};
use crate::error::{FileKind, FormatError, Problem};

/// One channel's block: `[bh, bw]`, or one of the special codes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Block(pub u16, pub u16);

/// What a block code means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// `[0,1]`: the ReLU is removed, the channel passes through.
    Identity,
    /// `[1,0]`: the channel is set to zero.
    Zero,
    /// `[bh,bw]` with both positive; `[1,1]` is an ordinary ReLU.
    Sized {
        /// Block height in pixels (`bh`).
        h: u32,
        /// Block width in pixels (`bw`).
        w: u32,
    },
    /// Any other code containing a zero: rejected by validation.
    Invalid,
}

impl Block {
    /// Ordinary ReLU.
    pub const RELU: Block = Block(1, 1);
    /// Identity (no ReLU).
    pub const IDENTITY: Block = Block(0, 1);
    /// Zero the channel.
    pub const ZERO: Block = Block(1, 0);

    /// Decodes the `[bh, bw]` pair into a size or one of the special codes.
    pub fn kind(self) -> BlockKind {
        match self {
            Block(0, 1) => BlockKind::Identity,
            Block(1, 0) => BlockKind::Zero,
            Block(0, _) | Block(_, 0) => BlockKind::Invalid,
            Block(h, w) => BlockKind::Sized {
                h: h.into(),
                w: w.into(),
            },
        }
    }

    /// DReLUs this block costs on one `h×w` channel: `ceil(h/bh)·ceil(w/bw)`, 0 for identity
    /// and zero. Partial border blocks count as whole blocks.
    pub fn drelus(self, h: u32, w: u32) -> u64 {
        match self.kind() {
            BlockKind::Sized { h: bh, w: bw } => {
                u64::from(h.div_ceil(bh)) * u64::from(w.div_ceil(bw))
            }
            _ => 0,
        }
    }

    /// Checks that the code is valid and fits an `h×w` activation.
    pub fn check(self, channel: u64, h: u32, w: u32) -> Result<(), Problem> {
        match self.kind() {
            BlockKind::Invalid => Err(Problem::BadBlock {
                channel,
                block: self,
            }),
            BlockKind::Sized { h: bh, w: bw } if bh > h || bw > w => Err(Problem::BlockTooLarge {
                channel,
                block: self,
                h,
                w,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{},{}]", self.0, self.1)
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Layer name → one block per channel. Layers absent from a spec keep what the program has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlockSpec {
    /// Block-ReLU layer name → its blocks, one per channel in channel order.
    pub layers: BTreeMap<String, Vec<Block>>,
}

impl BlockSpec {
    /// Parses the JSON form. Structure only; [`crate::Program::apply_spec`] checks it against
    /// a program.
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        serde_json::from_str(text).map_err(|e| FormatError::Decode {
            file: FileKind::Spec,
            reason: e.to_string(),
        })
    }

    /// The JSON form, one layer per line.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        for (i, (name, blocks)) in self.layers.iter().enumerate() {
            let name = serde_json::to_string(name).expect("strings always serialize");
            let blocks = serde_json::to_string(blocks).expect("blocks always serialize");
            out.push_str("  ");
            out.push_str(&name);
            out.push_str(": ");
            out.push_str(&blocks);
            if i + 1 < self.layers.len() {
                out.push(',');
            }
            out.push('\n');
        }
        out.push_str("}\n");
        out
    }

    /// The compact postcard form in a hashed envelope.
    pub fn encode(&self) -> Vec<u8> {
        envelope::seal(Magic::Spec, self)
    }

    /// Decodes [`BlockSpec::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        envelope::open(Magic::Spec, bytes)
    }

    /// Total channels over all layers.
    pub fn channels(&self) -> usize {
        self.layers.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn codes_and_costs() {
        assert_eq!(Block::RELU.drelus(7, 7), 49);
        assert_eq!(Block(2, 2).drelus(7, 7), 16);
        assert_eq!(Block(3, 4).drelus(7, 5), 6);
        assert_eq!(Block(7, 7).drelus(7, 7), 1);
        assert_eq!(Block::IDENTITY.drelus(7, 7), 0);
        assert_eq!(Block::ZERO.drelus(7, 7), 0);
        assert_eq!(Block(0, 2).kind(), BlockKind::Invalid);
        assert!(Block(8, 1).check(3, 7, 7).is_err());
        assert!(Block(0, 0).check(0, 7, 7).is_err());
        assert!(Block::IDENTITY.check(0, 1, 1).is_ok());
    }

    #[test]
    fn json_round_trip_and_form() {
        let mut spec = BlockSpec::default();
        spec.layers.insert(
            "stem".into(),
            vec![Block::RELU, Block(2, 3), Block::IDENTITY],
        );
        spec.layers.insert("layer1_0_1".into(), vec![Block::ZERO]);
        let json = spec.to_json();
        assert!(json.contains("\"stem\": [[1,1],[2,3],[0,1]]"), "{json}");
        assert_eq!(BlockSpec::from_json(&json).unwrap(), spec);
        assert_eq!(BlockSpec::decode(&spec.encode()).unwrap(), spec);
    }

    #[test]
    fn json_errors_say_where() {
        let err = BlockSpec::from_json("{\"stem\": [[1,1], [2]]}").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("block spec") && msg.contains("column"),
            "{msg}"
        );
    }
}
