//! Element-wise products of two shared vectors with helper-dealt Beaver triples, where the
//! second operand may be *compressed*: `z[i] = x[i] · y[map[i]]` (a block-ReLU multiplies each
//! pixel by its block's bit). The triple is compressed the same way, so opening `y − B`
//! costs one element per block, not per pixel.
//!
//! P0's triple shares (A0, B0) come from its stream with P2; P1's (A1, B1, C1) from its
//! stream with P2; P2 sends P0 `C0 = A·expand(B) − C1` offline. Online: one exchange of
//! `E = x − A`, `F = y − B` between P0 and P1 (16 bytes per pixel and per block in all).

use crate::prf::Purpose;
use crate::protocol::{Party, Result};
use crate::role::{Pair, Role};

/// The shape of one batched product.
#[derive(Clone, Debug)]
pub struct MulShape {
    /// Length of x and of the result.
    pub n_x: usize,
    /// Length of y.
    pub n_y: usize,
    /// `y` index of each `x` element; `None` means `y` has `n_x` elements, one each.
    pub map: Option<Vec<u32>>,
}

impl MulShape {
    /// A plain product of two length-`n` vectors: no compression, `y[i]` multiplies `x[i]`.
    pub fn elementwise(n: usize) -> Self {
        Self {
            n_x: n,
            n_y: n,
            map: None,
        }
    }

    /// The `y` index multiplied with `x[i]`.
    pub fn y_of(&self, i: usize) -> usize {
        self.map.as_ref().map_or(i, |m| m[i] as usize)
    }

    /// For each `y` index, the sum of the `x` elements it multiplies (a block's pixels).
    pub fn sums(&self, x: &[u64]) -> Vec<u64> {
        match &self.map {
            None => x.to_vec(),
            Some(map) => {
                let mut s = vec![0u64; self.n_y];
                for (&v, &k) in x.iter().zip(map) {
                    s[k as usize] = s[k as usize].wrapping_add(v);
                }
                s
            }
        }
    }
}

fn draws(p: &Party, shape: &MulShape, pair: Pair) -> (Vec<u64>, Vec<u64>, crate::prf::Stream) {
    let mut st = p.stream(pair, Purpose::MulTriple);
    let a = st.ring(shape.n_x);
    let b = st.ring(shape.n_y);
    (a, b, st)
}

/// Offline: P2 deals; P0 receives and returns its `C0`; P1 returns nothing.
pub fn offline(p: &mut Party, shape: &MulShape) -> Result<Option<Vec<u64>>> {
    match p.role {
        Role::Helper => {
            let (a0, b0, _) = draws(p, shape, Pair::ClientHelper);
            let (a1, b1, mut st) = draws(p, shape, Pair::ServerHelper);
            let c1 = st.ring(shape.n_x);
            let c0 = crate::par::map(shape.n_x, |i| {
                let a = a0[i].wrapping_add(a1[i]);
                let b = b0[shape.y_of(i)].wrapping_add(b1[shape.y_of(i)]);
                a.wrapping_mul(b).wrapping_sub(c1[i])
            });
            p.send_ring(Role::Client, "product: triple share C0 to P0", &c0)?;
            Ok(None)
        }
        Role::Client => Ok(Some(p.recv_ring(
            Role::Helper,
            "product: triple share C0",
            shape.n_x,
        )?)),
        Role::Server => Ok(None),
    }
}

/// Online: shares of `x ⊙ expand(y)`. `c0` is P0's offline result. P2 returns an empty vector.
pub fn online(
    p: &mut Party,
    shape: &MulShape,
    x: &[u64],
    y: &[u64],
    c0: Option<&[u64]>,
) -> Result<Vec<u64>> {
    let (a, b, c) = match p.role {
        Role::Helper => return Ok(Vec::new()),
        Role::Client => {
            let (a, b, _) = draws(p, shape, Pair::ClientHelper);
            (a, b, c0.expect("P0 has its offline triple share").to_vec())
        }
        Role::Server => {
            let (a, b, mut st) = draws(p, shape, Pair::ServerHelper);
            let c = st.ring(shape.n_x);
            (a, b, c)
        }
    };
    let mut ef: Vec<u64> = crate::ring::sub(x, &a);
    ef.extend(crate::ring::sub(y, &b));
    let other = p.exchange_ring("product: open x − A, y − B", &ef)?;
    crate::ring::add_assign(&mut ef, &other);
    let (e, f) = ef.split_at(shape.n_x);
    let j = p.j();
    Ok(crate::par::map(shape.n_x, |i| {
        let k = shape.y_of(i);
        (j.wrapping_mul(e[i]).wrapping_mul(f[k]))
            .wrapping_add(e[i].wrapping_mul(b[k]))
            .wrapping_add(a[i].wrapping_mul(f[k]))
            .wrapping_add(c[i])
    }))
}

/// Offline and online in one call, for protocols whose product is not preprocessed.
#[cfg(test)]
pub fn mul(p: &mut Party, shape: &MulShape, x: &[u64], y: &[u64]) -> Result<Vec<u64>> {
    let c0 = offline(p, shape)?;
    online(p, shape, x, y, c0.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{mine, rand_u64, run3, split};
    use ksnn_formats::ProtocolConfig;

    #[test]
    fn compressed_products() {
        let x: Vec<u64> = (0..50).map(|_| rand_u64()).collect();
        let y: Vec<u64> = (0..7).map(|_| rand_u64()).collect();
        let map: Vec<u32> = (0..50).map(|i| (i % 7) as u32).collect();
        let shape = MulShape {
            n_x: 50,
            n_y: 7,
            map: Some(map.clone()),
        };
        let (xs, ys) = (split(&x), split(&y));
        let out = run3(ProtocolConfig::default(), |p| {
            mul(p, &shape, &mine(p.role, &xs), &mine(p.role, &ys)).unwrap()
        });
        let z = crate::ring::add(&out[0].0, &out[1].0);
        for i in 0..50 {
            assert_eq!(z[i], x[i].wrapping_mul(y[map[i] as usize]));
        }
    }
}
