//! One importer per op family. Each takes the import state and the node, adds IR nodes or
//! folds constants, and binds the node's outputs.

mod activation;
mod arith;
mod constant;
mod conv;
mod layout;
mod linear;
mod norm;
mod pool;
mod resize;

use super::{Cx, Importer, OnnxError, Value};

/// Imports one node.
pub(crate) fn import(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    match cx.node.op_type.as_str() {
        "Conv" => conv::conv(im, cx),
        "Gemm" => linear::gemm(im, cx),
        "MatMul" => linear::matmul(im, cx),
        "BatchNormalization" => norm::batch_norm(im, cx),
        "Relu" => norm::relu(im, cx),
        "Clip" => norm::clip(im, cx),
        "LeakyRelu" => activation::leaky_relu(im, cx),
        "PRelu" => activation::prelu(im, cx),
        "HardSigmoid" => activation::hard_sigmoid(im, cx),
        "HardSwish" => activation::hard_swish(im, cx),
        "MaxPool" | "AveragePool" => pool::pool(im, cx),
        "GlobalAveragePool" => pool::global_average(im, cx),
        "ReduceMean" => pool::reduce_mean(im, cx),
        "Add" | "Sub" | "Mul" | "Div" => arith::binary(im, cx),
        "Sum" => arith::sum(im, cx),
        "Concat" => layout::concat(im, cx),
        "Flatten" => layout::flatten(im, cx),
        "Reshape" => layout::reshape(im, cx),
        "Identity" | "Dropout" => layout::identity(im, cx),
        "Pad" => layout::pad(im, cx),
        "Resize" | "Upsample" => resize::resize(im, cx),
        "Constant" => constant::constant(im, cx),
        "ConstantOfShape" => constant::constant_of_shape(im, cx),
        "Shape" => constant::shape(im, cx),
        "Gather" => constant::gather(im, cx),
        "Unsqueeze" | "Squeeze" => constant::squeeze(im, cx),
        "Cast" => constant::cast(im, cx),
        "Transpose" => constant::transpose(im, cx),
        "Slice" => constant::slice(im, cx),
        "Softmax" | "LogSoftmax" => norm::softmax(im, cx),
        _ => Err(cx.unsupported("")),
    }
}

/// An axis attribute resolved against `rank`.
fn axis(cx: &Cx, axis: i64, rank: usize) -> Result<usize, OnnxError> {
    let r = rank as i64;
    if (-r..r).contains(&axis) {
        Ok(axis.rem_euclid(r.max(1)) as usize)
    } else {
        Err(cx.invalid(format!("axis {axis} is out of range for rank {rank}")))
    }
}

/// A pair of 2-D values from an `ints` attribute (`kernel_shape`, `strides`, `dilations`).
fn pair(cx: &Cx, name: &str, default: u32) -> Result<[u32; 2], OnnxError> {
    match cx.attrs().ints(name).map_err(|e| cx.invalid(e))? {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0 && x < 1 << 16) => {
            Ok([v[0] as u32, v[1] as u32])
        }
        Some(v) => Err(cx.unsupported(format!(
            "`{name}` is {v:?}; ksnn supports 2-D, positive values"
        ))),
    }
}

/// Padding from `pads` / `auto_pad` for a window op on `[h, w]`.
fn window_padding(
    cx: &Cx,
    input: [u32; 2],
    kernel: [u32; 2],
    stride: [u32; 2],
    dilation: [u32; 2],
) -> Result<ksnn_formats::layer::Padding, OnnxError> {
    use ksnn_formats::layer::Padding;
    let a = cx.attrs();
    let auto = a.string("auto_pad", "NOTSET").map_err(|e| cx.invalid(e))?;
    match auto.as_str() {
        "NOTSET" => match a.ints("pads").map_err(|e| cx.invalid(e))? {
            None => Ok(Padding::default()),
            Some(p) if p.len() == 4 && p.iter().all(|&x| (0..1 << 16).contains(&x)) => {
                Ok(Padding {
                    top: p[0] as u32,
                    left: p[1] as u32,
                    bottom: p[2] as u32,
                    right: p[3] as u32,
                })
            }
            Some(p) => Err(cx.unsupported(format!(
                "`pads` is {p:?}; ksnn supports 4 non-negative values"
            ))),
        },
        "VALID" => Ok(Padding::default()),
        "SAME_UPPER" | "SAME_LOWER" => {
            let total = |k: usize| {
                let out = input[k].div_ceil(stride[k]);
                let span = (kernel[k] - 1) * dilation[k] + 1;
                ((out - 1) * stride[k] + span).saturating_sub(input[k])
            };
            let (th, tw) = (total(0), total(1));
            let upper = auto == "SAME_UPPER";
            let split = |t: u32| {
                if upper {
                    (t / 2, t - t / 2)
                } else {
                    (t - t / 2, t / 2)
                }
            };
            let ((top, bottom), (left, right)) = (split(th), split(tw));
            Ok(Padding {
                top,
                left,
                bottom,
                right,
            })
        }
        other => Err(cx.invalid(format!("unknown auto_pad `{other}`"))),
    }
}

/// Binds a folded constant to the node's first output.
fn set_const(im: &mut Importer, cx: &Cx, c: super::tensor::Const) -> Result<(), OnnxError> {
    im.set(cx, 0, Value::Const(c));
    Ok(())
}
