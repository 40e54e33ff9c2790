//! Joint-view security tests: what a party receives, taken together and set against what it
//! knows, must not depend on what it must not learn.
//!
//! Marginal statistics cannot see the leaks that matter (F1 in `docs/security.md` passed a
//! byte-histogram test while the helper recovered every compared value), so every test here
//! looks at *joint* views of two secrets far apart:
//!
//! - [`stats`]: each message's elements, pairs of messages a party receives at the same
//!   position from its two peers (sum, difference, ratio mod 67), and the same position in two
//!   inferences of one session (a reused mask shows there); two-sample χ² per feature;
//! - [`attack`]: the F1 attack on the helper's recorded view and its knowledge-conditioned
//!   statistic (the helper dealt both parties' bit shares);
//! - positive controls: [`Leak::UnmaskedCompare`] (the paper's Algorithm 3) and
//!   [`Leak::ReusedMask`] must both be caught, so the tests have power.

mod attack;
mod stats;
mod tests;

use ksnn_formats::ProtocolConfig;

use crate::net::recording::{Received, RecordingTransport};
use crate::prf::{Addr, Keys, Label, Scope};
use crate::protocol::Party;
use crate::testing::{Leak, on_three, set_leak};

/// Inverses mod 67 (entry 0 unused).
const INV_MOD_P: [u8; 67] = {
    let mut t = [0u8; 67];
    let mut a = 1;
    while a < 67 {
        let mut b = 1;
        while (a * b) % 67 != 1 {
            b += 1;
        }
        t[a] = b as u8;
        a += 1;
    }
    t
};

/// One session of two inferences: what each party received in each, and the keys.
pub struct Run {
    /// `views[inference][role]`.
    pub views: [[Vec<Received>; 3]; 2],
    pub keys: [Keys; 3],
}

/// Runs `f` as all three parties for two inferences (ids 1 and 2) of one session with fresh
/// keys, recording what each party receives. `f` gets the inference's index, its input and
/// a per-party memo that lives for the session (P0's masked weights, say).
pub fn session<I: Sync>(
    config: ProtocolConfig,
    leak: Leak,
    inputs: &[I; 2],
    f: impl Fn(&mut Party<'_>, usize, &I, &mut Vec<Vec<u64>>) + Sync,
) -> Run {
    let (per_role, keys) = on_three(|k, net| {
        set_leak(leak);
        let mut rec = RecordingTransport::new(net);
        let mut out: [Vec<Received>; 2] = Default::default();
        let mut memo = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let mut p = Party {
                role: k.role(),
                keys: k,
                net: &mut rec,
                at: Addr::root(Scope::Inference(i as u64 + 1)).child(Label::Layer(0)),
                config,
                frac_bits: 12,
            };
            f(&mut p, i, input, &mut memo);
            out[i] = rec.take_view();
        }
        out
    });
    let mut views: [[Vec<Received>; 3]; 2] = Default::default();
    for (r, [a, b]) in per_role.into_iter().enumerate() {
        views[0][r] = a;
        views[1][r] = b;
    }
    Run { views, keys }
}
