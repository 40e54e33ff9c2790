//! Linear layers whose weights only the server knows (convolution, fully connected,
//! per-channel scale), for any bilinear map `X ⊛ W`.
//!
//! Per session P1 sends P2 `B = W − F` once, with F from P1's stream with P0: P0 keeps only
//! its key and redraws F when it needs it, so the client, the party most likely to run on a
//! small machine, never stores a weight-sized tensor; the helper does. Per inference P2 sends
//! P0 `C0 = A ⊛ B − C1` offline, and P0 precomputes `A ⊛ F + C0`; online P0 sends
//! `E = X0 − A` — one activation-sized message — and P1 computes `(E + X1) ⊛ W + C1`.
//! The shares sum to `X ⊛ W` (at 2f fractional bits; the caller truncates).
//! The original sends masked inputs and masked weights both ways every inference.

use crate::kernels::bilinear::Bilinear;
use crate::prf::Purpose;
use crate::protocol::{Party, Result};
use crate::role::{Pair, Role};

/// Session set-up. P1 passes its weights and returns nothing; P2 returns `B`; P0 nothing.
pub fn setup(
    p: &mut Party,
    op: &dyn Bilinear,
    weights: Option<&[u64]>,
) -> Result<Option<Vec<u64>>> {
    match p.role {
        Role::Server => {
            let w = weights.expect("the server holds the weights");
            let mut b = p
                .session_stream(Pair::ClientServer, Purpose::LinearF)
                .ring(op.w_len());
            // B = W − F in F's buffer.
            for (x, &wv) in b.iter_mut().zip(w) {
                *x = wv.wrapping_sub(*x);
            }
            p.send_ring(Role::Helper, "linear: masked weights B to P2", &b)?;
            drop(b);
            // One layer's B at a time: the server never holds the whole model's masked
            // weights (ResNet50: 200 MB) on top of its own.
            p.flush(Role::Helper, "linear: sending the masked weights B")?;
            Ok(None)
        }
        Role::Helper => Ok(Some(p.recv_ring(
            Role::Server,
            "linear: masked weights B",
            op.w_len(),
        )?)),
        Role::Client => Ok(None),
    }
}

/// P0's per-inference material: its input mask A and `A ⊛ F + C0`.
pub struct ClientPre {
    a: Vec<u64>,
    y0: Vec<u64>,
}

/// Offline. P2 (given `B`) deals C0; P0 redraws F and precomputes; P1 has nothing to do.
pub fn offline(p: &mut Party, op: &dyn Bilinear, b: Option<&[u64]>) -> Result<Option<ClientPre>> {
    match p.role {
        Role::Helper => {
            let a = p
                .stream(Pair::ClientHelper, Purpose::LinearA)
                .ring(op.x_len());
            let c1 = p
                .stream(Pair::ServerHelper, Purpose::LinearC1)
                .ring(op.y_len());
            let b = b.expect("P2 received B at set-up");
            let c0 = crate::ring::sub(&op.apply(&a, b), &c1);
            p.send_ring(Role::Client, "linear: triple share C0 to P0", &c0)?;
            Ok(None)
        }
        Role::Client => {
            let c0 = p.recv_ring(Role::Helper, "linear: triple share C0", op.y_len())?;
            let a = p
                .stream(Pair::ClientHelper, Purpose::LinearA)
                .ring(op.x_len());
            let f = p
                .session_stream(Pair::ClientServer, Purpose::LinearF)
                .ring(op.w_len());
            let mut y0 = op.apply(&a, &f);
            crate::ring::add_assign(&mut y0, &c0);
            Ok(Some(ClientPre { a, y0 }))
        }
        Role::Server => Ok(None),
    }
}

/// Online: shares of `X ⊛ W` (P2: empty).
pub fn online(
    p: &mut Party,
    op: &dyn Bilinear,
    x: &[u64],
    weights: Option<&[u64]>,
    pre: Option<ClientPre>,
) -> Result<Vec<u64>> {
    match p.role {
        Role::Helper => Ok(Vec::new()),
        Role::Client => {
            let pre = pre.expect("P0 ran the offline phase");
            p.send_ring(
                Role::Server,
                "linear: masked input E to P1",
                &crate::ring::sub(x, &pre.a),
            )?;
            Ok(pre.y0)
        }
        Role::Server => {
            let mut e = p.recv_ring(Role::Client, "linear: masked input E", op.x_len())?;
            crate::ring::add_assign(&mut e, x);
            let mut y = op.apply(&e, weights.expect("the server holds the weights"));
            let c1 = p
                .stream(Pair::ServerHelper, Purpose::LinearC1)
                .ring(op.y_len());
            crate::ring::add_assign(&mut y, &c1);
            Ok(y)
        }
    }
}
