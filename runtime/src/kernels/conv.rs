//! Convolution, fully connected and per-channel scaling on `u64` with wrapping arithmetic.

use ksnn_formats::Shape;
use ksnn_formats::layer::{Conv2d, Padding};
use rayon::prelude::*;

use super::gemm::gemm;

/// `y = conv(x, w)` with PyTorch semantics (groups, stride, padding, dilation), no bias.
/// `x` is `C×H×W`, `w` is `[out, in/groups, kh, kw]`, the result `out×OH×OW`.
pub fn conv2d(x: &[u64], xs: Shape, c: &Conv2d, ys: Shape, w: &[u64]) -> Vec<u64> {
    conv2d_sliced(x, xs, c, ys, w, COL_BYTES)
}

/// [`conv2d`] with im2col matrices of at most `col_bytes` (tests slice small ones).
fn conv2d_sliced(
    x: &[u64],
    xs: Shape,
    c: &Conv2d,
    ys: Shape,
    w: &[u64],
    col_bytes: usize,
) -> Vec<u64> {
    let (kh, kw) = (c.kernel[0] as usize, c.kernel[1] as usize);
    let (sh, sw) = (c.stride[0] as usize, c.stride[1] as usize);
    let (dh, dw) = (c.dilation[0] as usize, c.dilation[1] as usize);
    let (pt, pl) = (c.padding.top as isize, c.padding.left as isize);
    let (h, wd) = (xs.h as usize, xs.w as usize);
    let (oh, ow) = (ys.h as usize, ys.w as usize);
    let groups = c.groups as usize;
    let cin_g = c.in_channels as usize / groups;
    let cout_g = c.out_channels as usize / groups;
    let plane = oh * ow;
    let mut y = vec![0u64; c.out_channels as usize * plane];

    // Depthwise (one input and one output channel per group): each channel's taps applied
    // directly, channels in parallel. im2col would build a kh·kw-row matrix per channel for
    // a one-row GEMM, one channel after another.
    if cin_g == 1 && cout_g == 1 {
        y.par_chunks_mut(plane).enumerate().for_each(|(ch, out)| {
            let src = &x[ch * h * wd..(ch + 1) * h * wd];
            let taps = &w[ch * kh * kw..(ch + 1) * kh * kw];
            for ky in 0..kh {
                for kx in 0..kw {
                    let t = taps[ky * kw + kx];
                    for oy in 0..oh {
                        let iy = (oy * sh + ky * dh) as isize - pt;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * wd..(iy as usize + 1) * wd];
                        let dst = &mut out[oy * ow..(oy + 1) * ow];
                        for (ox, o) in dst.iter_mut().enumerate() {
                            let ix = (ox * sw + kx * dw) as isize - pl;
                            if ix >= 0 && ix < wd as isize {
                                *o = o.wrapping_add(t.wrapping_mul(row[ix as usize]));
                            }
                        }
                    }
                }
            }
        });
        return y;
    }

    // im2col per group: rows = cin_g·kh·kw, columns = output pixels; then a GEMM. A 1×1
    // convolution with stride 1 and no padding reads the input as it is. A large im2col is
    // built a few input channels at a time (at most COL_BYTES), each slice's GEMM adding into
    // the output: DeepLabV3's 3×3 bottleneck over 2,560 channels at 64×64 would otherwise
    // hold a 755 MB matrix. Ring sums are exact, so the order of the slices does not matter.
    let taps = kh * kw;
    let pointwise = kh == 1
        && kw == 1
        && sh == 1
        && sw == 1
        && c.padding == Padding::default()
        && (oh, ow) == (h, wd);
    let per_channel = taps * plane * std::mem::size_of::<u64>();
    let chunk = if pointwise {
        cin_g
    } else {
        (col_bytes / per_channel.max(1)).clamp(1, cin_g)
    };
    let mut col = Vec::new();
    let mut w_slice = Vec::new();
    for g in 0..groups {
        let wg = &w[g * cout_g * cin_g * taps..(g + 1) * cout_g * cin_g * taps];
        let yg = &mut y[g * cout_g * plane..(g + 1) * cout_g * plane];
        for c0 in (0..cin_g).step_by(chunk) {
            let c1 = (c0 + chunk).min(cin_g);
            let rows = (c1 - c0) * taps;
            let cols: &[u64] = if pointwise {
                &x[g * cin_g * plane..(g + 1) * cin_g * plane]
            } else {
                col.clear();
                col.resize(rows * plane, 0);
                col.par_chunks_mut(plane).enumerate().for_each(|(r, dst)| {
                    let ci = g * cin_g + c0 + r / taps;
                    let ky = (r / kw) % kh;
                    let kx = r % kw;
                    let src = &x[ci * h * wd..(ci + 1) * h * wd];
                    for oy in 0..oh {
                        let iy = (oy * sh + ky * dh) as isize - pt;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * wd..(iy as usize + 1) * wd];
                        for ox in 0..ow {
                            let ix = (ox * sw + kx * dw) as isize - pl;
                            if ix >= 0 && ix < wd as isize {
                                dst[oy * ow + ox] = row[ix as usize];
                            }
                        }
                    }
                });
                &col
            };
            // The weights' columns of these channels, contiguous (all of them: no copy).
            let ws: &[u64] = if rows == cin_g * taps {
                wg
            } else {
                w_slice.clear();
                for o in 0..cout_g {
                    let row = &wg[o * cin_g * taps..(o + 1) * cin_g * taps];
                    w_slice.extend_from_slice(&row[c0 * taps..c1 * taps]);
                }
                &w_slice
            };
            gemm(ws, cols, yg, cout_g, rows, plane);
        }
    }
    y
}

