//! `Concat`, `Flatten`, `Reshape` (of the flattening kind), `Identity`, `Dropout`, `Pad`.

use ksnn_formats::layer::Padding;

use super::{axis, set_const};
use crate::ir::IrOp;
use crate::onnx::tensor::Const;
use crate::onnx::{Cx, Importer, OnnxError, Value};

pub(super) fn concat(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let inputs = im.all_inputs(cx)?;
    let ax = cx.attrs().int("axis", 1).map_err(|e| cx.invalid(e))?;
    if inputs.iter().all(|v| matches!(v, Value::Const(_))) {
        let parts: Vec<&Const> = inputs
            .iter()
            .map(|v| match v {
                Value::Const(c) => c,
                Value::Tensor { .. } => unreachable!("all constant"),
            })
            .collect();
        let rank = parts.first().map_or(1, |c| c.dims.len());
        let c = Const::concat(&parts, axis(cx, ax, rank)?).map_err(|e| cx.invalid(e))?;
        return set_const(im, cx, c);
    }
    let mut ids = Vec::new();
    let mut rank = 0;
    for (i, v) in inputs.iter().enumerate() {
        let Value::Tensor { id, rank: r } = v else {
            return Err(cx.unsupported(format!("input {i} is a constant among computed tensors")));
        };
        ids.push(*id);
        rank = *r;
    }
    if axis(cx, ax, rank)? != 1 {
        return Err(cx.unsupported(format!(
            "concatenation along axis {ax}; ksnn concatenates channels"
        )));
    }
    let y = im.add(cx, "", IrOp::Concat, &ids)?;
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}

/// Flattens `x` to `N×F` (nothing to do when it is already a vector).
fn flatten_to_vector(im: &mut Importer, cx: &Cx, x: u32, rank: usize) -> Result<(), OnnxError> {
    let id = if rank == 2 {
        x
    } else {
        im.add(cx, "", IrOp::Flatten, &[x])?
    };
    im.set(cx, 0, Value::Tensor { id, rank: 2 });
    Ok(())
}

pub(super) fn flatten(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let ax = cx.attrs().int("axis", 1).map_err(|e| cx.invalid(e))?;
    if let Some(Value::Const(c)) = im.input(cx, 0)? {
        let a = axis(cx, ax, c.dims.len() + 1)?;
        let outer: usize = c.dims[..a].iter().product();
        let c = Const::new(vec![outer, c.len() / outer.max(1)], c.values.clone());
        return set_const(im, cx, c);
    }
    let (x, rank) = im.tensor(cx, 0)?;
    if axis(cx, ax, rank + 1)? != 1 {
        return Err(cx.unsupported(format!("axis {ax}; ksnn flattens everything but the batch")));
    }
    flatten_to_vector(im, cx, x, rank)
}

