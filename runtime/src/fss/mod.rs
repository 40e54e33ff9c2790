//! Function secret sharing for the one-round DReLU of issue 17: a dealer (P2) gives P0 and P1
//! keys whose evaluations at a public point add up to a function's value there.
//!
//! - [`prg`]: the length-doubling PRGs (fixed-key AES and ChaCha12 behind one trait).
//! - [`dcf`]: distributed comparison functions, f(x) = β·[x < α].
//!
//! So far the primitive only: key generation and evaluation, tested against the definition.
//! The DReLU protocol on top (mask, open, evaluate, correct the wrap) and its security
//! argument come next (`docs/design.md` §12).

pub mod dcf;
pub mod prg;
