//! `Resize` and `Upsample`: the nearest and bilinear forms PyTorch computes; other
//! coordinate conventions are refused rather than approximated.

use ksnn_formats::layer::{Upsample, UpsampleMode};

use crate::ir::IrOp;
use crate::onnx::{Cx, Importer, OnnxError, Value};

pub(super) fn resize(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    if rank != 4 {
        return Err(cx.unsupported(format!("input of rank {rank}")));
    }
    let s = im.shape(x);
    let a = cx.attrs();
    let inv = |e| cx.invalid(e);
    // Before opset 11 (and in Upsample) coordinates were asymmetric and nearest was floor.
    let legacy = cx.node.op_type == "Upsample" || cx.opset < 11;
    let (scales, sizes) = if cx.node.op_type == "Upsample" {
        let scales = match im.constant(cx, 1)? {
            Some(c) => Some(c.values.clone()),
            None => a
                .floats("scales")
                .map_err(inv)?
                .map(|v| v.iter().map(|&f| f64::from(f)).collect()),
        };
        (scales, None)
    } else if cx.opset < 11 {
        (im.constant(cx, 1)?.map(|c| c.values.clone()), None)
    } else {
        let scales = im
            .constant(cx, 2)?
            .filter(|c| !c.is_empty())
            .map(|c| c.values.clone());
        let sizes = im
            .constant(cx, 3)?
            .filter(|c| !c.is_empty())
            .map(|c| c.ints())
            .transpose()
            .map_err(inv)?;
        (scales, sizes)
    };
    if a.has("axes") {
        return Err(cx.unsupported("the `axes` attribute"));
    }
    if a.int("antialias", 0).map_err(inv)? != 0 {
        return Err(cx.unsupported("antialias = 1"));
    }
    let size = match (sizes, scales) {
        (Some(z), _) => {
            if z.len() != 4 || z[1] != i64::from(s.c) || z[2] <= 0 || z[3] <= 0 {
                return Err(cx.unsupported(format!("sizes {z:?}; ksnn resizes H and W only")));
            }
            [z[2] as u32, z[3] as u32]
        }
        (None, Some(sc)) => {
            if sc.len() != 4 || sc[0] != 1.0 || sc[1] != 1.0 || sc[2] <= 0.0 || sc[3] <= 0.0 {
                return Err(cx.unsupported(format!("scales {sc:?}; ksnn resizes H and W only")));
            }
            [
                (f64::from(s.h) * sc[2]).floor() as u32,
                (f64::from(s.w) * sc[3]).floor() as u32,
            ]
        }
        (None, None) => return Err(cx.invalid("neither scales nor sizes")),
    };
    let mode = a.string("mode", "nearest").map_err(inv)?;
    let ctm = if legacy {
        "asymmetric".to_string()
    } else {
        a.string("coordinate_transformation_mode", "half_pixel")
            .map_err(inv)?
    };
    let nearest_mode = if legacy {
        "floor".to_string()
    } else {
        a.string("nearest_mode", "round_prefer_floor")
            .map_err(inv)?
    };
    let integer_factor = size[0] % s.h == 0 && size[1] % s.w == 0;
    let mode = match mode.as_str() {
        "nearest" => {
            let exact = (ctm == "asymmetric" && nearest_mode == "floor")
                || (integer_factor
                    && matches!(ctm.as_str(), "half_pixel" | "pytorch_half_pixel")
                    && matches!(
                        nearest_mode.as_str(),
                        "round_prefer_floor" | "round_prefer_ceil"
                    ));
            if !exact {
                return Err(cx.unsupported(format!(
                    "nearest resizing with {ctm} coordinates and {nearest_mode} rounding to {}x{}; ksnn supports PyTorch's nearest (asymmetric, floor)",
                    size[0], size[1]
                )));
            }
            UpsampleMode::Nearest
        }
        "linear" | "bilinear" => match ctm.as_str() {
            "align_corners" => UpsampleMode::Bilinear {
                align_corners: true,
            },
            "half_pixel" => UpsampleMode::Bilinear {
                align_corners: false,
            },
            "pytorch_half_pixel" if size[0] > 1 && size[1] > 1 => UpsampleMode::Bilinear {
                align_corners: false,
            },
            other => {
                return Err(cx.unsupported(format!(
                    "linear resizing with {other} coordinates; ksnn supports align_corners and half_pixel"
                )));
            }
        },
        other => return Err(cx.unsupported(format!("mode `{other}`"))),
    };
    let y = im.add(cx, "", IrOp::Upsample(Upsample { mode, size }), &[x])?;
    im.set(cx, 0, Value::Tensor { id: y, rank: 4 });
    Ok(())
}
