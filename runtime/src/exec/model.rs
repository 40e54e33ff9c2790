//! A validated program with its shapes, its weights (server and reference only) and the
//! per-layer plans both the reference executor and the secure interpreter use: the linear
//! maps, block tilings and pooling taps. One source for both, so they cannot disagree.

use ksnn_formats::layer::{Conv2d, Op, WeightRole};
use ksnn_formats::{FormatError, Program, Shape, Weights};

use crate::kernels::layout::BlockLayout;
use crate::kernels::{self, pool, resize};
use crate::protocol::linear::Bilinear;

/// A layer's weights as ring elements.
#[derive(Clone, Debug, Default)]
pub struct LayerParams {
    pub weight: Option<Vec<u64>>,
    pub bias: Option<Vec<u64>>,
    pub scale: Option<Vec<u64>>,
}

/// The linear maps whose coefficients the server holds.
pub enum LinearMap<'a> {
    Conv { op: &'a Conv2d, x: Shape, y: Shape },
    Dense { x: usize, y: usize },
    Scale { x: Shape },
}

impl Bilinear for LinearMap<'_> {
    fn x_len(&self) -> usize {
        match self {
            LinearMap::Conv { x, .. } | LinearMap::Scale { x } => x.elements() as usize,
            LinearMap::Dense { x, .. } => *x,
        }
    }
    fn w_len(&self) -> usize {
        match self {
            LinearMap::Conv { op, .. } => {
                (op.out_channels * (op.in_channels / op.groups) * op.kernel[0] * op.kernel[1])
                    as usize
            }
            LinearMap::Dense { x, y } => x * y,
            LinearMap::Scale { x } => x.c as usize,
        }
    }
    fn y_len(&self) -> usize {
        match self {
            LinearMap::Conv { y, .. } => y.elements() as usize,
            LinearMap::Dense { y, .. } => *y,
            LinearMap::Scale { x } => x.elements() as usize,
        }
    }
    fn apply(&self, x: &[u64], w: &[u64]) -> Vec<u64> {
        match self {
            LinearMap::Conv { op, x: xs, y: ys } => kernels::conv2d(x, *xs, op, *ys, w),
            LinearMap::Dense { y, .. } => kernels::linear(x, w, *y),
            LinearMap::Scale { x: xs } => kernels::scale_channels(x, *xs, w),
        }
    }
}

/// Per-layer precomputed index structures.
pub enum Plan {
    None,
    Blocks(BlockLayout),
    MaxTaps(Vec<Vec<u32>>),
}

/// A program ready to run.
pub struct Model<'a> {
    pub program: &'a Program,
    /// Shape of every tensor (0 = input).
    pub shapes: Vec<Shape>,
    pub params: Vec<LayerParams>,
    pub plans: Vec<Plan>,
    /// For each tensor, the last layer that reads it (outputs are kept to the end).
    pub last_use: Vec<usize>,
}

impl<'a> Model<'a> {
    /// Validates `program`, and `weights` against it when given.
    pub fn new(program: &'a Program, weights: Option<&Weights>) -> Result<Self, FormatError> {
        let shapes = program.validate()?;
        let mut params = vec![LayerParams::default(); program.layers.len()];
        if let Some(w) = weights {
            w.check_against(program)?;
            for (i, layer) in program.layers.iter().enumerate() {
                for (role, _) in layer.op.weight_shapes() {
                    let t = w
                        .get(&layer.name, role)
                        .expect("checked against the program");
                    let data: Vec<u64> = t.data.iter().map(|&v| v as u64).collect();
                    match role {
                        WeightRole::Weight => params[i].weight = Some(data),
                        WeightRole::Bias => params[i].bias = Some(data),
                        WeightRole::Scale => params[i].scale = Some(data),
                    }
                }
            }
        }
        let plans = program
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let x = shapes[l.inputs[0] as usize];
                match &l.op {
                    Op::BlockRelu(b) => Plan::Blocks(BlockLayout::new(x, &b.blocks)),
                    Op::MaxPool(m) => Plan::MaxTaps(pool::max_pool_taps(x, m, shapes[i + 1])),
                    _ => Plan::None,
                }
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
            params,
            plans,
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

    /// The server-weighted linear map of layer `i`, if it has one.
    pub fn linear_map(&self, i: usize) -> Option<LinearMap<'a>> {
        let x = self.input_shape(i);
        match &self.program.layers[i].op {
            Op::Conv2d(op) => Some(LinearMap::Conv {
                op,
                x,
                y: self.output_shape(i),
            }),
            Op::Linear(l) => Some(LinearMap::Dense {
                x: l.in_features as usize,
                y: l.out_features as usize,
            }),
            Op::ScaleBias(s) if s.scale => Some(LinearMap::Scale { x }),
            _ => None,
        }
    }

    /// Whether layer `i` is evaluated locally on shares (no protocol), and if so whether its
    /// result needs truncating by f.
    pub fn local(&self, i: usize) -> Option<bool> {
        match &self.program.layers[i].op {
            Op::Add | Op::Concat | Op::Flatten => Some(false),
            Op::Upsample(u) => Some(!matches!(
                u.mode,
                ksnn_formats::layer::UpsampleMode::Nearest
            )),
            Op::AvgPool(_) | Op::GlobalAvgPool => Some(true),
            _ => None,
        }
    }

    /// Evaluates local layer `i` on `inputs` (cleartext or shares alike).
    pub fn eval_local(&self, i: usize, inputs: &[&[u64]]) -> Vec<u64> {
        let f = self.program.fixed_point.frac_bits;
        let (x, xs, ys) = (inputs[0], self.input_shape(i), self.output_shape(i));
        match &self.program.layers[i].op {
            Op::Add => crate::ring::add(inputs[0], inputs[1]),
            Op::Concat => inputs.concat(),
            Op::Flatten => x.to_vec(),
            Op::Upsample(u) => resize::upsample(x, xs, ys, u.mode, f).0,
            Op::AvgPool(p) => pool::avg_pool_scaled(x, xs, p, ys, f),
            Op::GlobalAvgPool => pool::global_avg_scaled(x, xs, f),
            other => unreachable!("{} is not a local layer", other.kind()),
        }
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
