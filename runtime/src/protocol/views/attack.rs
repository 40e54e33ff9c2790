//! The F1 attack (`docs/security.md`): the helper deals both parties' bit shares mod 67 in the
//! wrap-bit protocol, so without the common zero-sharing it sees d1[k]/d0[k] = c1_i/c0_i for
//! every position (s_i cancels), a function of its shares and of the hidden (η, bits of r)
//! alone. A depth-first search over η and r's bits, keeping branches whose predicted ratios
//! are among the observed ones, recovers r and so the compared value u = x − r.

use crate::prf::{P, mask};
use crate::protocol::private_compare::bits_msb_first;

/// What the helper knows about one comparison: the masked value x, both parties' bit shares
/// of it (it dealt them) and the two vectors it received.
pub struct Element<'a> {
    pub bits: u32,
    pub x: u64,
    pub x0: &'a [u8],
    pub x1: &'a [u8],
    pub d0: &'a [u8],
    pub d1: &'a [u8],
}

fn modp(v: i32) -> u8 {
    v.rem_euclid(P as i32) as u8
}

fn inv(a: u8) -> u8 {
    super::INV_MOD_P[a as usize]
}

/// What a position's pair (d0, d1) = s·(c0, c1) shows whatever s is: the ratio, or which is 0.
fn signature(c0: u8, c1: u8) -> usize {
    if c0 == 0 {
        67 + (c1 == 0) as usize
    } else {
        (c1 as u16 * inv(c0) as u16 % P as u16) as usize
    }
}

/// The pair (c0, c1) at position `i` for the hypothesis (σ, t_i) and the prefix sums.
fn predicted(e: &Element, i: usize, sigma: i32, t: i32, prefix: (i32, i32)) -> (u8, u8) {
    let (x0, x1) = (e.x0[i] as i32, e.x1[i] as i32);
    (
        modp(sigma * x0 + prefix.0),
        modp(sigma * (x1 - t) + 1 + prefix.1),
    )
}

fn next_prefix(e: &Element, i: usize, t: i32, prefix: (i32, i32)) -> (i32, i32) {
    let (x0, x1) = (e.x0[i] as i32, e.x1[i] as i32);
    (
        (prefix.0 + x0 - 2 * t * x0).rem_euclid(P as i32),
        (prefix.1 + x1 + t - 2 * t * x1).rem_euclid(P as i32),
    )
}

fn observed(e: &Element) -> [u32; 69] {
    let mut counts = [0u32; 69];
    for (&a, &b) in e.d0.iter().zip(e.d1) {
        counts[if a == 0 {
            67 + (b == 0) as usize
        } else {
            (b as u16 * inv(a) as u16 % P as u16) as usize
        }] += 1;
    }
    counts
}

struct Search<'a> {
    e: &'a Element<'a>,
    counts: [u32; 69],
    nodes: usize,
    budget: usize,
}

impl Search<'_> {
    fn dfs(&mut self, i: usize, sigma: i32, prefix: (i32, i32), t: u64) -> Option<u64> {
        let n = self.e.bits as usize;
        if i == n {
            return Some(t);
        }
        for bit in 0..2 {
            self.nodes += 1;
            if self.nodes > self.budget {
                return None;
            }
            let (c0, c1) = predicted(self.e, i, sigma, bit, prefix);
            let sig = signature(c0, c1);
            if self.counts[sig] == 0 {
                continue;
            }
            self.counts[sig] -= 1;
            let found = self.dfs(
                i + 1,
                sigma,
                next_prefix(self.e, i, bit, prefix),
                (t << 1) | bit as u64,
            );
            self.counts[sig] += 1;
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// The attack on one comparison PrivateCompare(x, r − 1, η): the first full path of the
/// search, turned into u = x − r; `None` when the node budget runs out first.
pub fn recover(e: &Element, budget: usize) -> Option<u64> {
    let m = mask(e.bits);
    let mut s = Search {
        e,
        counts: observed(e),
        nodes: 0,
        budget,
    };
    // η = 0 compares against T = r − 1 with σ = −1; η = 1 against T = r with σ = +1.
    for eta in 0..2u64 {
        let sigma = if eta == 0 { -1 } else { 1 };
        if let Some(t) = s.dfs(0, sigma, (0, 0), 0) {
            let r = if eta == 0 { t.wrapping_add(1) } else { t } & m;
            return Some(e.x.wrapping_sub(r) & m);
        }
    }
    None
}

/// The knowledge-conditioned statistic: for the hypothesis "u = `guess`" and each η, how many
/// of the first four positions' predicted signatures appear among the observed ones
/// (0..=4 each, 25 bins). With the leak the true hypothesis matches all four; with the
/// zero-sharing the observed ratios are independent of everything the helper knows.
pub fn presence(e: &Element, guess: u64) -> usize {
    let m = mask(e.bits);
    let counts = observed(e);
    let r = e.x.wrapping_sub(guess) & m;
    let mut sym = 0;
    for eta in 0..2 {
        let (sigma, t) = if eta == 0 {
            (-1, r.wrapping_sub(1) & m)
        } else {
            (1, r)
        };
        let tb: Vec<u8> = bits_msb_first(t, e.bits).collect();
        let mut prefix = (0, 0);
        let mut hits = 0;
        for (i, &ti) in tb.iter().enumerate().take(4) {
            let (c0, c1) = predicted(e, i, sigma, ti as i32, prefix);
            hits += (counts[signature(c0, c1)] > 0) as usize;
            prefix = next_prefix(e, i, ti as i32, prefix);
        }
        sym = sym * 5 + hits;
    }
    sym
}
