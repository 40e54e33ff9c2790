//! DReLU counts from the real activation shapes: the cost model the knapsack budgets, the
//! inspector prints and reports compare against. One place, so they cannot disagree.

use alloc::vec::Vec;

use crate::error::FormatError;
use crate::layer::Op;
use crate::layer::WeightRole;
use crate::program::{DreluProtocol, Program};
use crate::shape::Shape;

/// The secure comparisons one layer needs per inference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCost {
    /// Position of the layer in [`Program::layers`].
    pub index: usize,
    /// Output shape of the layer.
    pub shape: Shape,
    /// DReLUs (one secure sign test each).
    pub drelus: u64,
}

/// DReLUs of `op` given its input shape `x` and output shape `y`:
/// block ReLU `Σ ceil(H/bh)·ceil(W/bw)` over channels (0 for identity and zero channels),
/// the other budgeted activations that times their decisions per block (leaky ReLU and PReLU
/// one, hard sigmoid and hard swish two), max pooling `kh·kw − 1` per output, clip two per
/// element, everything else none.
pub fn layer_drelus(op: &Op, x: Shape, y: Shape) -> u64 {
    match op {
        Op::BlockRelu(_) | Op::Activation(_) => {
            let blocks = op.blocks().unwrap_or_default();
            op.decisions_per_block() * blocks.iter().map(|blk| blk.drelus(x.h, x.w)).sum::<u64>()
        }
        Op::MaxPool(p) => y.elements() * (u64::from(p.kernel[0]) * u64::from(p.kernel[1]) - 1),
        Op::Clip(_) => 2 * y.elements(),
        _ => 0,
    }
}

/// Bytes of one DCF key's correction words for `bits`-bit inputs and outputs shared in
/// Z_2^`output_bits` (64, or 1 for XOR shares of a bit), as the helper sends them (`fss`
/// DReLU, `docs/design.md` §4.14): per level a 16-byte seed correction carrying one control
/// bit, the value correction (8 bytes, or one bit packed eight per byte) and the other
/// control bit (packed eight per byte), and a leaf correction (8 bytes, or 1). The root seed
/// comes from a stream, so it is not sent.
pub const fn dcf_key_bytes(bits: u32, output_bits: u32) -> u64 {
    let n = bits as u64;
    let packed = n.div_ceil(8);
    if output_bits == 1 {
        16 * n + 2 * packed + 1
    } else {
        24 * n + packed + 8
    }
}

/// DCF keys per message of the helper's `fss` dealing: big layers go in pieces of this
/// many keys, so no message outgrows [`Program::max_layer_message`].
pub const DCF_KEYS_PER_MESSAGE: u64 = 2048;

impl Program {
    /// Per-layer DReLU counts (validates the program first).
    pub fn costs(&self) -> Result<Vec<LayerCost>, FormatError> {
        let shapes = self.validate()?;
        Ok(self
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let x = shapes[layer.inputs[0] as usize];
                let y = shapes[index + 1];
                LayerCost {
                    index,
                    shape: y,
                    drelus: layer_drelus(&layer.op, x, y),
                }
            })
            .collect())
    }

    /// An upper bound on the bytes of the largest message any party sends for one layer of
    /// this program, per the protocols' message sizes (`docs/security.md` §3): masked weights
    /// 8 per weight; openings and shares 8 per element, two vectors at most; a wrap run 8 + 64
    /// per compared bit-width instance, two instances (f and 64 bits) per truncated element;
    /// comparisons 64 per DReLU; `fss` key pieces [`DCF_KEYS_PER_MESSAGE`] keys. Receivers
    /// refuse anything larger, so a peer cannot make one
    /// buffer a message the program never needs.
    pub fn max_layer_message(&self) -> Result<u64, FormatError> {
        let shapes = self.validate()?;
        let mut max = 0u64;
        for (index, layer) in self.layers.iter().enumerate() {
            let y = shapes[index + 1];
            let n = layer
                .inputs
                .iter()
                .map(|&t| shapes[t as usize].elements())
                .chain([y.elements()])
                .max()
                .unwrap_or(0);
            let weights: u64 = layer
                .op
                .weight_shapes()
                .iter()
                .map(|(_, s)| s.iter().map(|&d| u64::from(d)).product::<u64>())
                .sum();
            let x = shapes[layer.inputs[0] as usize];
            let drelus = layer_drelus(&layer.op, x, y);
            let mut bound = (8 * weights).max(136 * n).max(64 * drelus + 16 * n);
            if self.protocol.drelu == DreluProtocol::Fss {
                let keys = drelus.min(DCF_KEYS_PER_MESSAGE);
                bound =
                    bound.max(keys * dcf_key_bytes(self.protocol.approx.compared_bits() - 1, 1));
            }
            max = max.max(bound);
        }
        Ok(max)
    }

    /// Bytes of the `fss` comparison keys the helper deals per inference, both parties' copies
    /// ([`dcf_key_bytes`] on 63 − g bits with bit outputs, as the select uses them, twice per
    /// DReLU); 0 for `securenn`.
    pub fn dealt_key_bytes(&self) -> Result<u64, FormatError> {
        if self.protocol.drelu != DreluProtocol::Fss {
            return Ok(0);
        }
        let drelus: u64 = self.costs()?.iter().map(|c| c.drelus).sum();
        Ok(2 * drelus * dcf_key_bytes(self.protocol.approx.compared_bits() - 1, 1))
    }

    /// Per layer, an estimate of the bytes one party keeps from the layer's offline pass until
    /// its online pass: a ring element for every element the layer reads and writes (a linear
    /// layer's mask and precomputed product, a product's triple share) and, with `fss`, one
    /// [`dcf_key_bytes`] key per DReLU. The runtime deals a large model's offline material in
    /// segments bounded by this estimate, so no party holds a whole inference's material at
    /// once (a 512×512 segmentor's would be gigabytes).
    pub fn offline_held_bytes(&self) -> Result<Vec<u64>, FormatError> {
        let shapes = self.validate()?;
        let key = match self.protocol.drelu {
            DreluProtocol::Fss => dcf_key_bytes(self.protocol.approx.compared_bits() - 1, 1),
            DreluProtocol::SecureNn => 0,
        };
        Ok(self
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let (x, y) = (shapes[layer.inputs[0] as usize], shapes[index + 1]);
                let read: u64 = layer
                    .inputs
                    .iter()
                    .map(|&t| shapes[t as usize].elements())
                    .sum();
                8 * (read + y.elements()) + key * layer_drelus(&layer.op, x, y)
            })
            .collect())
    }

    /// Bytes of the session set-up: the server sends the helper every linear coefficient
    /// (weights and scales, not biases) once, masked, 8 bytes each (`docs/security.md` §3.3).
    pub fn setup_bytes(&self) -> Result<u64, FormatError> {
        self.validate()?;
        Ok(self
            .layers
            .iter()
            .flat_map(|l| l.op.weight_shapes())
            .filter(|(role, _)| *role != WeightRole::Bias)
            .map(|(_, dims)| 8 * dims.iter().map(|&d| u64::from(d)).product::<u64>())
            .sum())
    }

    /// DReLUs of the budgeted layers only (block ReLU and the other activations): what a
    /// block spec's budget counts.
    pub fn spec_drelus(&self) -> Result<u64, FormatError> {
        Ok(self
            .costs()?
            .iter()
            .filter(|c| self.layers[c.index].op.blocks().is_some())
            .map(|c| c.drelus)
            .sum())
    }
}
