//! Constants and the shape arithmetic exporters emit around them (`Shape`, `Gather`,
//! `Unsqueeze`, `Squeeze`, `Cast`, `Transpose`, `Slice`), folded at import. On a computed
//! tensor only `Shape` is meaningful (its shape is static here); the others are refused.

use super::{axis, set_const};
use crate::onnx::tensor::{self, Const};
use crate::onnx::{Cx, Importer, OnnxError, Value};

pub(super) fn constant(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let a = cx.attrs();
    let inv = |e| cx.invalid(e);
    let c = if let Some(t) = a.tensor("value").map_err(inv)? {
        tensor::decode(t, &im.dir).map_err(inv)?
    } else if a.has("value_float") {
        Const::scalar(f64::from(a.float("value_float", 0.0).map_err(inv)?))
    } else if a.has("value_int") {
        Const::scalar(a.int("value_int", 0).map_err(inv)? as f64)
    } else if let Some(v) = a.floats("value_floats").map_err(inv)? {
        Const::vector(v.iter().map(|&x| f64::from(x)).collect())
    } else if let Some(v) = a.ints("value_ints").map_err(inv)? {
        Const::vector(v.iter().map(|&x| x as f64).collect())
    } else {
        return Err(cx.unsupported("a constant that is not a dense tensor, float or int"));
    };
    set_const(im, cx, c)
}

pub(super) fn constant_of_shape(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let inv = |e| cx.invalid(e);
    let dims = im.required_constant(cx, 0)?.ints().map_err(inv)?;
    let dims: Vec<usize> = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| cx.invalid(format!("dimension {d}"))))
        .collect::<Result<_, _>>()?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 30)
        .ok_or_else(|| cx.invalid(format!("shape {dims:?} is too large")))?;
    let fill = match cx.attrs().tensor("value").map_err(inv)? {
        Some(t) => tensor::decode(t, &im.dir)
            .map_err(inv)?
            .values
            .first()
            .copied()
            .unwrap_or(0.0),
        None => 0.0,
    };
    set_const(im, cx, Const::new(dims, vec![fill; n]))
}

/// The static shape of a computed tensor, batch 1 (exporters use it to flatten).
pub(super) fn shape(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let dims: Vec<f64> = match im.input(cx, 0)? {
        Some(Value::Const(c)) => c.dims.iter().map(|&d| d as f64).collect(),
        Some(Value::Tensor { id, rank }) => {
            let s = im.shape(*id);
            let v = [
                im.batch as f64,
                f64::from(s.c),
                f64::from(s.h),
                f64::from(s.w),
            ];
            v[..*rank].to_vec()
        }
        None => return Err(cx.invalid("input 0 is missing")),
    };
    let a = cx.attrs();
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(a.int("start", 0).map_err(|e| cx.invalid(e))?);
    let end = clamp(a.int("end", r).map_err(|e| cx.invalid(e))?);
    let part = dims.get(start..end.max(start)).unwrap_or(&[]).to_vec();
    set_const(im, cx, Const::vector(part))
}

pub(super) fn gather(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let data = im.required_constant(cx, 0)?.clone();
    let idx = im.required_constant(cx, 1)?.clone();
    let ax = axis(
        cx,
        cx.attrs().int("axis", 0).map_err(|e| cx.invalid(e))?,
        data.dims.len(),
    )?;
    let c = data.gather(&idx, ax).map_err(|e| cx.invalid(e))?;
    set_const(im, cx, c)
}

