//! Shape inference and per-op parameter checks: the one shape rule of the whole system.
//! The compiler's lowering, the runtime and `ksnn-tools inspect` all call [`output_shape`].

use crate::error::Problem;
use crate::layer::{ActivationKind, Conv2d, Op, Padding};
use crate::limits::{
    MAX_ACTIVATION_CONSTANT, MAX_CHANNELS, MAX_INPUTS, MAX_PADDING, MAX_WEIGHT_ELEMENTS, MAX_WINDOW,
};
use crate::shape::{Shape, WindowAxis};

/// How many inputs `op` takes, as (min, max, words for messages).
pub fn arity(op: &Op) -> (usize, usize, &'static str) {
    match op {
        Op::Add | Op::Mul => (2, 2, "exactly 2"),
        Op::Concat => (1, MAX_INPUTS, "1 or more"),
        _ => (1, 1, "exactly 1"),
    }
}

/// Checks `op`'s parameters against its input shapes and returns its output shape.
/// `inputs.len()` must already match [`arity`].
pub fn output_shape(op: &Op, inputs: &[Shape]) -> Result<Shape, Problem> {
    let x = inputs[0];
    let out =
        match op {
            Op::Conv2d(c) => conv_shape(c, x)?,
            Op::Linear(l) => {
                positive("out_features", l.out_features, MAX_CHANNELS)?;
                let expected = Shape::vector(l.in_features);
                if x != expected {
                    return Err(Problem::ShapeMismatch { expected, got: x });
                }
                weight_elements(u64::from(l.in_features) * u64::from(l.out_features))?;
                Shape::vector(l.out_features)
            }
            Op::BlockRelu(_) | Op::Activation(_) => {
                if let Op::Activation(a) = op {
                    activation_constants(a.kind)?;
                }
                let blocks = op.blocks().unwrap_or_default();
                if blocks.len() as u64 != u64::from(x.c) {
                    return Err(Problem::SpecLength {
                        expected: x.c.into(),
                        got: blocks.len() as u64,
                    });
                }
                for (ch, block) in blocks.iter().enumerate() {
                    block.check(ch as u64, x.h, x.w)?;
                }
                x
            }
            Op::Clip(c) => {
                if c.min >= c.max {
                    return Err(Problem::Order {
                        field: "min, max",
                        low: c.min,
                        high: c.max,
                    });
                }
                x
            }
            Op::MaxPool(p) => pool_shape(x, p.kernel, p.stride, p.padding, p.ceil_mode)?,
            Op::AvgPool(p) => pool_shape(x, p.kernel, p.stride, p.padding, p.ceil_mode)?,
            Op::GlobalAvgPool => Shape::vector(x.c),
            Op::Add => {
                if inputs[1] != x {
                    return Err(Problem::ShapeMismatch {
                        expected: x,
                        got: inputs[1],
                    });
                }
                x
            }
            Op::Mul => {
                let gate = Shape::vector(x.c);
                if inputs[1] != x && inputs[1] != gate {
                    return Err(Problem::ShapeMismatch {
                        expected: if inputs[1].c == x.c { gate } else { x },
                        got: inputs[1],
                    });
                }
                x
            }
            Op::Concat => {
                let mut c = 0u64;
                for s in inputs {
                    if (s.h, s.w) != (x.h, x.w) {
                        return Err(Problem::ShapeMismatch {
                            expected: Shape::new(s.c, x.h, x.w),
                            got: *s,
                        });
                    }
                    c += u64::from(s.c);
                }
                let c = u32::try_from(c).ok().filter(|&c| c <= MAX_CHANNELS).ok_or(
                    Problem::TooLarge {
                        field: "concatenated channels",
                        value: c,
                        max: MAX_CHANNELS.into(),
                    },
                )?;
                Shape::new(c, x.h, x.w)
            }
            Op::Flatten => {
                let n = x.elements();
                if n > u64::from(MAX_CHANNELS) {
                    return Err(Problem::TooLarge {
                        field: "flattened features",
                        value: n,
                        max: MAX_CHANNELS.into(),
                    });
                }
                Shape::vector(n as u32)
            }
            Op::Upsample(u) => Shape::new(x.c, u.size[0], u.size[1]),
            Op::ScaleBias(s) => {
                if s.channels != x.c {
                    return Err(Problem::Mismatch {
                        field: "channels",
                        expected: x.c.into(),
                        got: s.channels.into(),
                    });
                }
                if !s.scale && !s.bias {
                    return Err(Problem::Invalid("scale_bias with neither scale nor bias"));
                }
                x
            }
        };
    out.check()?;
    Ok(out)
}

