//! Distributed comparison functions (Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar, Rathee,
//! "Function Secret Sharing for Mixed-Mode and Fixed-Point Secure Computation", 2021, Fig. 1):
//! the dealer turns f(x) = β·[x < α] (or β·[x ≥ α]) on n-bit inputs into two keys; each
//! evaluates to an additive share (mod 2^64) of f(x) at any public x, and each key alone is
//! pseudorandom.
//!
//! The keys form one root-to-leaf path in a GGM tree: at every level both parties' seeds
//! agree off the path to α (their sum cancels) and differ on it, and the correction words
//! carry β into every turn that leaves α's path toward the counted side (left for `<`,
//! right for `≥`, plus the leaf α itself for `≥`).
//!
//! Outputs are shared in Z_2^64 or in Z_2 ([`Output`]): the same algorithm with every value
//! reduced to the group, so a bit-output key carries one-bit value corrections.
//!
//! A key is the party's root seed and the correction words, which both keys share. The roots
//! come from streams the dealer shares with each party, so only the correction words travel,
//! packed ([`ksnn_formats::cost::dcf_key_bytes`], `Layout` below): per level the 128-bit seed
//! correction with the left control bit in its low bit (always 0 otherwise: seeds have it
//! cleared); the value corrections; the right control bits, eight per byte; the leaf word.
//! Pure functions: the protocol that deals and opens is `protocol::drelu::fss`.

use ksnn_formats::cost::dcf_key_bytes;

use crate::fss::prg::{Child, Expanded, LANES, Prg};

/// Which side of α the function counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// f(x) = β·[x < α].
    Below,
    /// f(x) = β·[x ≥ α].
    AtLeast,
}

/// The group the outputs are shared in: Z_2^64 (additive shares of a ring element) or Z_2
/// (XOR shares of a bit, whose value corrections are one bit instead of 64: a third smaller
/// keys). One algorithm, every value reduced to the group's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Z_2^64.
    Ring,
    /// Z_2.
    Bit,
}

impl Output {
    /// The group's bits, 64 or 1.
    pub const fn bits(self) -> u32 {
        match self {
            Output::Ring => 64,
            Output::Bit => 1,
        }
    }

    fn mask(self) -> u64 {
        crate::prf::mask(self.bits())
    }
}

/// One party's key, owned (tests and benchmarks; the protocol keeps correction words of
/// many keys in one buffer and evaluates through [`KeyRef`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// 0 or 1: which share this key evaluates to.
    pub party: u8,
    /// The root seed.
    pub seed: u128,
    /// Input bits.
    pub bits: u32,
    /// The output group.
    pub output: Output,
    /// The packed correction words (identical in both keys).
    pub corrections: Vec<u8>,
}

impl Key {
    /// This key as a reference.
    pub fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            party: self.party,
            seed: self.seed,
            bits: self.bits,
            output: self.output,
            corrections: &self.corrections,
        }
    }
}

/// One party's key, borrowing its packed correction words.
#[derive(Clone, Copy, Debug)]
pub struct KeyRef<'a> {
    /// 0 or 1: which share this key evaluates to.
    pub party: u8,
    /// The root seed.
    pub seed: u128,
    /// Input bits.
    pub bits: u32,
    /// The output group.
    pub output: Output,
    /// The packed correction words, [`key_bytes`]`(bits, output)` of them.
    pub corrections: &'a [u8],
}

/// Bytes of one key's packed correction words for `bits`-bit inputs.
pub fn key_bytes(bits: u32, output: Output) -> usize {
    dcf_key_bytes(bits, output.bits()) as usize
}

/// Where a key's parts sit in its packed correction words (n levels): the seed corrections,
/// 16 bytes per level (the left control bit in the low bit); the value corrections, 8 bytes
/// per level (ring) or none; the right control bits, one per level, eight per byte; the value
/// corrections' bits (bit output) likewise; the leaf correction, 8 bytes (ring) or 1.
#[derive(Clone, Copy)]
struct Layout {
    n: usize,
    output: Output,
    values: usize,
    right: usize,
    value_bits: usize,
    leaf: usize,
}

