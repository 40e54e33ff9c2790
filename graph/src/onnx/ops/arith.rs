//! `Add`, `Sub`, `Mul`, `Div`, `Sum`: between computed tensors (`Add`, `Sub`, `Sum`, and
//! `Mul` by an equal shape or a per-channel gate), with per-channel or scalar constants (an
//! affine node), or folded when all are constant.

use super::set_const;
use crate::ir::IrOp;
use crate::onnx::tensor::Const;
use crate::onnx::{Cx, Importer, OnnxError, Value};
use ksnn_formats::layer::Op;

/// A constant as per-channel values for a tensor of `channels` channels and `rank`:
/// one value, or `[C,1,1]`-like for feature maps, `[C]`-like for vectors.
fn per_channel(cx: &Cx, c: &Const, channels: u32, rank: usize) -> Result<Vec<f32>, OnnxError> {
    let d = c.squeezed_dims();
    let ok = c.len() == 1
        || (d.first() == Some(&(channels as usize))
            && d.len() == if rank == 4 { 3 } else { 1 }
            && c.dims.len() <= rank
            && c.len() == channels as usize);
    if ok {
        Ok(c.f32s())
    } else {
        Err(cx.unsupported(format!(
            "a constant of shape {:?} that varies over positions; ksnn supports scalars and per-channel constants",
            c.dims
        )))
    }
}

fn affine(
    im: &mut Importer,
    cx: &Cx,
    x: u32,
    scale: Vec<f32>,
    shift: Vec<f32>,
    suffix: &str,
) -> Result<u32, OnnxError> {
    im.add(cx, suffix, IrOp::Affine { scale, shift }, &[x])
}

pub(super) fn binary(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let op = cx.node.op_type.as_str();
    let a = im
        .input(cx, 0)?
        .cloned()
        .ok_or_else(|| cx.invalid("input 0 is missing"))?;
    let b = im
        .input(cx, 1)?
        .cloned()
        .ok_or_else(|| cx.invalid("input 1 is missing"))?;
    let f: fn(f64, f64) -> f64 = match op {
        "Add" => |x, y| x + y,
        "Sub" => |x, y| x - y,
        "Mul" => |x, y| x * y,
        _ => |x, y| x / y,
    };
    let (id, rank) = match (&a, &b) {
        (Value::Const(x), Value::Const(y)) => {
            let c = x.broadcast(y, f).map_err(|e| cx.invalid(e))?;
            return set_const(im, cx, c);
        }
        (Value::Tensor { id: x, rank: rx }, Value::Tensor { id: y, rank: ry }) if op == "Mul" => {
            // A squeeze-and-excitation gate may come first or second; it goes second, where
            // the program's shape rule takes it.
            let (sx, sy) = (im.shape(*x), im.shape(*y));
            let fits = |a, b| ksnn_formats::infer::output_shape(&Op::Mul, &[a, b]).is_ok();
            let order = if rx != ry {
                None
            } else if fits(sx, sy) {
                Some((*x, *y))
            } else if fits(sy, sx) {
                Some((*y, *x))
            } else {
                None
            };
            let Some((map, gate_id)) = order else {
                return Err(cx.unsupported(format!(
                    "operands of shapes {sx} and {sy}; ksnn multiplies equal shapes, or a map by one value per channel"
                )));
            };
            (im.add(cx, "", IrOp::Mul, &[map, gate_id])?, *rx)
        }
        (Value::Tensor { id: x, rank: rx }, Value::Tensor { id: y, rank: ry }) => {
            if im.shape(*x) != im.shape(*y) || rx != ry {
                return Err(cx.unsupported(format!(
                    "operands of shapes {} and {}; ksnn adds equal shapes",
                    im.shape(*x),
                    im.shape(*y)
                )));
            }
            let y = match op {
                "Add" => *y,
                "Sub" => affine(im, cx, *y, vec![-1.0], vec![0.0], "_neg")?,
                _ => {
                    return Err(cx.unsupported(
                        "both operands are computed tensors; ksnn divides by constants only",
                    ));
                }
            };
            (im.add(cx, "", IrOp::Add, &[*x, y])?, *rx)
        }
        (Value::Tensor { id, rank }, Value::Const(c)) => {
            let v = per_channel(cx, c, im.shape(*id).c, *rank)?;
            let ones = vec![1.0];
            let zeros = vec![0.0];
            let (scale, shift) = match op {
                "Add" => (ones, v),
                "Sub" => (ones, v.iter().map(|x| -x).collect()),
                "Mul" => (v, zeros),
                _ => (v.iter().map(|x| 1.0 / x).collect(), zeros),
            };
            (affine(im, cx, *id, scale, shift, "")?, *rank)
        }
        (Value::Const(c), Value::Tensor { id, rank }) => {
            let v = per_channel(cx, c, im.shape(*id).c, *rank)?;
            let (scale, shift) = match op {
                "Add" => (vec![1.0], v),
                "Sub" => (vec![-1.0], v),
                "Mul" => (v, vec![0.0]),
                _ => return Err(cx.unsupported("division by a computed tensor")),
            };
            (affine(im, cx, *id, scale, shift, "")?, *rank)
        }
    };
    im.set(cx, 0, Value::Tensor { id, rank });
    Ok(())
}

/// `Sum` of computed tensors becomes a chain of additions; of constants, a constant.
pub(super) fn sum(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let inputs = im.all_inputs(cx)?;
    if inputs.iter().all(|v| matches!(v, Value::Const(_))) {
        let mut acc: Option<Const> = None;
        for v in &inputs {
            let Value::Const(c) = v else { unreachable!() };
            acc = Some(match acc {
                None => c.clone(),
                Some(a) => a.broadcast(c, |x, y| x + y).map_err(|e| cx.invalid(e))?,
            });
        }
        return set_const(im, cx, acc.ok_or_else(|| cx.invalid("no inputs"))?);
    }
    let mut acc = None;
    for (i, v) in inputs.iter().enumerate() {
        let Value::Tensor { id, rank } = v else {
            return Err(cx.unsupported(format!("input {i} is a constant among computed tensors")));
        };
        acc = Some(match acc {
            None => (*id, *rank),
            Some((a, r)) => {
                if im.shape(a) != im.shape(*id) {
                    return Err(cx.unsupported("operands of different shapes"));
                }
                let suffix = if i + 1 == inputs.len() {
                    String::new()
                } else {
                    format!("_{i}")
                };
                (im.add(cx, &suffix, IrOp::Add, &[a, *id])?, r)
            }
        });
    }
    let (id, rank) = acc.ok_or_else(|| cx.invalid("no inputs"))?;
    im.set(cx, 0, Value::Tensor { id, rank });
    Ok(())
}
