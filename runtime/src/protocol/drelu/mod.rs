//! DReLU: shares of the bit `[a ≥ 0]` (two's complement) of a shared ring element.
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

pub mod securenn;

pub use securenn::drelu;