impl Layout {
    fn new(n: u32, output: Output) -> Self {
        let n = n as usize;
        let values = 16 * n;
        let right = values + if output == Output::Ring { 8 * n } else { 0 };
        let value_bits = right + n.div_ceil(8);
        let leaf = value_bits
            + if output == Output::Bit {
                n.div_ceil(8)
            } else {
                0
            };
        let layout = Self {
            n,
            output,
            values,
            right,
            value_bits,
            leaf,
        };
        debug_assert_eq!(layout.len(), key_bytes(n as u32, output));
        layout
    }

    fn len(&self) -> usize {
        self.leaf + (self.output.bits() as usize).div_ceil(8)
    }

    #[inline(always)]
    fn seed(&self, k: &[u8], i: usize) -> u128 {
        u128_at(k, 16 * i)
    }

    #[inline(always)]
    fn right_bit(&self, k: &[u8], i: usize) -> u8 {
        (k[self.right + i / 8] >> (i % 8)) & 1
    }

    #[inline(always)]
    fn value(&self, k: &[u8], i: usize) -> u64 {
        match self.output {
            Output::Ring => u64_at(k, self.values + 8 * i),
            Output::Bit => u64::from((k[self.value_bits + i / 8] >> (i % 8)) & 1),
        }
    }

    #[inline(always)]
    fn last(&self, k: &[u8]) -> u64 {
        match self.output {
            Output::Ring => u64_at(k, self.leaf),
            Output::Bit => u64::from(k[self.leaf] & 1),
        }
    }

    fn put_level(&self, k: &mut [u8], i: usize, seed: u128, value: u64, bit: [bool; 2]) {
        k[16 * i..16 * i + 16].copy_from_slice(&(seed | bit[0] as u128).to_le_bytes());
        k[self.right + i / 8] |= (bit[1] as u8) << (i % 8);
        match self.output {
            Output::Ring => k[self.values + 8 * i..self.values + 8 * i + 8]
                .copy_from_slice(&value.to_le_bytes()),
            Output::Bit => k[self.value_bits + i / 8] |= ((value & 1) as u8) << (i % 8),
        }
    }

    fn put_last(&self, k: &mut [u8], last: u64) {
        let w = (self.output.bits() as usize).div_ceil(8);
        k[self.leaf..self.leaf + w].copy_from_slice(&last.to_le_bytes()[..w]);
    }
}

fn neg_if(c: bool, v: u64) -> u64 {
    if c { v.wrapping_neg() } else { v }
}

/// The low 64 bits of a seed, as a value.
fn low(s: u128) -> u64 {
    s as u64
}

#[inline(always)]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn u128_at(b: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(b[at..at + 16].try_into().expect("16 bytes"))
}

/// One function to deal: f(x) = β·[x `side` α], as `(α, β, side)`.
pub type Function = (u64, u64, Side);

