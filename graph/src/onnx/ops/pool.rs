//! `MaxPool`, `AveragePool`, `GlobalAveragePool`, and `ReduceMean` over H and W (how the
//! dynamo exporter writes global pooling).

use ksnn_formats::layer::{AvgPool, MaxPool};

use super::{axis, pair, window_padding};
use crate::ir::IrOp;
use crate::onnx::{Cx, Importer, OnnxError, Value};

pub(super) fn pool(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    if rank != 4 {
        return Err(cx.unsupported(format!("input of rank {rank}; ksnn pools 2-D maps")));
    }
    im.only_first_output(cx)?;
    let s = im.shape(x);
    let a = cx.attrs();
    let inv = |e| cx.invalid(e);
    let kernel = a
        .ints("kernel_shape")
        .map_err(inv)?
        .ok_or_else(|| cx.invalid("no kernel_shape"))?;
    if kernel.len() != 2 {
        return Err(cx.unsupported(format!("kernel_shape {kernel:?}; ksnn pools 2-D maps")));
    }
    let kernel = pair(cx, "kernel_shape", 1)?;
    let stride = pair(cx, "strides", 1)?;
    if pair(cx, "dilations", 1)? != [1, 1] {
        return Err(cx.unsupported("dilated pooling"));
    }
    let padding = window_padding(cx, [s.h, s.w], kernel, stride, [1, 1])?;
    let ceil_mode = a.int("ceil_mode", 0).map_err(inv)? != 0;
    let op = if cx.node.op_type == "MaxPool" {
        if a.int("storage_order", 0).map_err(inv)? != 0 {
            return Err(cx.unsupported("storage_order = 1"));
        }
        IrOp::MaxPool(MaxPool {
            kernel,
            stride,
            padding,
            ceil_mode,
        })
    } else {
        IrOp::AvgPool(AvgPool {
            kernel,
            stride,
            padding,
            ceil_mode,
            count_include_pad: a.int("count_include_pad", 0).map_err(inv)? != 0,
        })
    };
    let y = im.add(cx, "", op, &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank: 4 });
    Ok(())
}

pub(super) fn global_average(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    if rank != 4 {
        return Err(cx.unsupported(format!("input of rank {rank}")));
    }
    let y = im.add(cx, "", IrOp::GlobalAvgPool, &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank: 4 });
    Ok(())
}

/// Only the mean over both spatial axes has a counterpart.
pub(super) fn reduce_mean(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let a = cx.attrs();
    let inv = |e| cx.invalid(e);
    let axes = if cx.opset < 18 {
        a.ints("axes").map_err(inv)?
    } else {
        im.constant(cx, 1)?
            .map(|c| c.ints())
            .transpose()
            .map_err(inv)?
    };
    let Some(axes) = axes else {
        return Err(cx.unsupported("a mean over all axes"));
    };
    let mut axes = axes
        .iter()
        .map(|&v| axis(cx, v, rank))
        .collect::<Result<Vec<_>, _>>()?;
    axes.sort_unstable();
    if rank != 4 || axes != [2, 3] {
        return Err(cx.unsupported(format!(
            "a mean over axes {axes:?} of a rank-{rank} tensor; ksnn supports the mean over H and W"
        )));
    }
    let keep = a.int("keepdims", 1).map_err(inv)? != 0;
    let y = im.add(cx, "", IrOp::GlobalAvgPool, &[x])?;
    im.set(
        cx,
        0,
        Value::Tensor {
            id: y,
            rank: if keep { 4 } else { 2 },
        },
    );
    Ok(())
}
