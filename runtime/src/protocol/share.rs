//! Input sharing and output reconstruction.
//!
//! Sharing costs nothing: P1's share of the input is a fresh stream value R both P0 and P1
//! can draw, and P0 keeps `X − R`. To reveal an output, P1 sends its share to P0 only, so the
//! client learns the result and nobody else does.

use crate::prf::Purpose;
use crate::protocol::{Party, Result};
use crate::role::{Pair, Role};

/// Shares P0's input `x` (`n` elements; P1 and P2 pass `None`). P2 gets an empty share.
pub fn share_input(p: &mut Party, x: Option<&[u64]>, n: usize) -> Vec<u64> {
    match p.role {
        Role::Helper => Vec::new(),
        Role::Server => p.stream(Pair::ClientServer, Purpose::InputShare).ring(n),
        Role::Client => {
            let r = p.stream(Pair::ClientServer, Purpose::InputShare).ring(n);
            let x = x.expect("the client provides the input");
            crate::ring::sub(x, &r)
        }
    }
}

/// Reveals a shared value to P0: P0 gets `Some(value)`, the others `None`.
pub fn reveal_to_client(p: &mut Party, share: &[u64], n: usize) -> Result<Option<Vec<u64>>> {
    match p.role {
        Role::Helper => Ok(None),
        Role::Server => {
            p.send_ring(Role::Client, "output: P1's share to P0", share)?;
            Ok(None)
        }
        Role::Client => {
            let other = p.recv_ring(Role::Server, "output: P1's share", n)?;
            Ok(Some(crate::ring::add(share, &other)))
        }
    }
}
