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
}

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
                let x = shapes[layer.inputs[0] as usize];
                Step::new(layer, x, shapes[i + 1], frac_bits, weights)
            })
            .collect();
        let mut last_use = vec![0usize; shapes.len()];
        for (i, l) in program.layers.iter().enumerate() {
            for &t in &l.inputs {
                last_use[t as usize] = i;
            }
        }
        for o in &program.outputs {
            last_use[o.tensor as usize] = usize::MAX;
        }
        Ok(Self {
            program,
            shapes,
            steps,
            last_use,
        })
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
