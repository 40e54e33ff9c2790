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
//!
//! Each product is started before the party draws the mask it adds (`C1`, `C0`'s
//! counterpart), so that on a device the mask stream and the product overlap; on the CPU the
//! product is done when it starts. A party with a device holds its session coefficients
//! there (P1's `W`, P2's `B`: `Coeffs::resident`).

use crate::backend::{self, Coeffs, Resident};
use crate::kernels::bilinear::{self, Bilinear};
use crate::prf::Purpose;
use crate::protocol::{Party, Result};
use crate::role::{Pair, Role};

/// What a party keeps of one linear layer for the session.
#[derive(Default)]
pub struct Session {
    /// P2: the masked weights `B`.
    pub masked: Option<Vec<u64>>,
    /// The coefficients this party multiplies by (P1's `W`, P2's `B`) on its device, when it
    /// has one and the layer's products go there.
    pub resident: Option<Resident>,
}

impl Session {
    /// The coefficients this party multiplies by, given P1's weights.
    fn coeffs<'a>(&'a self, weights: Option<&'a [u64]>) -> Option<Coeffs<'a>> {
        weights.or(self.masked.as_deref()).map(|host| Coeffs {
            host,
            resident: self.resident.as_ref(),
        })
    }
}

/// Session set-up. P1 passes its weights and keeps nothing but their device copy; P2 keeps
/// `B`; P0 nothing.
pub fn setup(p: &mut Party, op: &dyn Bilinear, weights: Option<&[u64]>) -> Result<Session> {
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
            Ok(Session {
                masked: None,
                resident: keep(op, w),
            })
        }
        Role::Helper => {
            let b = p.recv_ring(Role::Server, "linear: masked weights B", op.w_len())?;
            Ok(Session {
                resident: keep(op, &b),
                masked: Some(b),
            })
        }
        Role::Client => Ok(Session::default()),
    }
}

/// `w` on the device for the session, when `op` will run there.
fn keep(op: &dyn Bilinear, w: &[u64]) -> Option<Resident> {
    op.conv().and_then(|job| backend::keep(w, job.macs()))
}

/// P0's per-inference material: its input mask A and `A ⊛ F + C0`.
pub struct ClientPre {
    a: Vec<u64>,
    y0: Vec<u64>,
}

/// Offline. P2 (given its session) deals C0; P0 redraws F and precomputes; P1 has nothing to
/// do.
pub fn offline(p: &mut Party, op: &dyn Bilinear, session: &Session) -> Result<Option<ClientPre>> {
    match p.role {
        Role::Helper => {
            let a = p
                .stream(Pair::ClientHelper, Purpose::LinearA)
                .ring(op.x_len());
            let b = session.coeffs(None).expect("P2 received B at set-up");
            let product = bilinear::start(op, &a, b);
            let c1 = p
                .stream(Pair::ServerHelper, Purpose::LinearC1)
                .ring(op.y_len());
            let c0 = crate::ring::sub(&product.finish(), &c1);
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
            let mut y0 = bilinear::start(op, &a, f.as_slice().into()).finish();
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
    session: &Session,
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
            let w = session.coeffs(weights);
            let product = bilinear::start(op, &e, w.expect("the server holds the weights"));
            let c1 = p
                .stream(Pair::ServerHelper, Purpose::LinearC1)
                .ring(op.y_len());
            let mut y = product.finish();
            crate::ring::add_assign(&mut y, &c1);
            Ok(y)
        }
    }
}