/// Writes the packed correction words of every `fs[k]` on `n`-bit inputs (1 ≤ n ≤ 64,
/// α < 2^n, β in the output group), with root seeds `roots[k]` (uniform, secret, one per
/// party), into `out`: key k at `k·`[`key_bytes`]`(n, output)`, the buffer all zero. The keys
/// walk their trees in step, [`LANES`] at a time, so the PRG expands many seeds together.
pub fn deal_many(
    prg: &impl Prg,
    (n, output): (u32, Output),
    fs: &[Function],
    roots: &[[u128; 2]],
    out: &mut [u8],
) {
    assert!((1..=64).contains(&n), "DCF inputs of 1 to 64 bits");
    let layout = Layout::new(n, output);
    let (kb, gm) = (layout.len(), output.mask());
    assert_eq!(fs.len(), roots.len(), "one root pair per function");
    assert_eq!(out.len(), fs.len() * kb, "the keys' packed size");
    let mut e = [Expanded::default(); 2 * LANES];
    for ((fs, roots), out) in fs
        .chunks(LANES)
        .zip(roots.chunks(LANES))
        .zip(out.chunks_mut(LANES * kb))
    {
        let m = fs.len();
        for &(alpha, beta, _) in fs {
            assert!(n == 64 || alpha >> n == 0, "α has more than {n} bits");
            assert_eq!(beta & gm, beta, "β outside the output group");
        }
        let mut s: Vec<[u128; 2]> = roots.to_vec();
        let mut t = vec![[false, true]; m];
        let mut v_alpha = vec![0u64; m];
        let mut seeds = [0u128; 2 * LANES];
        for i in 0..n {
            for k in 0..m {
                seeds[2 * k] = s[k][0];
                seeds[2 * k + 1] = s[k][1];
            }
            prg.expand_many(&seeds[..2 * m], &mut e[..2 * m]);
            for k in 0..m {
                let (alpha, beta, side) = fs[k];
                let e = [e[2 * k], e[2 * k + 1]];
                let (s, t, v_alpha) = (&mut s[k], &mut t[k], &mut v_alpha[k]);
                let a = (alpha >> (n - 1 - i)) & 1 == 1;
                let (keep, lose) = if a { (1, 0) } else { (0, 1) };
                let seed = e[0].seed[lose] ^ e[1].seed[lose];
                let mut value = neg_if(
                    t[1],
                    e[1].value[lose]
                        .wrapping_sub(e[0].value[lose])
                        .wrapping_sub(*v_alpha),
                );
                // Leaving α's path toward the counted side: every input down there gets β.
                let counted = match side {
                    Side::Below => lose == 0,
                    Side::AtLeast => lose == 1,
                };
                if counted {
                    value = value.wrapping_add(neg_if(t[1], beta));
                }
                let value = value & gm;
                *v_alpha = v_alpha
                    .wrapping_sub(e[1].value[keep])
                    .wrapping_add(e[0].value[keep])
                    .wrapping_add(neg_if(t[1], value))
                    & gm;
                let bit = [
                    e[0].bit[0] ^ e[1].bit[0] ^ a ^ true,
                    e[0].bit[1] ^ e[1].bit[1] ^ a,
                ];
                for b in 0..2 {
                    let next_t = e[b].bit[keep] ^ (t[b] & bit[keep]);
                    s[b] = e[b].seed[keep] ^ if t[b] { seed } else { 0 };
                    t[b] = next_t;
                }
                let key = &mut out[k * kb..(k + 1) * kb];
                layout.put_level(key, i as usize, seed, value, bit);
            }
        }
        for k in 0..m {
            let (_, beta, side) = fs[k];
            // The leaf α itself: counted for `≥` only.
            let at_alpha = if side == Side::AtLeast { beta } else { 0 };
            let last = neg_if(
                t[k][1],
                low(s[k][1])
                    .wrapping_sub(low(s[k][0]))
                    .wrapping_sub(v_alpha[k])
                    .wrapping_add(at_alpha),
            ) & gm;
            layout.put_last(&mut out[k * kb..(k + 1) * kb], last);
        }
    }
}

/// The two keys of f(x) = β·[x `side` α] on `n`-bit inputs, from the root seeds `roots`.
pub fn deal(prg: &impl Prg, (n, output): (u32, Output), f: Function, roots: [u128; 2]) -> [Key; 2] {
    let mut corrections = vec![0; key_bytes(n, output)];
    deal_many(prg, (n, output), &[f], &[roots], &mut corrections);
    [0u8, 1].map(|party| Key {
        party,
        seed: roots[party as usize],
        bits: n,
        output,
        corrections: corrections.clone(),
    })
}