/// Only reshapes that keep the layout: flattening to `[N, C·H·W]`, or a no-op.
pub(super) fn reshape(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let target = im
        .required_constant(cx, 1)?
        .ints()
        .map_err(|e| cx.invalid(e))?;
    let allow_zero = cx.attrs().int("allowzero", 0).map_err(|e| cx.invalid(e))? != 0;
    let (dims, rank) = match im.input(cx, 0)? {
        Some(Value::Const(c)) => (c.dims.clone(), None),
        Some(Value::Tensor { id, rank }) => {
            let s = im.shape(*id);
            let d = if *rank == 4 {
                vec![im.batch, s.c as usize, s.h as usize, s.w as usize]
            } else {
                vec![im.batch, s.c as usize]
            };
            (d, Some((*id, *rank)))
        }
        None => return Err(cx.invalid("input 0 is missing")),
    };
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (k, &t) in target.iter().enumerate() {
        out.push(match t {
            0 if !allow_zero => *dims
                .get(k)
                .ok_or_else(|| cx.invalid("0 copies a missing dimension"))?,
            -1 if infer.is_none() => {
                infer = Some(k);
                1
            }
            t if t >= 0 => t as usize,
            t => return Err(cx.invalid(format!("target dimension {t}"))),
        });
    }
    let known: usize = out.iter().product();
    if let Some(k) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(cx.invalid(format!("cannot reshape {dims:?} to {target:?}")));
        }
        out[k] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(cx.invalid(format!("cannot reshape {dims:?} to {target:?}")));
    }
    let Some((x, rank)) = rank else {
        let Some(Value::Const(c)) = im.input(cx, 0)? else {
            unreachable!("constant")
        };
        let c = Const::new(out, c.values.clone());
        return set_const(im, cx, c);
    };
    let s = im.shape(x);
    if out == [im.batch, total / im.batch] {
        return flatten_to_vector(im, cx, x, rank);
    }
    let spatial_one = (s.h, s.w) == (1, 1);
    if out == dims || (spatial_one && out == [im.batch, s.c as usize, 1, 1]) {
        im.set(
            cx,
            0,
            Value::Tensor {
                id: x,
                rank: out.len(),
            },
        );
        return Ok(());
    }
    Err(cx.unsupported(format!(
        "a reshape of {dims:?} to {target:?}; ksnn supports flattening to [N, C·H·W]"
    )))
}

pub(super) fn identity(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    if cx.node.op_type == "Dropout" {
        im.only_first_output(cx)?;
        if let Some(t) = im.constant(cx, 2)?
            && t.values.iter().any(|&v| v != 0.0)
        {
            return Err(cx.unsupported("training_mode = true"));
        }
    }
    let v = im
        .input(cx, 0)?
        .cloned()
        .ok_or_else(|| cx.invalid("input 0 is missing"))?;
    im.set(cx, 0, v);
    Ok(())
}

/// Zero padding of H and W (folded into the next convolution after import when possible).
pub(super) fn pad(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let a = cx.attrs();
    let inv = |e| cx.invalid(e);
    let mode = a.string("mode", "constant").map_err(inv)?;
    if mode != "constant" {
        return Err(cx.unsupported(format!("mode `{mode}`; ksnn pads with zeros")));
    }
    let (pads, value, axes) = if cx.opset < 11 {
        let pads = a
            .ints("pads")
            .map_err(inv)?
            .ok_or_else(|| cx.invalid("no pads"))?;
        (pads, f64::from(a.float("value", 0.0).map_err(inv)?), None)
    } else {
        let pads = im.required_constant(cx, 1)?.ints().map_err(inv)?;
        let value = im
            .constant(cx, 2)?
            .map_or(0.0, |c| c.values.first().copied().unwrap_or(0.0));
        let axes = im
            .constant(cx, 3)?
            .map(|c| c.ints())
            .transpose()
            .map_err(inv)?;
        (pads, value, axes)
    };
    if value != 0.0 {
        return Err(cx.unsupported(format!("padding value {value}; ksnn pads with zeros")));
    }
    let axes: Vec<usize> = match axes {
        Some(list) => list
            .iter()
            .map(|&v| axis(cx, v, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(cx.invalid(format!("{} pads for {} axes", pads.len(), axes.len())));
    }
    let mut full = vec![0i64; 2 * rank];
    for (k, &ax) in axes.iter().enumerate() {
        full[ax] = pads[k];
        full[rank + ax] = pads[axes.len() + k];
    }
    let spatial = rank == 4 && (0..2).all(|k| full[k] == 0 && full[rank + k] == 0);
    if !spatial || full.iter().any(|&p| !(0..1 << 16).contains(&p)) {
        return Err(cx.unsupported(format!(
            "pads {full:?}; ksnn pads H and W by non-negative amounts"
        )));
    }
    let p = Padding {
        top: full[2] as u32,
        left: full[3] as u32,
        bottom: full[6] as u32,
        right: full[7] as u32,
    };
    let y = im.add(cx, "", IrOp::Pad(p), &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank });
    Ok(())
}
