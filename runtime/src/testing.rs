//! The three-party test harness, for this crate's tests and (feature `test-utils`) for other
//! crates' tests, benchmarks and examples: one closure per role on three threads over the
//! in-memory network, and share-splitting helpers. The positive-control leaks of the view
//! tests live here too, for this crate's own tests only.

use std::time::Duration;

use ksnn_formats::ProtocolConfig;

use crate::exec::local::on_three_with;
use crate::exec::secure::{Pass, Secure};
use crate::net::counting::{CountingTransport, Phase, Stats};
use crate::net::{Transport, mem};
use crate::prf::{Addr, Keys, Label, Scope};
use crate::protocol::Party;
use crate::role::Role;

#[cfg(test)]
pub use leak::{Leak, leak, set_leak};

/// A random input for `program`: uniform in [−2, 2), encoded at its fractional bits.
pub fn random_input(program: &ksnn_formats::Program, seed: u64) -> Vec<u64> {
    let mut rng = ksnn_formats::example::SplitMix(seed);
    let n = program.input.shape.elements() as usize;
    let f = program.fixed_point.frac_bits;
    (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            crate::ring::encode(4.0 * u - 2.0, f)
        })
        .collect()
}

/// The party holding `k` at layer 0 of inference 7, with 12 fractional bits.
fn test_party<'a>(k: &'a Keys, net: &'a mut dyn Transport, config: ProtocolConfig) -> Party<'a> {
    Party {
        role: k.role(),
        keys: k,
        net,
        at: Addr::root(Scope::Inference(7)).child(Label::Layer(0)),
        config,
        frac_bits: 12,
    }
}

/// Runs `f` as each role's protocol code at layer 0 of inference 7, on three threads;
/// returns each role's result and traffic.
pub fn run3<T: Send>(
    config: ProtocolConfig,
    f: impl Fn(&mut Party<'_>) -> T + Sync,
) -> [(T, Stats); 3] {
    on_three(|k, net| {
        let mut net = CountingTransport::new(net);
        net.start_phase(Phase::Online);
        let out = f(&mut test_party(k, &mut net, config));
        (out, net.take_stats())
    })
    .0
}

/// Runs `step` as each role's protocol code at layer 0 of inference 7 with both passes, the
/// offline pass counted as offline and the online pass as online; returns each role's
/// online result and traffic.
pub fn run3_passes<T: Send>(
    config: ProtocolConfig,
    step: impl Fn(&mut Secure<'_, '_>) -> crate::protocol::Result<T> + Sync,
) -> [(T, Stats); 3] {
    on_three(|k, net| {
        let mut net = CountingTransport::new(net);
        let mut stash = Vec::new();
        net.start_phase(Phase::Offline);
        let p = test_party(k, &mut net, config);
        step(&mut Secure::new(p, Pass::Offline(&mut stash), None)).unwrap();
        net.start_phase(Phase::Online);
        let p = test_party(k, &mut net, config);
        let out = step(&mut Secure::new(p, Pass::Online(stash.into_iter()), None)).unwrap();
        (out, net.take_stats())
    })
    .0
}

/// Online bytes sent by all parties and the online critical-path depth of a [`run3`] or
/// [`run3_passes`] result.
pub fn online_cost<T>(out: &[(T, Stats); 3]) -> (u64, u32) {
    let bytes = out
        .iter()
        .map(|(_, s)| s.sent_in(Phase::Online).bytes)
        .sum();
    let rounds = out
        .iter()
        .filter_map(|(_, s)| s.depth_at_end.get(&(Phase::Online, None)).copied())
        .max()
        .unwrap_or(0);
    (bytes, rounds)
}

/// Runs `f` once per role, each on its own thread, with fresh keys and the in-memory
/// network (60 s timeout); returns the results and the keys.
pub fn on_three<T: Send>(f: impl Fn(&Keys, mem::MemTransport) -> T + Sync) -> ([T; 3], [Keys; 3]) {
    let keys = Keys::random_triple();
    let out = on_three_with(&keys, Duration::from_secs(60), f);
    (out, keys)
}

/// Splits `x` into two random shares (test side; the protocols use streams).
pub fn split(x: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let r: Vec<u64> = x.iter().map(|_| rand_u64()).collect();
    let x1 = x.iter().zip(&r).map(|(a, b)| a.wrapping_sub(*b)).collect();
    (r, x1)
}

/// A uniform ring element from the operating system.
pub fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random generator is available");
    u64::from_le_bytes(b)
}

/// The share a role gets from `split`.
pub fn mine(role: Role, s: &(Vec<u64>, Vec<u64>)) -> Vec<u64> {
    match role {
        Role::Client => s.0.clone(),
        Role::Server => s.1.clone(),
        Role::Helper => Vec::new(),
    }
}

#[cfg(test)]
mod leak {
    use std::cell::Cell;

    /// Deliberately broken variants, the positive controls of the view tests: a test that
    /// cannot tell them from the protocol has no power. Set per party thread.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Leak {
        /// The protocols as they are.
        None,
        /// PrivateCompare without the common zero-sharing (the paper's Algorithm 3 as is).
        UnmaskedCompare,
        /// Every inference draws the masks of inference 0.
        ReusedMask,
        /// Sub-protocols draw from their parent's address, as hand-picked indices that
        /// collide would.
        FlatAddress,
    }

    thread_local! {
        static LEAK: Cell<Leak> = const { Cell::new(Leak::None) };
    }

    /// The leak this thread runs with.
    pub fn leak() -> Leak {
        LEAK.with(|l| l.get())
    }

    /// Makes this thread run the protocols with `leak`.
    pub fn set_leak(leak: Leak) {
        LEAK.with(|l| l.set(leak));
    }
}
