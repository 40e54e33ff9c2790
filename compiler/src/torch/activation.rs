//! Leaky ReLU, PReLU, hard sigmoid and hard swish in tch, per element or per block as the
//! runtime computes them (docs/design.md §4.15): the decisions are block ReLU's masks
//! ([`BlockRelu::mask`]) on x, or on z = α·x + β and z − 1 for hard sigmoid, and carry no
//! gradient (straight-through, as block ReLU); hard swish multiplies x by one gate per block,
//! clip(α·x̄ + β, 0, 1) of the block's mean ([`BlockRelu::gate`]), which does.

use ksnn_graph::ir::IrActivation;
use tch::Tensor;

use crate::torch::block_relu::BlockRelu;

/// `[C]` viewed to broadcast over `a`'s channel axis (axis 1).
pub fn per_channel(a: &Tensor, v: &Tensor) -> Tensor {
    let mut shape = vec![1i64; a.dim()];
    if a.dim() > 1 {
        shape[1] = -1;
    }
    v.view(shape.as_slice())
}

/// The activation of `x` (`N×C×H×W`, or `N×F`); `slopes` are PReLU's `[C]`, `blocks` the
/// layer's block spec (none: per element).
pub fn forward(
    x: &Tensor,
    act: &IrActivation,
    slopes: Option<&Tensor>,
    blocks: Option<&BlockRelu>,
) -> Tensor {
    let slope = |t: &Tensor| match (act, slopes) {
        (IrActivation::Prelu { .. }, Some(s)) => t * per_channel(x, s),
        (IrActivation::LeakyRelu { slope }, _) => t * f64::from(*slope),
        // A PReLU without its slopes cannot be built (the executor creates them).
        _ => t.zeros_like(),
    };
    match (act, blocks) {
        (IrActivation::LeakyRelu { .. } | IrActivation::Prelu { .. }, None) => {
            let r = x.relu();
            &r + slope(&(x - &r))
        }
        (IrActivation::LeakyRelu { .. } | IrActivation::Prelu { .. }, Some(b)) => {
            let m = b.mask(x, 1.0);
            x * &m + slope(&(x * (1.0 - &m)))
        }
        (IrActivation::HardSigmoid { alpha, beta }, _) => {
            let z = x * f64::from(*alpha) + f64::from(*beta);
            match blocks {
                None => z.clamp(0.0, 1.0),
                Some(b) => {
                    let upper = &z - 1.0;
                    &z * b.mask(&z, 1.0) - &upper * b.mask(&upper, 0.0)
                }
            }
        }
        (IrActivation::HardSwish { alpha, beta }, _) => {
            let gate = |m: &Tensor| (m * f64::from(*alpha) + f64::from(*beta)).clamp(0.0, 1.0);
            match blocks {
                None => x * gate(x),
                Some(b) => x * b.gate(x, gate),
            }
        }
    }
}
