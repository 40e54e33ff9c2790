//! DReLU: shares of the bit `[a ≥ 0]` (two's complement) of a shared ring element.
//!
//! `fss`: a helper-dealt distributed comparison function ([`fss`]); one online round,
//! 2·⌈(64 − g)/8⌉ bytes, keys dealt offline.
//!
//! `securenn` (the default): MSB(a) = MSB(a0) ⊕ MSB(a1) ⊕ carry out of the low 63 bits,
//! computed by the wrap-bit protocol ([`crate::protocol::wrap`]) on SecureNN's
//! PrivateCompare mod 67. SecureNN's own ShareConvert-to-Z_{2^64−1} route cannot be exact on
//! the whole ring — 2^64 values do not fit 2^64 − 1 residues, so 0 and −1 collide and
//! DReLU(−1) comes out 1 — and it needs 8 rounds; this one is exact for every value,
//! 4 rounds, 26 + 3·(63 − g) bytes.
//!
//! Approximate comparison (docs/original.md §7.9): each party first shifts its share right by k
//! (local truncation) and left by g; then only the top 64 − g bits are compared. Correct
//! while |a| < 2^(63 − g + k), up to the ±1 of the local shift.

pub mod fss;
pub mod securenn;

use ksnn_formats::DreluProtocol;

use crate::protocol::{Party, Result};

/// What a DReLU batch's offline pass leaves for its online pass: `fss` keys for P0 and P1;
/// nothing for `securenn`, which has no offline pass, or for P2.
pub type Offline = Option<fss::Material>;

/// The offline pass of a batch of `n` DReLUs, by the program's protocol.
pub fn offline(p: &mut Party, n: usize) -> Result<Offline> {
    match p.config.drelu {
        DreluProtocol::SecureNn => Ok(None),
        DreluProtocol::Fss => fss::offline(p, n),
    }
}

/// The online pass: shares (over Z_2^64) of `[a ≥ 0]` for `n` shared values `a` (P2: empty
/// slice), with the batch's offline material.
pub fn online(p: &mut Party, a: &[u64], n: usize, pre: Offline) -> Result<Vec<u64>> {
    match p.config.drelu {
        DreluProtocol::SecureNn => securenn::drelu(p, a, n),
        DreluProtocol::Fss => fss::online(p, a, n, pre),
    }
}

/// Both passes in one call: shares of `[a ≥ 0]` for `n` shared values `a` (P2: empty
/// slice). Several batches in one step need distinct addresses: call it with `p.sub(..)`.
pub fn drelu(p: &mut Party, a: &[u64], n: usize) -> Result<Vec<u64>> {
    let pre = offline(p, n)?;
    online(p, a, n, pre)
}