fn positive(field: &'static str, v: u32, max: u32) -> Result<(), Problem> {
    if v == 0 {
        return Err(Problem::Zero { field });
    }
    if v > max {
        return Err(Problem::TooLarge {
            field,
            value: v.into(),
            max: max.into(),
        });
    }
    Ok(())
}

fn pair(field: &'static str, v: [u32; 2]) -> Result<(), Problem> {
    positive(field, v[0], MAX_WINDOW)?;
    positive(field, v[1], MAX_WINDOW)
}

fn padding(p: Padding) -> Result<(), Problem> {
    let max = p.top.max(p.left).max(p.bottom).max(p.right);
    if max > MAX_PADDING {
        return Err(Problem::TooLarge {
            field: "padding",
            value: max.into(),
            max: MAX_PADDING.into(),
        });
    }
    Ok(())
}

fn weight_elements(n: u64) -> Result<(), Problem> {
    if n > MAX_WEIGHT_ELEMENTS {
        return Err(Problem::TooLarge {
            field: "weight elements",
            value: n,
            max: MAX_WEIGHT_ELEMENTS,
        });
    }
    Ok(())
}

fn axes(
    x: Shape,
    kernel: [u32; 2],
    stride: [u32; 2],
    pad: Padding,
    dilation: [u32; 2],
    ceil_mode: bool,
) -> Result<(u32, u32), Problem> {
    let h = WindowAxis {
        input: x.h,
        kernel: kernel[0],
        stride: stride[0],
        pad_begin: pad.top,
        pad_end: pad.bottom,
        dilation: dilation[0],
        ceil_mode,
    }
    .output("height")?;
    let w = WindowAxis {
        input: x.w,
        kernel: kernel[1],
        stride: stride[1],
        pad_begin: pad.left,
        pad_end: pad.right,
        dilation: dilation[1],
        ceil_mode,
    }
    .output("width")?;
    Ok((h, w))
}

fn conv_shape(c: &Conv2d, x: Shape) -> Result<Shape, Problem> {
    positive("out_channels", c.out_channels, MAX_CHANNELS)?;
    positive("groups", c.groups, MAX_CHANNELS)?;
    pair("kernel", c.kernel)?;
    pair("stride", c.stride)?;
    pair("dilation", c.dilation)?;
    padding(c.padding)?;
    if c.in_channels != x.c {
        return Err(Problem::Mismatch {
            field: "in_channels",
            expected: x.c.into(),
            got: c.in_channels.into(),
        });
    }
    for (field, v) in [
        ("in_channels", c.in_channels),
        ("out_channels", c.out_channels),
    ] {
        if v % c.groups != 0 {
            return Err(Problem::NotDivisible {
                field,
                value: v.into(),
                by: c.groups.into(),
            });
        }
    }
    weight_elements(
        u64::from(c.out_channels)
            * u64::from(c.in_channels / c.groups)
            * u64::from(c.kernel[0])
            * u64::from(c.kernel[1]),
    )?;
    let (h, w) = axes(x, c.kernel, c.stride, c.padding, c.dilation, false)?;
    Ok(Shape::new(c.out_channels, h, w))
}

fn pool_shape(
    x: Shape,
    kernel: [u32; 2],
    stride: [u32; 2],
    pad: Padding,
    ceil_mode: bool,
) -> Result<Shape, Problem> {
    pair("kernel", kernel)?;
    pair("stride", stride)?;
    padding(pad)?;
    // A window made only of padding has no maximum and no in-bounds pixels to average.
    if pad.top.max(pad.bottom) >= kernel[0] || pad.left.max(pad.right) >= kernel[1] {
        return Err(Problem::Invalid(
            "pooling padding must be smaller than the kernel",
        ));
    }
    let (h, w) = axes(x, kernel, stride, pad, [1, 1], ceil_mode)?;
    Ok(Shape::new(x.c, h, w))
}

/// An activation's raw constants must be small enough that their products stay in the ring.
fn activation_constants(kind: ActivationKind) -> Result<(), Problem> {
    let constants: &[(&'static str, i64)] = match kind {
        ActivationKind::LeakyRelu { slope } => &[("slope", slope)],
        ActivationKind::Prelu => &[],
        ActivationKind::HardSigmoid { alpha, beta } | ActivationKind::HardSwish { alpha, beta } => {
            &[("alpha", alpha), ("beta", beta)]
        }
    };
    for &(field, v) in constants {
        if v.unsigned_abs() > MAX_ACTIVATION_CONSTANT {
            return Err(Problem::TooLarge {
                field,
                value: v.unsigned_abs(),
                max: MAX_ACTIVATION_CONSTANT,
            });
        }
    }
    Ok(())
}
