//! The length-doubling PRGs of the DCF tree: one 128-bit seed expands into two children, each
//! a seed, a 64-bit value word and a control bit. AES and ChaCha12 behind one trait, measured
//! (`cargo bench -p ksnn-runtime --bench protocols -- dcf`); AES, several times faster with
//! AES-NI, is the one the protocols use (`docs/design.md` §4.14).

use aes::Aes128;
use aes::Block;
use aes::cipher::{BlockEncrypt, KeyInit};
use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// One expansion: index 0 is the left child (next input bit 0), 1 the right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The children's seeds (low bit cleared: it became the control bit).
    pub seed: [u128; 2],
    /// The children's value words.
    pub value: [u64; 2],
    /// The children's control bits.
    pub bit: [bool; 2],
}

impl Expanded {
    /// Splits three 128-bit output blocks: the control bits are the seeds' low bits.
    fn from_blocks(b: [u128; 3]) -> Self {
        Self {
            seed: [b[0] & !1, b[1] & !1],
            value: [b[2] as u64, (b[2] >> 64) as u64],
            bit: [b[0] & 1 == 1, b[1] & 1 == 1],
        }
    }
}

/// One child of an expansion: what an evaluation, which follows one path, needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Child {
    /// The child's seed (low bit cleared).
    pub seed: u128,
    /// The child's value word.
    pub value: u64,
    /// The child's control bit.
    pub bit: bool,
}

impl Expanded {
    /// Child `d` (0 left, 1 right).
    pub fn child(&self, d: usize) -> Child {
        Child {
            seed: self.seed[d],
            value: self.value[d],
            bit: self.bit[d],
        }
    }
}

/// A length-doubling PRG on 128-bit seeds.
pub trait Prg: Sync {
    /// The two children of `seed`.
    fn expand(&self, seed: u128) -> Expanded;

    /// The children of every seed, `out[i]` of `seeds[i]` (equal lengths): the dealer walks
    /// [`LANES`] keys in step so a PRG can keep several blocks in flight.
    fn expand_many(&self, seeds: &[u128], out: &mut [Expanded]) {
        for (s, o) in seeds.iter().zip(out) {
            *o = self.expand(*s);
        }
    }

    /// Child `dirs[i]` of every `seeds[i]`, equal to `expand(seeds[i]).child(dirs[i])`: an
    /// evaluation needs one child per level, which a PRG may compute with less work.
    fn child_many(&self, seeds: &[u128], dirs: &[usize], out: &mut [Child]) {
        for ((s, &d), o) in seeds.iter().zip(dirs).zip(out) {
            *o = self.expand(*s).child(d);
        }
    }
}

/// Seeds expanded together: AES-NI pipelines eight independent blocks per cipher.
pub const LANES: usize = 8;

/// Fixed-key AES-128 in Matyas–Meyer–Oseas form, H_k(x) = AES_k(x) ⊕ x, with two public keys:
/// the children's seed blocks are H_k0(s) and H_k0(s ⊕ 1) (seeds have their low bit clear, so
/// the inputs differ), the value block, both children's words, is H_k1(s). An evaluation needs
/// two blocks per level, an expansion three. With AES-NI (detected at run time by the `aes`
/// crate) the blocks of [`LANES`] seeds go through each cipher together; the fixed keys'
/// schedules are computed once.
pub struct AesPrg {
    ciphers: [Aes128; 2],
}

impl Default for AesPrg {
    fn default() -> Self {
        // Public, fixed, distinct keys ("nothing up my sleeve": the ASCII of a label).
        let key = |i: u8| {
            let mut k = *b"ksnn dcf prg k0\0";
            k[14] = b'0' + i;
            Aes128::new(&k.into())
        };
        Self {
            ciphers: [key(0), key(1)],
        }
    }
}

impl AesPrg {
    /// H_k(x) = AES_k(x) ⊕ x for up to [`LANES`] inputs with cipher `c`, in one group.
    fn hash(&self, c: usize, xs: &[u128], out: &mut [u128]) {
        let mut group: [Block; LANES] = Default::default();
        for (g, x) in group.iter_mut().zip(xs) {
            *g = x.to_le_bytes().into();
        }
        self.ciphers[c].encrypt_blocks(&mut group);
        for ((o, g), x) in out.iter_mut().zip(&group).zip(xs) {
            *o = u128::from_le_bytes((*g).into()) ^ x;
        }
    }
}

impl Prg for AesPrg {
    fn expand(&self, seed: u128) -> Expanded {
        let mut out = [Expanded::default()];
        self.expand_many(&[seed], &mut out);
        out[0]
    }

