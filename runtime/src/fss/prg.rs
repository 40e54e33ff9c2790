//! The length-doubling PRGs of the DCF tree: one 128-bit seed expands into two children, each
//! a seed, a 64-bit value word and a control bit (issue 17 asks for AES and ChaCha behind one
//! trait, measured, the faster the default).

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

/// A length-doubling PRG on 128-bit seeds.
pub trait Prg: Sync {
    /// The two children of `seed`.
    fn expand(&self, seed: u128) -> Expanded;

    /// The children of every seed, `out[i]` of `seeds[i]` (equal lengths): the DCF walks
    /// [`LANES`] keys in step so a PRG can keep several blocks in flight.
    fn expand_many(&self, seeds: &[u128], out: &mut [Expanded]) {
        for (s, o) in seeds.iter().zip(out) {
            *o = self.expand(*s);
        }
    }
}

/// Seeds expanded together: AES-NI pipelines eight independent blocks per cipher.
pub const LANES: usize = 8;

/// Fixed-key AES-128 in Matyas–Meyer–Oseas form, one public key per output block:
/// block_i = AES_{k_i}(s) ⊕ s. With AES-NI (detected at run time by the `aes` crate) this is
/// three block encryptions per expansion; the fixed keys' schedules are computed once.
pub struct AesPrg {
    ciphers: [Aes128; 3],
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
            ciphers: [key(0), key(1), key(2)],
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
            // Each cipher encrypts a full group of LANES blocks (padded), which the `aes`
            // crate runs interleaved.
            let mut blocks = [[0u128; LANES]; 3];
            for (c, cipher) in self.ciphers.iter().enumerate() {
                let mut group: [Block; LANES] = Default::default();
                for (g, s) in group.iter_mut().zip(seeds) {
                    *g = s.to_le_bytes().into();
                }
                cipher.encrypt_blocks(&mut group);
                for (k, s) in seeds.iter().enumerate() {
                    blocks[c][k] = u128::from_le_bytes(group[k].into()) ^ s;
                }
            }
            for (k, o) in out.iter_mut().enumerate() {
                *o = Expanded::from_blocks([blocks[0][k], blocks[1][k], blocks[2][k]]);
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

    /// The batched AES expansion is the definition, block_i = AES_{k_i}(s) ⊕ s, seed by seed,
    /// for a full group of lanes and a partial one.
    #[test]
    fn batched_aes_is_the_definition() {
        let prg = AesPrg::default();
        let seeds: Vec<u128> = (0..LANES as u128 + 3)
            .map(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
            .collect();
        let mut out = vec![Expanded::default(); seeds.len()];
        prg.expand_many(&seeds, &mut out);
        for (s, o) in seeds.iter().zip(&out) {
            let block = |i: usize| {
                let mut b = s.to_le_bytes().into();
                prg.ciphers[i].encrypt_block(&mut b);
                u128::from_le_bytes(b.into()) ^ s
            };
            assert_eq!(*o, Expanded::from_blocks([block(0), block(1), block(2)]));
        }
    }

    #[test]
    fn both_prgs_expand_deterministically_and_evenly() {
        check(&AesPrg::default());
        check(&ChaChaPrg);
    }
}
