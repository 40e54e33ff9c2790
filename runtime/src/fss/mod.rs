//! Function secret sharing for the `fss` DReLU: a dealer (P2) gives P0 and P1 keys whose
//! evaluations at a public point add up to a function's value there.
//!
//! - [`prg`]: the length-doubling PRGs (fixed-key AES and ChaCha12 behind one trait).
//! - [`dcf`]: distributed comparison functions, f(x) = β·[x < α] or β·[x ≥ α].
//!
//! Pure functions; the protocols on top are `protocol::drelu::fss` and `protocol::select`
//! (`docs/design.md` §4.14, `docs/security.md` §3.12–§3.13, §4.4).

pub mod dcf;
pub mod prg;
