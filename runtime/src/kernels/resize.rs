//! Upsampling: nearest (an exact gather) and bilinear (public fixed-point weights; the
//! result carries 2f fractional bits and the caller truncates).

use ksnn_formats::Shape;
use ksnn_formats::layer::UpsampleMode;

/// Source index of nearest-neighbour resizing, PyTorch's `nearest`: `floor(dst·in/out)`.
fn nearest_src(dst: usize, input: usize, output: usize) -> usize {
    (dst * input / output).min(input - 1)
}

/// Source indices and the weight of the second one, for bilinear resizing along an axis.
fn linear_src(dst: usize, input: usize, output: usize, align_corners: bool) -> (usize, usize, f64) {
    let src = if align_corners {
        if output > 1 {
            dst as f64 * (input - 1) as f64 / (output - 1) as f64
        } else {
            0.0
        }
    } else {
        ((dst as f64 + 0.5) * input as f64 / output as f64 - 0.5).max(0.0)
    };
    let i0 = (src.floor() as usize).min(input - 1);
    let i1 = (i0 + 1).min(input - 1);
    (i0, i1, src - i0 as f64)
}

/// Nearest-neighbour upsampling of every channel to `ys`.
pub fn nearest(x: &[u64], xs: Shape, ys: Shape) -> Vec<u64> {
    let (h, w) = (xs.h as usize, xs.w as usize);
    let mut y = Vec::with_capacity(ys.elements() as usize);
    for c in 0..xs.c as usize {
        for oy in 0..ys.h as usize {
            let row = (c * h + nearest_src(oy, h, ys.h as usize)) * w;
            for ox in 0..ys.w as usize {
                y.push(x[row + nearest_src(ox, w, ys.w as usize)]);
            }
        }
    }
    y
}

/// Bilinear upsampling before truncation: each output is `Σ wᵢ·xᵢ` over its four source
/// pixels, with `wᵢ` the product of the two axis weights at f fractional bits, rounded so
/// that the four sum to exactly 2^f.
pub fn bilinear_scaled(
    x: &[u64],
    xs: Shape,
    ys: Shape,
    align_corners: bool,
    frac_bits: u8,
) -> Vec<u64> {
    let (h, w) = (xs.h as usize, xs.w as usize);
    let one = 1u64 << frac_bits;
    let axis = |n_in: usize, n_out: usize| -> Vec<(usize, usize, u64, u64)> {
        (0..n_out)
            .map(|d| {
                let (i0, i1, l) = linear_src(d, n_in, n_out, align_corners);
                let w1 = (l * one as f64).round() as u64;
                (i0, i1, one - w1, w1)
            })
            .collect()
    };
    let ay = axis(h, ys.h as usize);
    let ax = axis(w, ys.w as usize);
    let mut y = Vec::with_capacity(ys.elements() as usize);
    for c in 0..xs.c as usize {
        let src = &x[c * h * w..(c + 1) * h * w];
        for &(y0, y1, wy0, wy1) in &ay {
            for &(x0, x1, wx0, wx1) in &ax {
                // Rounded 2-D weights that sum to exactly 2^f, so constants stay constant.
                let half = one >> 1;
                let w00 = (wy0 * wx0 + half) >> frac_bits;
                let w01 = (wy0 * wx1 + half) >> frac_bits;
                let w10 = (wy1 * wx0 + half) >> frac_bits;
                let w11 = one - w00 - w01 - w10;
                let taps = [(y0, x0, w00), (y0, x1, w01), (y1, x0, w10), (y1, x1, w11)];
                let v = taps.iter().fold(0u64, |acc, &(iy, ix, wt)| {
                    acc.wrapping_add(src[iy * w + ix].wrapping_mul(wt))
                });
                y.push(v);
            }
        }
    }
    y
}

/// Dispatches on the mode; the output needs truncating by f when [`scales`] says so.
pub fn upsample(x: &[u64], xs: Shape, ys: Shape, mode: UpsampleMode, frac_bits: u8) -> Vec<u64> {
    match mode {
        UpsampleMode::Nearest => nearest(x, xs, ys),
        UpsampleMode::Bilinear { align_corners } => {
            bilinear_scaled(x, xs, ys, align_corners, frac_bits)
        }
    }
}

/// Whether `mode` multiplies by fractional weights, so its output has 2f fractional bits.
pub fn scales(mode: UpsampleMode) -> bool {
    match mode {
        UpsampleMode::Nearest => false,
        UpsampleMode::Bilinear { .. } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_doubles() {
        let y = nearest(&[1, 2, 3, 4], Shape::new(1, 2, 2), Shape::new(1, 4, 4));
        assert_eq!(&y[..8], &[1, 1, 2, 2, 1, 1, 2, 2]);
    }

    #[test]
    fn bilinear_interpolates_and_broadcasts() {
        let f = 12;
        let enc = |v: f64| (v * 4096.0) as u64;
        // 1x1 broadcasts (DeepLab's image-pooling branch).
        let y = bilinear_scaled(
            &[enc(2.5)],
            Shape::new(1, 1, 1),
            Shape::new(1, 3, 3),
            false,
            f,
        );
        assert!(y.iter().all(|&v| (v >> f) == enc(2.5)));
        // align_corners: 0 and 1 resized to 3 gives 0, 0.5, 1.
        let y = bilinear_scaled(
            &[0, enc(1.0)],
            Shape::new(1, 1, 2),
            Shape::new(1, 1, 3),
            true,
            f,
        );
        let got: Vec<f64> = y.iter().map(|&v| (v >> f) as f64 / 4096.0).collect();
        assert_eq!(got, [0.0, 0.5, 1.0]);
    }
}
