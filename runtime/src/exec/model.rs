//! A validated program with its shapes and its layer plan ([`Step`]s, with the weights for
//! the server and the reference): one source for the secure engine and the reference
//! executor, so they cannot disagree.

use ksnn_formats::{FormatError, Program, Shape, Weights};

use crate::exec::step::Step;

/// A program ready to run.
pub struct Model<'a> {
    /// The validated program the shapes and steps were built from.
    pub program: &'a Program,
    /// Shape of every tensor (0 = input).
    pub shapes: Vec<Shape>,
    /// One step per layer.
    pub steps: Vec<Step<'a>>,
    /// For each tensor, the last layer that reads it (outputs are kept to the end).
    pub last_use: Vec<usize>,
    /// Layers the client runs alone, in cleartext, after the reveal ([`Model::client_side`]);
    /// the parties skip them.
    pub client_side: Vec<bool>,
    /// Per program output, the tensor the parties reveal to the client: the output itself, or
    /// the input of its client-side upsampling.
    pub revealed: Vec<u32>,
    /// Consecutive layer ranges whose offline material is dealt together, in order
    /// ([`Model::segments`]): one range for most models.
    pub segments: Vec<std::ops::Range<usize>>,
}

/// The most offline material, by [`Program::offline_held_bytes`], one segment holds (unless a
/// single layer needs more).
pub const OFFLINE_SEGMENT_BYTES: u64 = 256 << 20;

impl<'a> Model<'a> {
    /// Validates `program`, and `weights` against it when given, so a party fails at load
    /// time, not in the middle of a session.
    pub fn new(program: &'a Program, weights: Option<&'a Weights>) -> Result<Self, FormatError> {
        let shapes = program.validate()?;
        if let Some(w) = weights {
            w.check_against(program)?;
        }
        let frac_bits = program.fixed_point.frac_bits;
        let steps = program
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let inputs: Vec<Shape> = layer.inputs.iter().map(|&t| shapes[t as usize]).collect();
                Step::new(layer, &inputs, shapes[i + 1], frac_bits, weights)
            })
            .collect();
        let mut last_use = vec![0usize; shapes.len()];
        for (i, l) in program.layers.iter().enumerate() {
            for &t in &l.inputs {
                last_use[t as usize] = i;
            }
        }
        let mut client_side = vec![false; program.layers.len()];
        let mut revealed = Vec::with_capacity(program.outputs.len());
        for o in &program.outputs {
            let opened = match Self::client_upsampling(program, &shapes, o.tensor) {
                Some(i) => {
                    client_side[i] = true;
                    program.layers[i].inputs[0]
                }
                None => o.tensor,
            };
            last_use[o.tensor as usize] = usize::MAX;
            last_use[opened as usize] = usize::MAX;
            revealed.push(opened);
        }
        let segments = Self::segments(&program.offline_held_bytes()?, OFFLINE_SEGMENT_BYTES);
        Ok(Self {
            program,
            shapes,
            steps,
            last_use,
            client_side,
            revealed,
            segments,
        })
    }

    /// Cuts the layers into consecutive ranges each holding at most `budget` bytes of offline
    /// material (a layer above the budget alone). The first range's offline pass runs ahead,
    /// before the input; each later one's runs in the online pass just before its layers, so a
    /// party holds one segment's material at a time. Every party derives the same cut from the
    /// program, so their messages stay in step.
    pub fn segments(held: &[u64], budget: u64) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let (mut start, mut sum) = (0, 0u64);
        for (i, &b) in held.iter().enumerate() {
            if i > start && sum + b > budget {
                out.push(start..i);
                (start, sum) = (i, 0);
            }
            sum += b;
        }
        out.push(start..held.len());
        out
    }

    /// The layer that makes output tensor `t` if the client can run it alone on the revealed
    /// input: an upsampling (each output side at least the input's) whose result no layer
    /// reads. Enlarging, that public linear map is injective, so its input tells the client
    /// nothing the output does not, beyond the bits the fixed point's rounding drops
    /// (`docs/security.md` §3.14); and the parties neither resize nor truncate the large map
    /// nor send it (a 150×512×512 segmentation map is 64× its 64×64 logits).
    fn client_upsampling(program: &Program, shapes: &[Shape], t: u32) -> Option<usize> {
        let i = (t as usize).checked_sub(1)?;
        let layer = &program.layers[i];
        let ksnn_formats::layer::Op::Upsample(_) = layer.op else {
            return None;
        };
        let (x, y) = (shapes[layer.inputs[0] as usize], shapes[t as usize]);
        let read = program.layers.iter().any(|l| l.inputs.contains(&t));
        (y.h >= x.h && y.w >= x.w && !read).then_some(i)
    }

    /// P0's output `k` from what the parties revealed: the revealed values, through the
    /// output's client-side upsampling when it has one (the reference's kernel, so a secure
    /// run still equals the reference bit for bit).
    pub fn finish_output(&self, k: usize, opened: Vec<u64>) -> crate::protocol::Result<Vec<u64>> {
        let t = self.program.outputs[k].tensor;
        if self.revealed[k] == t {
            return Ok(opened);
        }
        crate::reference::eval_layer(self, t as usize - 1, &[&opened])
    }

    /// Input shape of layer `i` (its first input).
    pub fn input_shape(&self, i: usize) -> Shape {
        self.shapes[self.program.layers[i].inputs[0] as usize]
    }

    /// Output shape of layer `i`.
    pub fn output_shape(&self, i: usize) -> Shape {
        self.shapes[i + 1]
    }

    /// The inputs of layer `i` from the tensors computed so far.
    pub fn inputs<'t>(&self, i: usize, tensors: &'t [Vec<u64>]) -> Vec<&'t [u64]> {
        self.program.layers[i]
            .inputs
            .iter()
            .map(|&t| tensors[t as usize].as_slice())
            .collect()
    }
}

