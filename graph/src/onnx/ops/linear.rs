//! `Gemm` and `MatMul` with a constant right-hand side: a linear layer on flattened input.

use ksnn_formats::layer::Linear;

use crate::ir::IrOp;
use crate::onnx::tensor::Const;
use crate::onnx::{Cx, Importer, OnnxError, Value};

/// Adds a linear layer with `weight [out, in]` and an optional bias.
fn linear(
    im: &mut Importer,
    cx: &Cx,
    x: u32,
    w: Const,
    bias: Option<Vec<f32>>,
) -> Result<(), OnnxError> {
    let (out, inp) = (w.dims[0] as u32, w.dims[1] as u32);
    let s = im.shape(x);
    if s.elements() != u64::from(inp) {
        return Err(cx.invalid(format!(
            "weight expects {inp} inputs, the input has {}",
            s.elements()
        )));
    }
    let op = IrOp::Linear(Linear {
        in_features: inp,
        out_features: out,
        bias: bias.is_some(),
    });
    let y = im.add(cx, "", op, &[x])?;
    im.param(y, "weight", vec![out, inp], w.f32s());
    if let Some(b) = bias {
        im.param(y, "bias", vec![out], b);
    }
    im.set(cx, 0, Value::Tensor { id: y, rank: 2 });
    Ok(())
}

fn flat_input(im: &Importer, cx: &Cx) -> Result<u32, OnnxError> {
    let (x, rank) = im.tensor(cx, 0)?;
    let s = im.shape(x);
    if rank != 2 && (s.h, s.w) != (1, 1) {
        return Err(cx.unsupported(format!(
            "input of rank {rank} ({s}); ksnn needs it flattened"
        )));
    }
    Ok(x)
}

pub(super) fn gemm(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let x = flat_input(im, cx)?;
    let a = cx.attrs();
    let inv = |e| cx.invalid(e);
    if a.int("transA", 0).map_err(inv)? != 0 {
        return Err(cx.unsupported("transA = 1"));
    }
    let (alpha, beta) = (
        a.float("alpha", 1.0).map_err(inv)?,
        a.float("beta", 1.0).map_err(inv)?,
    );
    let b = im.required_constant(cx, 1)?;
    if b.dims.len() != 2 {
        return Err(cx.invalid(format!("B has shape {:?}", b.dims)));
    }
    let w = if a.int("transB", 0).map_err(inv)? != 0 {
        b.clone()
    } else {
        b.transpose(&[1, 0]).map_err(inv)?
    };
    let w = Const::new(
        w.dims,
        w.values.iter().map(|v| v * f64::from(alpha)).collect(),
    );
    let out = w.dims[0];
    let bias = match im.constant(cx, 2)? {
        None => None,
        Some(c)
            if c.squeezed_dims().iter().product::<usize>() == c.len()
                && (c.len() == out || c.len() == 1) =>
        {
            let v: Vec<f32> = c
                .values
                .iter()
                .map(|v| (v * f64::from(beta)) as f32)
                .collect();
            Some(if v.len() == 1 { vec![v[0]; out] } else { v })
        }
        Some(c) => {
            return Err(cx.unsupported(format!(
                "C of shape {:?}; ksnn supports a bias per output",
                c.dims
            )));
        }
    };
    linear(im, cx, x, w, bias)
}

pub(super) fn matmul(im: &mut Importer, cx: &Cx) -> Result<(), OnnxError> {
    let x = flat_input(im, cx)?;
    let b = im.required_constant(cx, 1)?;
    if b.dims.len() != 2 {
        return Err(cx.unsupported(format!(
            "B of shape {:?}; ksnn supports a 2-D constant",
            b.dims
        )));
    }
    let w = b.transpose(&[1, 0]).map_err(|e| cx.invalid(e))?;
    linear(im, cx, x, w, None)
}
