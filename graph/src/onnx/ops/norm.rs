//! `BatchNormalization` (inference form), `Relu`, `Clip`.

use crate::ir::IrOp;
use crate::onnx::{Cx, Importer, OnnxError, Value};

pub(super) fn batch_norm(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let a = cx.attrs();
    if a.int("training_mode", 0).map_err(|e| cx.invalid(e))? != 0 {
        return Err(cx.unsupported("training_mode = 1"));
    }
    im.only_first_output(cx)?;
    let eps = a.float("epsilon", 1e-5).map_err(|e| cx.invalid(e))?;
    let c = im.shape(x).c;
    let mut vals = Vec::new();
    for (i, what) in ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .enumerate()
    {
        let v = im.required_constant(cx, i + 1)?;
        if v.len() != c as usize {
            return Err(cx.invalid(format!("{what} has {} values for {c} channels", v.len())));
        }
        vals.push((*what, v.f32s()));
    }
    let y = im.add(
        cx,
        "",
        IrOp::BatchNorm {
            channels: c,
            eps: f64::from(eps),
        },
        &[x],
    )?;
    for (what, v) in vals {
        im.param(y, what, vec![c], v);
    }
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}

pub(super) fn relu(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let y = im.add(cx, "", IrOp::Relu, &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}

/// Clip: attributes before opset 11, optional constant inputs after. `Clip(0, ∞)` is a ReLU
/// position (the knapsack budgets it), anything else a clamp.
pub(super) fn clip(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let (min, max) = if cx.opset < 11 {
        let a = cx.attrs();
        (
            a.float("min", f32::NEG_INFINITY)
                .map_err(|e| cx.invalid(e))?,
            a.float("max", f32::INFINITY).map_err(|e| cx.invalid(e))?,
        )
    } else {
        let bound = |i, default| -> Result<f32, OnnxError> {
            match im.constant(cx, i)? {
                None => Ok(default),
                Some(c) if c.len() == 1 => Ok(c.values[0] as f32),
                Some(c) => Err(cx.invalid(format!("bound {i} has shape {:?}", c.dims))),
            }
        };
        (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
    };
    let op = if min == 0.0 && max == f32::INFINITY {
        IrOp::Relu
    } else {
        IrOp::Clip { min, max }
    };
    let y = im.add(cx, "", op, &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}

/// A final softmax is dropped on request (the predicted class is the same); anywhere else,
/// or unrequested, it is refused.
pub(super) fn softmax(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let last = cx
        .node
        .output
        .first()
        .is_some_and(|o| im.outputs.contains(o))
        && !cx
            .node
            .output
            .iter()
            .any(|o| im.consumed.contains(o) && !im.outputs.contains(o));
    let axis = cx
        .attrs()
        .int("axis", if cx.opset < 13 { 1 } else { -1 })
        .map_err(|e| cx.invalid(e))?;
    let s = im.shape(x);
    let over_classes = (rank == 2 && (axis == 1 || axis == -1))
        || (rank == 4 && (s.h, s.w) == (1, 1) && (axis == 1 || axis == -3));
    if !(last && over_classes) {
        return Err(
            cx.unsupported("only a softmax over the classes at the very end can be dropped")
        );
    }
    if !im.strip_softmax {
        return Err(cx.unsupported(
            "import with --strip-softmax to drop it (it does not change the predicted class)",
        ));
    }
    im.set(cx, 0, Value::Tensor { id: x, rank });
    Ok(())
}
