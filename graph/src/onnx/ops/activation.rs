//! `LeakyRelu`, `PRelu`, `HardSigmoid`, `HardSwish`: the piecewise-linear activations the
//! program runs securely (budgeted positions like `Relu`). Every opset of each has the same
//! meaning; only PReLU's slope takes care (an input, broadcast unidirectionally).

use crate::ir::{IrActivation, IrOp};
use crate::onnx::{Cx, Importer, OnnxError, Value};

/// `alpha` defaults to 0.01 in every opset.
pub(super) fn leaky_relu(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let slope = cx.attrs().float("alpha", 0.01).map_err(|e| cx.invalid(e))?;
    activation(im, cx, IrActivation::LeakyRelu { slope })
}

/// `alpha` 0.2 and `beta` 0.5 by default (PyTorch exports its 1/6 explicitly).
pub(super) fn hard_sigmoid(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let a = cx.attrs();
    let alpha = a.float("alpha", 0.2).map_err(|e| cx.invalid(e))?;
    let beta = a.float("beta", 0.5).map_err(|e| cx.invalid(e))?;
    activation(im, cx, IrActivation::HardSigmoid { alpha, beta })
}

/// `HardSwish` (opset 14) has no attributes: α = 1/6, β = 1/2.
pub(super) fn hard_swish(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    activation(
        im,
        cx,
        IrActivation::HardSwish {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
    )
}

/// PReLU: the slope is a constant that broadcasts (unidirectionally, from the right) over
/// the input: one value, or one per channel — `[C, 1, 1]` on a feature map (what PyTorch
/// exports), `[C]` on a vector. A slope that varies along H or W has no per-channel form.
pub(super) fn prelu(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let c = im.shape(x).c;
    let slope = im.required_constant(cx, 1)?;
    let mut dims: &[usize] = &slope.dims;
    while dims.first() == Some(&1) && dims.len() > 1 {
        dims = &dims[1..];
    }
    let per_channel = match rank {
        4 | 3 => dims == [c as usize, 1, 1] || (rank == 3 && dims == [c as usize, 1]),
        _ => dims == [c as usize],
    };
    let values = match slope.len() {
        1 => vec![slope.values[0] as f32; c as usize],
        _ if per_channel => slope.f32s(),
        _ => {
            return Err(cx.unsupported(format!(
                "slope of shape {:?} on a rank-{rank} input with {c} channels; ksnn supports one \
                 slope or one per channel",
                slope.dims
            )));
        }
    };
    let y = im.add(
        cx,
        "",
        IrOp::Activation(IrActivation::Prelu { channels: c }),
        &[x],
    )?;
    im.param(y, "slope", vec![c], values);
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}

fn activation(im: &mut Importer, cx: &Cx, act: IrActivation) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let y = im.add(cx, "", IrOp::Activation(act), &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}
