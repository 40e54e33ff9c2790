//! `Conv`: 2-D, grouped, dilated, any padding; weight and bias must be constants.

use ksnn_formats::layer::Conv2d;

use super::{pair, window_padding};
use crate::ir::IrOp;
use crate::onnx::{Cx, Importer, OnnxError, Value};

pub(super) fn conv(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let w = im.required_constant(cx, 1)?.clone();
    let b = im.constant(cx, 2)?.cloned();
    if rank != 4 || w.dims.len() != 4 {
        return Err(cx.unsupported(format!(
            "weight of shape {:?}; ksnn supports 2-D convolutions",
            w.dims
        )));
    }
    let s = im.shape(x);
    let a = cx.attrs();
    let groups = a.int("group", 1).map_err(|e| cx.invalid(e))?;
    let groups = u32::try_from(groups)
        .ok()
        .filter(|&g| g > 0 && s.c.is_multiple_of(g))
        .ok_or_else(|| cx.invalid(format!("group {groups} does not divide {} channels", s.c)))?;
    let out = w.dims[0] as u32;
    if w.dims[1] as u32 * groups != s.c || !out.is_multiple_of(groups) {
        return Err(cx.invalid(format!(
            "weight {:?} with {groups} groups does not fit an input of {} channels",
            w.dims, s.c
        )));
    }
    let kernel = [w.dims[2] as u32, w.dims[3] as u32];
    if let Some(k) = a.ints("kernel_shape").map_err(|e| cx.invalid(e))?
        && k != [i64::from(kernel[0]), i64::from(kernel[1])]
    {
        return Err(cx.invalid(format!(
            "kernel_shape {k:?} disagrees with the weight {:?}",
            w.dims
        )));
    }
    let stride = pair(cx, "strides", 1)?;
    let dilation = pair(cx, "dilations", 1)?;
    let padding = window_padding(cx, [s.h, s.w], kernel, stride, dilation)?;
    if let Some(b) = &b
        && b.len() != out as usize
    {
        return Err(cx.invalid(format!("bias has {} values for {out} outputs", b.len())));
    }
    let op = IrOp::Conv(Conv2d {
        in_channels: s.c,
        out_channels: out,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        bias: b.is_some(),
    });
    let y = im.add(cx, "", op, &[x])?;
    im.param(
        y,
        "weight",
        w.dims.iter().map(|&d| d as u32).collect(),
        w.f32s(),
    );
    if let Some(b) = b {
        im.param(y, "bias", vec![out], b.f32s());
    }
    im.set(cx, 0, Value::Tensor { id: y, rank: 4 });
    Ok(())
}