    fn expand_many(&self, seeds: &[u128], out: &mut [Expanded]) {
        assert_eq!(seeds.len(), out.len(), "one output per seed");
        for (seeds, out) in seeds.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let m = seeds.len();
            let (mut left, mut right, mut values) = ([0; LANES], [0; LANES], [0; LANES]);
            let mut flipped = [0u128; LANES];
            for (f, s) in flipped.iter_mut().zip(seeds) {
                *f = s ^ 1;
            }
            self.hash(0, seeds, &mut left[..m]);
            self.hash(0, &flipped[..m], &mut right[..m]);
            self.hash(1, seeds, &mut values[..m]);
            for (k, o) in out.iter_mut().enumerate() {
                *o = Expanded::from_blocks([left[k], right[k], values[k]]);
            }
        }
    }

    fn child_many(&self, seeds: &[u128], dirs: &[usize], out: &mut [Child]) {
        assert!(
            seeds.len() == dirs.len() && dirs.len() == out.len(),
            "one child per seed"
        );
        for ((seeds, dirs), out) in seeds
            .chunks(LANES)
            .zip(dirs.chunks(LANES))
            .zip(out.chunks_mut(LANES))
        {
            let m = seeds.len();
            let (mut side, mut values) = ([0; LANES], [0; LANES]);
            let mut inputs = [0u128; LANES];
            for ((i, s), &d) in inputs.iter_mut().zip(seeds).zip(dirs) {
                *i = s ^ d as u128;
            }
            self.hash(0, &inputs[..m], &mut side[..m]);
            self.hash(1, seeds, &mut values[..m]);
            for (k, o) in out.iter_mut().enumerate() {
                *o = Child {
                    seed: side[k] & !1,
                    value: (values[k] >> (64 * dirs[k])) as u64,
                    bit: side[k] & 1 == 1,
                };
            }
        }
    }
}

/// ChaCha12 keyed by the seed (zero-extended to 256 bits): one 64-byte block, of which the
/// first 48 bytes are used.
#[derive(Default)]
pub struct ChaChaPrg;

impl Prg for ChaChaPrg {
    fn expand(&self, seed: u128) -> Expanded {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&seed.to_le_bytes());
        let mut out = [0u8; 48];
        ChaCha12Rng::from_seed(key).fill_bytes(&mut out);
        let word = |i: usize| u128::from_le_bytes(out[16 * i..16 * i + 16].try_into().unwrap());
        Expanded::from_blocks([word(0), word(1), word(2)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(prg: &dyn Prg) {
        let a = prg.expand(1);
        let b = prg.expand(2);
        assert_ne!(a, b, "different seeds, different children");
        assert_eq!(a, prg.expand(1), "deterministic");
        assert_ne!(a.seed[0], a.seed[1]);
        assert_eq!(a.seed[0] & 1, 0);
        // Control bits and value words look balanced over many seeds.
        let (mut ones, mut high) = (0, 0);
        for s in 0..4000u128 {
            let e = prg.expand(s * 0x9E37_79B9_7F4A_7C15);
            ones += e.bit[0] as u32 + e.bit[1] as u32;
            high += (e.value[0] >> 63) as u32 + (e.value[1] >> 63) as u32;
        }
        assert!((3700..4300).contains(&ones), "{ones}");
        assert!((3700..4300).contains(&high), "{high}");
    }

    /// The batched AES expansion is the definition — seed blocks H_k0(s), H_k0(s ⊕ 1), value
    /// block H_k1(s), with H_k(x) = AES_k(x) ⊕ x — seed by seed, for a full group of lanes and
    /// a partial one; and one child at a time is the same child.
    #[test]
    fn batched_aes_is_the_definition() {
        let prg = AesPrg::default();
        let seeds: Vec<u128> = (0..LANES as u128 + 3)
            .map(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) & !1)
            .collect();
        let mut out = vec![Expanded::default(); seeds.len()];
        prg.expand_many(&seeds, &mut out);
        let dirs: Vec<usize> = (0..seeds.len()).map(|i| (i * 7 / 3) % 2).collect();
        let mut children = vec![Child::default(); seeds.len()];
        prg.child_many(&seeds, &dirs, &mut children);
        for (i, (s, o)) in seeds.iter().zip(&out).enumerate() {
            let h = |c: usize, x: u128| {
                let mut b = x.to_le_bytes().into();
                prg.ciphers[c].encrypt_block(&mut b);
                u128::from_le_bytes(b.into()) ^ x
            };
            assert_eq!(*o, Expanded::from_blocks([h(0, *s), h(0, s ^ 1), h(1, *s)]));
            assert_eq!(children[i], o.child(dirs[i]));
        }
    }

    /// The default one-child path (ChaCha12) is the expansion's child.
    #[test]
    fn chacha_child_is_the_expansion_child() {
        let seeds = [4u128, 1 << 100, 77 << 1];
        let dirs = [1, 0, 1];
        let mut out = [Child::default(); 3];
        ChaChaPrg.child_many(&seeds, &dirs, &mut out);
        for k in 0..3 {
            assert_eq!(out[k], ChaChaPrg.expand(seeds[k]).child(dirs[k]));
        }
    }

    #[test]
    fn both_prgs_expand_deterministically_and_evenly() {
        check(&AesPrg::default());
        check(&ChaChaPrg);
    }
}