/// `Unsqueeze` and `Squeeze` (axes as attribute before opset 13, as input after).
pub(super) fn squeeze(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let data = im.required_constant(cx, 0)?.clone();
    let inv = |e| cx.invalid(e);
    let axes = if cx.opset < 13 {
        cx.attrs().ints("axes").map_err(inv)?
    } else {
        im.constant(cx, 1)?
            .map(|c| c.ints())
            .transpose()
            .map_err(inv)?
    };
    let mut dims = data.dims.clone();
    if cx.node.op_type == "Unsqueeze" {
        let axes = axes.ok_or_else(|| cx.invalid("no axes"))?;
        let rank = dims.len() + axes.len();
        let mut list: Vec<usize> = axes
            .iter()
            .map(|&a| axis(cx, a, rank))
            .collect::<Result<_, _>>()?;
        list.sort_unstable();
        for a in list {
            dims.insert(a.min(dims.len()), 1);
        }
    } else {
        let rank = dims.len();
        let list: Vec<usize> = match axes {
            Some(axes) => axes
                .iter()
                .map(|&a| axis(cx, a, rank))
                .collect::<Result<_, _>>()?,
            None => (0..rank).filter(|&k| dims[k] == 1).collect(),
        };
        if list.iter().any(|&k| dims[k] != 1) {
            return Err(cx.invalid(format!("cannot squeeze {dims:?} at {list:?}")));
        }
        dims = (0..rank)
            .filter(|k| !list.contains(k))
            .map(|k| dims[k])
            .collect();
    }
    set_const(im, cx, Const::new(dims, data.values))
}

/// Casts of constants; integer targets truncate.
pub(super) fn cast(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let to = cx.attrs().int("to", 1).map_err(|e| cx.invalid(e))?;
    if let Some(Value::Tensor { .. }) = im.input(cx, 0)? {
        if to == 1 {
            let v = im.input(cx, 0)?.cloned().expect("checked");
            im.set(cx, 0, v);
            return Ok(());
        }
        return Err(cx.unsupported(format!("a cast of a computed tensor to type {to}")));
    }
    let c = im.required_constant(cx, 0)?.clone();
    let values = match to {
        1 | 11 => c.values,
        9 => c.values.iter().map(|&v| f64::from(v != 0.0)).collect(),
        2..=7 | 12 | 13 => c.values.iter().map(|v| v.trunc()).collect(),
        _ => return Err(cx.unsupported(format!("a cast to type {to}"))),
    };
    set_const(im, cx, Const::new(c.dims, values))
}

pub(super) fn transpose(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let c = im.required_constant(cx, 0)?.clone();
    let perm: Vec<usize> = match cx.attrs().ints("perm").map_err(|e| cx.invalid(e))? {
        Some(p) => p
            .iter()
            .map(|&v| axis(cx, v, c.dims.len()))
            .collect::<Result<_, _>>()?,
        None => (0..c.dims.len()).rev().collect(),
    };
    let t = c.transpose(&perm).map_err(|e| cx.invalid(e))?;
    set_const(im, cx, t)
}

/// `Slice` of a 1-D constant (shape vectors).
pub(super) fn slice(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let c = im.required_constant(cx, 0)?.clone();
    if c.dims.len() != 1 {
        return Err(cx.unsupported(format!("a slice of a {}-D constant", c.dims.len())));
    }
    let inv = |e| cx.invalid(e);
    let get = |i: usize, attr: &str| -> Result<Option<Vec<i64>>, OnnxError> {
        if cx.opset < 10 {
            cx.attrs().ints(attr).map_err(inv)
        } else {
            im.constant(cx, i)?
                .map(|c| c.ints())
                .transpose()
                .map_err(inv)
        }
    };
    let one =
        |v: Option<Vec<i64>>, default: i64| v.and_then(|v| v.first().copied()).unwrap_or(default);
    let n = c.len() as i64;
    let (start, end) = (one(get(1, "starts")?, 0), one(get(2, "ends")?, n));
    let step = one(get(4, "steps")?, 1);
    if step != 1 {
        return Err(cx.unsupported(format!("a slice with step {step}")));
    }
    let clamp = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n) as usize;
    let (s, e) = (clamp(start), clamp(end));
    set_const(im, cx, Const::vector(c.values[s..e.max(s)].to_vec()))
}
