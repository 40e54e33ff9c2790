//! Activation shapes and the one rule for sliding-window output sizes.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Problem;
use crate::limits::{MAX_CHANNELS, MAX_ELEMENTS, MAX_SPATIAL};

/// The shape of one activation at batch 1: channels × height × width. A flattened vector of
/// N features is `N×1×1`, so fully connected layers are 1×1 convolutions on it, as in the
/// original system.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Channels (or features of a flattened vector).
    pub c: u32,
    /// Height in pixels.
    pub h: u32,
    /// Width in pixels.
    pub w: u32,
}

impl Shape {
    /// The shape `c×h×w` (not checked against the limits; see [`Shape::check`]).
    pub const fn new(c: u32, h: u32, w: u32) -> Self {
        Self { c, h, w }
    }

    /// A flat vector of `n` features.
    pub const fn vector(n: u32) -> Self {
        Self { c: n, h: 1, w: 1 }
    }

    /// Number of elements.
    pub const fn elements(&self) -> u64 {
        self.c as u64 * self.h as u64 * self.w as u64
    }

    /// Pixels per channel.
    pub const fn plane(&self) -> u64 {
        self.h as u64 * self.w as u64
    }

    /// Checks the shape against the format limits.
    pub fn check(&self) -> Result<(), Problem> {
        for (field, v, max) in [
            ("channels", self.c, MAX_CHANNELS),
            ("height", self.h, MAX_SPATIAL),
            ("width", self.w, MAX_SPATIAL),
        ] {
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
        }
        if self.elements() > MAX_ELEMENTS {
            return Err(Problem::TooLarge {
                field: "elements",
                value: self.elements(),
                max: MAX_ELEMENTS,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One spatial axis of a sliding window (convolution or pooling), as PyTorch and ONNX define
/// it, including `ceil_mode`'s rule that the last window must start inside the input or the
/// leading padding.
#[derive(Clone, Copy, Debug)]
pub struct WindowAxis {
    /// Input length along this axis, before padding.
    pub input: u32,
    /// Window length (taps), before dilation.
    pub kernel: u32,
    /// Step between window starts; positive.
    pub stride: u32,
    /// Padding before the first input position.
    pub pad_begin: u32,
    /// Padding after the last input position.
    pub pad_end: u32,
    /// Spacing between taps (1 = contiguous); the window spans `dilation·(kernel − 1) + 1`.
    pub dilation: u32,
    /// Round the output length up instead of down (PyTorch `ceil_mode`).
    pub ceil_mode: bool,
}

impl WindowAxis {
    /// Output length along this axis; `axis` names it in errors.
    pub fn output(&self, axis: &'static str) -> Result<u32, Problem> {
        let padded = u64::from(self.input) + u64::from(self.pad_begin) + u64::from(self.pad_end);
        let span = u64::from(self.dilation) * (u64::from(self.kernel) - 1) + 1;
        if span > padded {
            return Err(Problem::EmptyOutput { axis });
        }
        let stride = u64::from(self.stride);
        let room = padded - span;
        let mut out = if self.ceil_mode {
            room.div_ceil(stride) + 1
        } else {
            room / stride + 1
        };
        if self.ceil_mode && (out - 1) * stride >= u64::from(self.input) + u64::from(self.pad_begin)
        {
            out -= 1;
        }
        u32::try_from(out).map_err(|_| Problem::Overflow { field: axis })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(input: u32, kernel: u32, stride: u32, pad: u32, dilation: u32, ceil: bool) -> u32 {
        WindowAxis {
            input,
            kernel,
            stride,
            pad_begin: pad,
            pad_end: pad,
            dilation,
            ceil_mode: ceil,
        }
        .output("h")
        .unwrap()
    }

    #[test]
    fn matches_pytorch_formulas() {
        // ResNet stem: 224, 7x7/2 pad 3 -> 112; max-pool 3x3/2 pad 1 -> 56.
        assert_eq!(axis(224, 7, 2, 3, 1, false), 112);
        assert_eq!(axis(112, 3, 2, 1, 1, false), 56);
        // Dilated 3x3 with padding = dilation keeps the size.
        assert_eq!(axis(64, 3, 1, 4, 4, false), 64);
        // ceil_mode: 5 with 2x2/2 gives 3 (torch.nn.MaxPool2d(2, 2, ceil_mode=True)).
        assert_eq!(axis(5, 2, 2, 0, 1, true), 3);
        assert_eq!(axis(5, 2, 2, 0, 1, false), 2);
        // ceil_mode never starts a window in the trailing padding: 4, k=2, s=2, p=1 -> 3.
        assert_eq!(axis(4, 2, 2, 1, 1, true), 3);
        assert_eq!(axis(6, 3, 3, 1, 1, true), 3);
    }

    #[test]
    fn window_larger_than_input_is_an_error() {
        let w = WindowAxis {
            input: 2,
            kernel: 5,
            stride: 1,
            pad_begin: 0,
            pad_end: 0,
            dilation: 1,
            ceil_mode: false,
        };
        assert_eq!(w.output("w"), Err(Problem::EmptyOutput { axis: "w" }));
    }
}