/// The most bytes an im2col matrix may take: larger ones are built in channel slices.
const COL_BYTES: usize = 64 << 20;

/// `y = W·x` for `W` `[out, in]`.
pub fn linear(x: &[u64], w: &[u64], out: usize) -> Vec<u64> {
    let mut y = vec![0u64; out];
    gemm(w, x, &mut y, out, x.len(), 1);
    y
}

/// `y[c,·] = x[c,·]·s[c]`.
pub fn scale_channels(x: &[u64], xs: Shape, s: &[u64]) -> Vec<u64> {
    let plane = xs.plane() as usize;
    x.chunks(plane)
        .zip(s)
        .flat_map(|(ch, &sv)| ch.iter().map(move |&v| v.wrapping_mul(sv)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksnn_formats::infer::output_shape;
    use ksnn_formats::layer::{Op, Padding};

    /// A direct 7-loop convolution on i64, to check the im2col path against.
    fn naive(x: &[i64], xs: Shape, c: &Conv2d, ys: Shape, w: &[i64]) -> Vec<i64> {
        let g = c.groups as usize;
        let cin_g = c.in_channels as usize / g;
        let cout_g = c.out_channels as usize / g;
        let mut y = vec![0i64; ys.elements() as usize];
        for co in 0..c.out_channels as usize {
            let grp = co / cout_g;
            for oy in 0..ys.h as usize {
                for ox in 0..ys.w as usize {
                    let mut acc = 0i64;
                    for ci in 0..cin_g {
                        for ky in 0..c.kernel[0] as usize {
                            for kx in 0..c.kernel[1] as usize {
                                let iy = (oy * c.stride[0] as usize + ky * c.dilation[0] as usize)
                                    as isize
                                    - c.padding.top as isize;
                                let ix = (ox * c.stride[1] as usize + kx * c.dilation[1] as usize)
                                    as isize
                                    - c.padding.left as isize;
                                if iy < 0 || ix < 0 || iy >= xs.h as isize || ix >= xs.w as isize {
                                    continue;
                                }
                                let xv = x[((grp * cin_g + ci) * xs.h as usize + iy as usize)
                                    * xs.w as usize
                                    + ix as usize];
                                let wv = w[((co * cin_g + ci) * c.kernel[0] as usize + ky)
                                    * c.kernel[1] as usize
                                    + kx];
                                acc += xv * wv;
                            }
                        }
                    }
                    y[(co * ys.h as usize + oy) * ys.w as usize + ox] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn matches_a_direct_convolution() {
        let cases = [
            (
                Shape::new(3, 7, 6),
                4,
                [3, 3],
                [1, 1],
                Padding::uniform(1),
                [1, 1],
                1,
            ),
            (
                Shape::new(4, 9, 9),
                4,
                [3, 3],
                [2, 2],
                Padding::uniform(2),
                [2, 2],
                4,
            ),
            (
                Shape::new(4, 5, 8),
                6,
                [1, 3],
                [1, 2],
                Padding {
                    top: 0,
                    left: 1,
                    bottom: 2,
                    right: 0,
                },
                [1, 1],
                2,
            ),
            // Several cache blocks, and the pointwise shortcut (with a strided 1×1 that
            // must not take it).
            (
                Shape::new(16, 20, 20),
                16,
                [3, 3],
                [1, 1],
                Padding::uniform(1),
                [1, 1],
                1,
            ),
            (
                Shape::new(32, 12, 12),
                24,
                [1, 1],
                [1, 1],
                Padding::default(),
                [1, 1],
                1,
            ),
            (
                Shape::new(32, 12, 12),
                24,
                [1, 1],
                [2, 2],
                Padding::default(),
                [1, 1],
                1,
            ),
            // Depthwise as MobileNet has it, and a channel multiplier of 2 (not depthwise).
            (
                Shape::new(32, 15, 13),
                32,
                [3, 3],
                [1, 1],
                Padding::uniform(1),
                [1, 1],
                32,
            ),
            (
                Shape::new(8, 9, 9),
                16,
                [3, 3],
                [2, 2],
                Padding::uniform(1),
                [1, 1],
                8,
            ),
        ];
        for (xs, out, kernel, stride, padding, dilation, groups) in cases {
            let c = Conv2d {
                in_channels: xs.c,
                out_channels: out,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias: false,
            };
            let ys = output_shape(&Op::Conv2d(c.clone()), &[xs]).unwrap();
            let x: Vec<i64> = (0..xs.elements() as i64)
                .map(|i| (i * 7919) % 23 - 11)
                .collect();
            let wn = out as usize * (xs.c / groups) as usize * (kernel[0] * kernel[1]) as usize;
            let w: Vec<i64> = (0..wn as i64).map(|i| (i * 104_729) % 13 - 6).collect();
            let expect = naive(&x, xs, &c, ys, &w);
            let xu: Vec<u64> = x.iter().map(|&v| v as u64).collect();
            let wu: Vec<u64> = w.iter().map(|&v| v as u64).collect();
            let got: Vec<i64> = conv2d(&xu, xs, &c, ys, &wu)
                .iter()
                .map(|&v| v as i64)
                .collect();
            assert_eq!(got, expect, "{c:?}");
            // im2col in slices of one and of three input channels adds up the same.
            let per_channel = (kernel[0] * kernel[1]) as usize * ys.plane() as usize * 8;
            for slice in [1, 3] {
                let got: Vec<i64> = conv2d_sliced(&xu, xs, &c, ys, &wu, slice * per_channel)
                    .iter()
                    .map(|&v| v as i64)
                    .collect();
                assert_eq!(got, expect, "{slice}-channel slices, {c:?}");
            }
        }
    }
}