/// Encodes an image (pixel values in `[0, 1]`, `C×H×W`) with the program's normalisation.
pub fn encode_input(program: &Program, pixels: &[f32]) -> Vec<u64> {
    let s = program.input.shape;
    let plane = s.plane() as usize;
    let f = program.fixed_point.frac_bits;
    pixels
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / plane;
            crate::ring::encode(
                ((v - program.input.mean[c]) / program.input.std[c]) as f64,
                f,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_the_layers_in_order_within_the_budget() {
        let held = [10, 20, 30, 5, 100, 1, 1];
        let whole = std::iter::once(0..7).collect::<Vec<_>>();
        assert_eq!(Model::segments(&held, 1000), whole);
        // 10 + 20 + 30 = 60 > 50: cut before layer 2; a layer over budget stands alone.
        assert_eq!(Model::segments(&held, 50), [0..2, 2..4, 4..5, 5..7]);
        assert_eq!(
            Model::segments(&held, 0),
            [0..1, 1..2, 2..3, 3..4, 4..5, 5..6, 6..7]
        );
        let empty = std::iter::once(0..0).collect::<Vec<_>>();
        assert_eq!(Model::segments(&[], 10), empty);
    }

    #[test]
    fn a_small_model_is_one_segment_and_large_material_is_cut() {
        let (tiny, _) = ksnn_formats::example::tiny_cnn(1);
        assert_eq!(Model::new(&tiny, None).unwrap().segments.len(), 1);
        let held = [OFFLINE_SEGMENT_BYTES / 3; 10];
        let s = Model::segments(&held, OFFLINE_SEGMENT_BYTES);
        assert_eq!(s.len(), 4);
        for r in &s {
            let sum: u64 = held[r.clone()].iter().sum();
            assert!(sum <= OFFLINE_SEGMENT_BYTES);
        }
    }
}