/// Every key's share of its function at its point: `out[k]` from `keys[k]` at `xs[k]`
/// (x < 2^n; all keys of one width and group). Shares of a key pair add up to f(x) in the
/// group. The keys walk their paths in step, [`LANES`] at a time.
pub fn eval_many(prg: &impl Prg, keys: &[KeyRef<'_>], xs: &[u64], out: &mut [u64]) {
    assert!(
        keys.len() == xs.len() && xs.len() == out.len(),
        "one point and one share per key"
    );
    let Some((n, output)) = keys.first().map(|k| (k.bits, k.output)) else {
        return;
    };
    let layout = Layout::new(n, output);
    let gm = output.mask();
    let mut e = [Child::default(); LANES];
    let mut seeds = [0u128; LANES];
    let mut dirs = [0usize; LANES];
    for ((keys, xs), out) in keys
        .chunks(LANES)
        .zip(xs.chunks(LANES))
        .zip(out.chunks_mut(LANES))
    {
        let m = keys.len();
        let mut t = [false; LANES];
        for (k, key) in keys.iter().enumerate() {
            assert!(
                key.bits == n && key.output == output && key.corrections.len() == layout.len(),
                "a key of {n} bits into {output:?}"
            );
            seeds[k] = key.seed;
            t[k] = key.party == 1;
            out[k] = 0;
        }
        for i in 0..layout.n {
            for k in 0..m {
                dirs[k] = ((xs[k] >> (layout.n - 1 - i)) & 1) as usize;
            }
            prg.child_many(&seeds[..m], &dirs[..m], &mut e[..m]);
            // Branch-free in the control bit: it is as good as random, and a mispredicted
            // branch per level and key costs more than the masked reads.
            for k in 0..m {
                let (cw, minus, d) = (keys[k].corrections, keys[k].party == 1, dirs[k]);
                let (t64, t128) = ((t[k] as u64).wrapping_neg(), (t[k] as u128).wrapping_neg());
                let seed = layout.seed(cw, i);
                let value = e[k].value.wrapping_add(layout.value(cw, i) & t64);
                out[k] = out[k].wrapping_add(neg_if(minus, value));
                let left = seed as u8 & 1;
                let right = layout.right_bit(cw, i);
                let bit = left ^ ((left ^ right) & d as u8);
                seeds[k] = e[k].seed ^ (seed & !1 & t128);
                t[k] = e[k].bit ^ (t[k] & (bit == 1));
            }
        }
        for k in 0..m {
            let cw = keys[k].corrections;
            let last = if t[k] { layout.last(cw) } else { 0 };
            let leaf = low(seeds[k]).wrapping_add(last);
            out[k] = out[k].wrapping_add(neg_if(keys[k].party == 1, leaf)) & gm;
        }
    }
}

/// This key's share of f(x) (x < 2^n). Shares of the two keys add up to f(x) in the group.
pub fn eval(prg: &impl Prg, key: KeyRef<'_>, x: u64) -> u64 {
    let mut out = [0];
    eval_many(prg, &[key], &[x], &mut out);
    out[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fss::prg::{AesPrg, ChaChaPrg};
    use crate::testing::rand_u64;

    fn roots() -> [u128; 2] {
        let r = || (u128::from(rand_u64()) << 64) | u128::from(rand_u64());
        [r(), r()]
    }

    /// Every key pair evaluates to β·[x < α] (or β·[x ≥ α]) at α and around it, at the ends
    /// of the domain, and at random points, for widths from 1 to 64 bits, both output groups
    /// and both PRGs.
    fn exact(prg: &impl Prg) {
        for (n, output) in [1u32, 2, 5, 9, 16, 20, 63, 64]
            .into_iter()
            .flat_map(|n| [(n, Output::Ring), (n, Output::Bit)])
        {
            let (m, gm) = (crate::prf::mask(n), output.mask());
            for round in 0..40 {
                let alpha = match round {
                    0 => 0,
                    1 => m,
                    2 => m >> 1,
                    3 => (m >> 1) + 1,
                    _ => rand_u64() & m,
                };
                let beta = if round % 3 == 0 { 1 } else { rand_u64() & gm };
                let side = if round % 2 == 0 {
                    Side::Below
                } else {
                    Side::AtLeast
                };
                let keys = deal(prg, (n, output), (alpha, beta, side), roots());
                assert_eq!(keys[0].corrections.len(), key_bytes(n, output));
                let mut xs = vec![
                    0,
                    m,
                    alpha,
                    alpha.wrapping_sub(1) & m,
                    alpha.wrapping_add(1) & m,
                ];
                xs.extend((0..20).map(|_| rand_u64() & m));
                for x in xs {
                    let got =
                        eval(prg, keys[0].as_ref(), x).wrapping_add(eval(prg, keys[1].as_ref(), x))
                            & gm;
                    let hit = match side {
                        Side::Below => x < alpha,
                        Side::AtLeast => x >= alpha,
                    };
                    let want = if hit { beta } else { 0 };
                    assert_eq!(
                        got, want,
                        "n {n} {output:?} α {alpha} β {beta} {side:?} x {x}"
                    );
                }
            }
        }
    }

    /// Many keys dealt and evaluated together (a full group of lanes and a partial one)
    /// give what the definition says, key by key.
    #[test]
    fn batches_walk_in_step_and_stay_exact() {
        batches(Output::Ring);
        batches(Output::Bit);
    }

    fn batches(output: Output) {
        let prg = AesPrg::default();
        let n = 20u32;
        let (m, gm) = (crate::prf::mask(n), output.mask());
        let kb = key_bytes(n, output);
        let count = LANES + 5;
        let fs: Vec<Function> = (0..count)
            .map(|k| {
                let side = if k % 3 == 0 {
                    Side::AtLeast
                } else {
                    Side::Below
                };
                (rand_u64() & m, rand_u64() & gm, side)
            })
            .collect();
        let roots: Vec<[u128; 2]> = (0..count).map(|_| roots()).collect();
        let mut words = vec![0u8; count * kb];
        deal_many(&prg, (n, output), &fs, &roots, &mut words);
        for round in 0..4 {
            let xs: Vec<u64> = (0..count)
                .map(|k| match round {
                    0 => fs[k].0,
                    _ => rand_u64() & m,
                })
                .collect();
            let share = |party: u8| {
                let keys: Vec<KeyRef> = (0..count)
                    .map(|k| KeyRef {
                        party,
                        seed: roots[k][party as usize],
                        bits: n,
                        output,
                        corrections: &words[k * kb..(k + 1) * kb],
                    })
                    .collect();
                let mut out = vec![0; count];
                eval_many(&prg, &keys, &xs, &mut out);
                out
            };
            let (a, b) = (share(0), share(1));
            for k in 0..count {
                let (alpha, beta, side) = fs[k];
                let hit = match side {
                    Side::Below => xs[k] < alpha,
                    Side::AtLeast => xs[k] >= alpha,
                };
                assert_eq!(
                    a[k].wrapping_add(b[k]) & gm,
                    if hit { beta } else { 0 },
                    "key {k}, {output:?}"
                );
            }
        }
    }

    #[test]
    fn shares_sum_to_the_comparison_with_aes() {
        exact(&AesPrg::default());
    }

    #[test]
    fn shares_sum_to_the_comparison_with_chacha() {
        exact(&ChaChaPrg);
    }

    /// One key alone says nothing about α: P1's share at a fixed x, over fresh keys, is as
    /// likely to have its top bit (in the output group) set for α below x as above (a leaky
    /// key would tie the share to the answer). Positive control: the sum of both shares does
    /// depend on it, as `want` (keys counting, for α below x and above).
    fn one_key_alone(output: Output, side: Side, want: [u32; 2]) {
        let prg = AesPrg::default();
        let (n, x) = (16u32, 30_000u64);
        let top_bit = output.bits() - 1;
        let mut top = [0u32; 2];
        let mut sums = [0u32; 2];
        for k in 0..2000 {
            let below = k % 2 == 0;
            let alpha = if below { 1000 } else { 60_000 };
            let keys = deal(&prg, (n, output), (alpha, 1, side), roots());
            let share = eval(&prg, keys[1].as_ref(), x);
            top[below as usize] += ((share >> top_bit) & 1) as u32;
            let sum = eval(&prg, keys[0].as_ref(), x).wrapping_add(share) & output.mask();
            sums[below as usize] += sum as u32;
        }
        for c in top {
            assert!((420..580).contains(&c), "{output:?}: {top:?}");
        }
        assert_eq!(
            sums, want,
            "the control, {output:?}: together the keys answer"
        );
    }

    #[test]
    fn one_key_alone_does_not_show_the_answer() {
        // [x < α] counts when α is above x; [x ≥ α] when α is below it.
        one_key_alone(Output::Ring, Side::Below, [1000, 0]);
        one_key_alone(Output::Bit, Side::AtLeast, [0, 1000]);
    }
}
