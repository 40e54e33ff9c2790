//! Pooling on ring elements: average pooling as a window sum times a public fixed-point
//! reciprocal (the caller truncates), global average pooling, and the input taps of max
//! pooling.

use ksnn_formats::Shape;
use ksnn_formats::layer::{AvgPool, MaxPool, Padding};

/// One window along an axis: in-bounds `[lo, hi)` and PyTorch's divisor span.
fn window(
    o: usize,
    k: usize,
    s: usize,
    pad_begin: usize,
    pad_end: usize,
    n: usize,
) -> (usize, usize, usize) {
    let start = (o * s) as isize - pad_begin as isize;
    let end = (start + k as isize).min((n + pad_end) as isize);
    let span = (end - start) as usize;
    let lo = start.max(0) as usize;
    let hi = end.min(n as isize) as usize;
    (lo, hi, span)
}

/// `round(2^f / count)`.
pub fn reciprocal(count: u64, frac_bits: u8) -> u64 {
    ((1u64 << frac_bits) as f64 / count as f64).round() as u64
}

/// Average pooling before truncation: each window's sum times `round(2^f / divisor)`, the
/// divisor following PyTorch (`count_include_pad`, `ceil_mode` windows clipped at the
/// padded border). The result carries 2f fractional bits.
pub fn avg_pool_scaled(x: &[u64], xs: Shape, p: &AvgPool, ys: Shape, frac_bits: u8) -> Vec<u64> {
    let (h, w) = (xs.h as usize, xs.w as usize);
    let Padding {
        top,
        left,
        bottom,
        right,
    } = p.padding;
    let mut y = Vec::with_capacity(ys.elements() as usize);
    for c in 0..xs.c as usize {
        let src = &x[c * h * w..(c + 1) * h * w];
        for oy in 0..ys.h as usize {
            let (y0, y1, sy) = window(
                oy,
                p.kernel[0] as usize,
                p.stride[0] as usize,
                top as usize,
                bottom as usize,
                h,
            );
            for ox in 0..ys.w as usize {
                let (x0, x1, sx) = window(
                    ox,
                    p.kernel[1] as usize,
                    p.stride[1] as usize,
                    left as usize,
                    right as usize,
                    w,
                );
                let mut sum = 0u64;
                for iy in y0..y1 {
                    for v in &src[iy * w + x0..iy * w + x1] {
                        sum = sum.wrapping_add(*v);
                    }
                }
                let count = if p.count_include_pad {
                    sy * sx
                } else {
                    (y1 - y0) * (x1 - x0)
                };
                y.push(sum.wrapping_mul(reciprocal(count as u64, frac_bits)));
            }
        }
    }
    y
}

/// Global average pooling before truncation: per-channel sum times `round(2^f / (H·W))`.
pub fn global_avg_scaled(x: &[u64], xs: Shape, frac_bits: u8) -> Vec<u64> {
    let plane = xs.plane() as usize;
    let r = reciprocal(xs.plane(), frac_bits);
    x.chunks(plane)
        .map(|ch| {
            ch.iter()
                .fold(0u64, |a, v| a.wrapping_add(*v))
                .wrapping_mul(r)
        })
        .collect()
}

/// For each of the `kh·kw` window positions, the input index each output reads. Positions
/// outside the input repeat the window's first in-bounds element, which leaves the maximum
/// unchanged (padding never wins).
pub fn max_pool_taps(xs: Shape, p: &MaxPool, ys: Shape) -> Vec<Vec<u32>> {
    let (h, w) = (xs.h as usize, xs.w as usize);
    let (kh, kw) = (p.kernel[0] as usize, p.kernel[1] as usize);
    let mut taps = vec![Vec::with_capacity(ys.elements() as usize); kh * kw];
    for c in 0..xs.c as usize {
        for oy in 0..ys.h as usize {
            let (y0, y1, _) = window(
                oy,
                kh,
                p.stride[0] as usize,
                p.padding.top as usize,
                p.padding.bottom as usize,
                h,
            );
            for ox in 0..ys.w as usize {
                let (x0, x1, _) = window(
                    ox,
                    kw,
                    p.stride[1] as usize,
                    p.padding.left as usize,
                    p.padding.right as usize,
                    w,
                );
                let first = (c * h + y0) * w + x0;
                let start_y = (oy * p.stride[0] as usize) as isize - p.padding.top as isize;
                let start_x = (ox * p.stride[1] as usize) as isize - p.padding.left as isize;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = start_y + ky as isize;
                        let ix = start_x + kx as isize;
                        let inside = iy >= y0 as isize
                            && iy < y1 as isize
                            && ix >= x0 as isize
                            && ix < x1 as isize;
                        let idx = if inside {
                            (c * h + iy as usize) * w + ix as usize
                        } else {
                            first
                        };
                        taps[ky * kw + kx].push(idx as u32);
                    }
                }
            }
        }
    }
    taps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisors_follow_pytorch() {
        // 3x3 input, 2x2 window, stride 2, ceil mode: the last window is clipped.
        let xs = Shape::new(1, 3, 3);
        let ys = Shape::new(1, 2, 2);
        let ones = vec![1u64 << 8; 9];
        let mut p = AvgPool {
            kernel: [2, 2],
            stride: [2, 2],
            padding: Padding::default(),
            ceil_mode: true,
            count_include_pad: true,
        };
        let y = avg_pool_scaled(&ones, xs, &p, ys, 8);
        // Windows of 4, 2, 2, 1 in-bounds pixels; PyTorch divides by the clipped size, so
        // every mean of ones is one.
        assert!(y.iter().all(|&v| v >> 8 == 1 << 8), "{y:?}");
        p.padding = Padding::uniform(1);
        p.ceil_mode = false;
        let y = avg_pool_scaled(&ones, xs, &p, ys, 8);
        // With padding counted, the corner window holds 1 real pixel of 4.
        assert_eq!(y[0] >> 8, (1 << 8) / 4);
        p.count_include_pad = false;
        let y = avg_pool_scaled(&ones, xs, &p, ys, 8);
        assert_eq!(y[0] >> 8, 1 << 8);
    }

    #[test]
    fn max_taps_never_read_padding() {
        let xs = Shape::new(1, 2, 2);
        let p = MaxPool {
            kernel: [3, 3],
            stride: [1, 1],
            padding: Padding::uniform(1),
            ceil_mode: false,
        };
        let taps = max_pool_taps(xs, &p, xs);
        assert_eq!(taps.len(), 9);
        // Output (0,0) sees inputs 0,1,2,3 and repeats input 0 for its padded taps.
        let seen: Vec<u32> = taps.iter().map(|t| t[0]).collect();
        assert_eq!(seen, [0, 0, 0, 0, 0, 1, 0, 2, 3]);
    }
}
