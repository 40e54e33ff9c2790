//! The joint-view tests, per protocol, with their positive controls.

use ksnn_formats::layer::ActivationKind;
use ksnn_formats::{ApproxCompare, Block, DreluProtocol, ProtocolConfig, Shape, Truncation};

use super::attack::{self, Element};
use super::stats::{Histograms, differing, features};
use super::{Run, session};
use crate::exec::secure::both_passes;
use crate::kernels::bilinear::{Bilinear, LinearMap};
use crate::kernels::layout::BlockLayout;
use crate::net::recording::Received;
use crate::prf::{Addr, Label, P, Purpose, Scope, mask};
use crate::protocol::activation::Plan;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;
use crate::protocol::linear;
use crate::protocol::private_compare::bits_msb_first;
use crate::protocol::{Party, clip, drelu::drelu, maxpool, relu, share, trunc};
use crate::role::{Pair, Role};
use crate::testing::{Leak, rand_u64, split};

/// Per-role shares of a vector, split afresh.
fn shares(x: &[u64]) -> [Vec<u64>; 3] {
    let (a, b) = split(x);
    [a, b, Vec::new()]
}

/// Sessions of two inferences under condition A (inputs from `a`) and condition B (from `b`);
/// returns, per role, the features whose distribution differs between A and B.
fn compare<I: Sync>(
    config: ProtocolConfig,
    leak: Leak,
    sessions: usize,
    a: impl Fn() -> [I; 2],
    b: impl Fn() -> [I; 2],
    skip: &[&str],
    f: impl Fn(&mut Party<'_>, usize, &I, &mut Vec<Vec<u64>>) + Sync,
) -> [Vec<String>; 3] {
    let mut h: [[Histograms; 3]; 2] = Default::default();
    for _ in 0..sessions {
        for (c, inputs) in [a(), b()].iter().enumerate() {
            let run = session(config, leak, inputs, &f);
            for role in Role::ALL {
                features(&run, role, skip, &mut h[c][role.index()]);
            }
        }
    }
    Role::ALL.map(|r| differing(&h[0][r.index()], &h[1][r.index()]))
}

/// [`compare`] for a protocol whose input is `n` copies of a secret: A (s1, s1), B (s2, s1).
fn compare_copies(
    config: ProtocolConfig,
    leak: Leak,
    n: usize,
    (s1, s2): (u64, u64),
    f: impl Fn(&mut Party<'_>, usize, &[Vec<u64>; 3], &mut Vec<Vec<u64>>) + Sync,
) -> [Vec<String>; 3] {
    compare(
        config,
        leak,
        6,
        || [shares(&vec![s1; n]), shares(&vec![s1; n])],
        || [shares(&vec![s2; n]), shares(&vec![s1; n])],
        &[],
        f,
    )
}

fn assert_independent(what: &str, found: [Vec<String>; 3]) {
    for role in Role::ALL {
        assert!(
            found[role.index()].is_empty(),
            "{what}: {role}'s joint view depends on the secret:\n{}",
            found[role.index()].join("\n")
        );
    }
}

/// DReLU on `n` copies of a secret: condition A (s1, s1), B (s2, s1).
fn drelu_views(config: ProtocolConfig, leak: Leak, n: usize, s1: u64, s2: u64) -> [Vec<String>; 3] {
    compare_copies(config, leak, n, (s1, s2), |p, _, x, _| {
        drelu(p, &x[p.role.index()], n).unwrap();
    })
}

const FAR: [(i64, i64); 2] = [(0, -1), (1 << 40, -(1 << 40))];

fn fss() -> ProtocolConfig {
    ProtocolConfig {
        drelu: DreluProtocol::Fss,
        ..Default::default()
    }
}

/// `fss` on 20 bits (g = 44): one opened value in 3 bytes.
fn fss_narrow() -> ProtocolConfig {
    ProtocolConfig {
        approx: ApproxCompare { k: 0, g: 44 },
        ..fss()
    }
}

#[test]
fn joint_views_are_independent_per_protocol() {
    let exact = ProtocolConfig {
        truncation: Truncation::HelperExact,
        ..Default::default()
    };
    for (s1, s2) in FAR {
        let (s1, s2) = (s1 as u64, s2 as u64);
        assert_independent(
            "DReLU",
            drelu_views(ProtocolConfig::default(), Leak::None, 800, s1, s2),
        );
        assert_independent("fss DReLU", drelu_views(fss(), Leak::None, 800, s1, s2));
        assert_independent(
            "fss DReLU, 20 bits compared",
            drelu_views(fss_narrow(), Leak::None, 800, s1, s2 & mask(19)),
        );

        // Block ReLU: one channel of each kind, every pixel the secret.
        let xs = Shape::new(4, 8, 8);
        let layout = BlockLayout::new(xs, &[Block(2, 2), Block::RELU, Block(3, 3), Block::ZERO]);
        let n = xs.elements() as usize;
        for config in [
            exact,
            ProtocolConfig {
                drelu: DreluProtocol::Fss,
                ..exact
            },
        ] {
            assert_independent(
                &format!("block ReLU, {:?}", config.drelu),
                compare_copies(config, Leak::None, n, (s1, s2), |p, _, x, _| {
                    let r = p.role.index();
                    both_passes(p, |a| relu::block_relu(a, &layout, &x[r], 64)).unwrap();
                }),
            );
        }

        // Max pool over 5 taps (3 levels, one odd), taps s + t; clip to [0, 6]; both by
        // parts (securenn) and fused (fss).
        for config in [
            exact,
            ProtocolConfig {
                drelu: DreluProtocol::Fss,
                ..exact
            },
        ] {
            let (k, n) = (5, 300);
            let taps = |s: u64| -> Vec<[Vec<u64>; 3]> {
                (0..k)
                    .map(|t| shares(&vec![s.wrapping_add(t as u64 * 4096); n]))
                    .collect()
            };
            assert_independent(
                &format!("max pool, {:?}", config.drelu),
                compare(
                    config,
                    Leak::None,
                    6,
                    || [taps(s1), taps(s1)],
                    || [taps(s2), taps(s1)],
                    &[],
                    |p, _, t, _| {
                        let r = p.role.index();
                        both_passes(p, |a| {
                            let mine = t.iter().map(|s| s[r].clone()).collect();
                            maxpool::max_tree(a, mine, n)
                        })
                        .unwrap();
                    },
                ),
            );

            let cs = Shape::new(2, 20, 20);
            let n = cs.elements() as usize;
            let pixels = BlockLayout::new(cs, &[Block::RELU; 2]);
            assert_independent(
                &format!("clip, {:?}", config.drelu),
                compare_copies(config, Leak::None, n, (s1, s2), |p, _, x, _| {
                    let r = p.role.index();
                    both_passes(p, |a| {
                        clip::block_clip(a, 0, &pixels, &x[r], 400, 0, 6 << 12)
                    })
                    .unwrap();
                }),
            );

            // The other activations over a tiling with every block kind: leaky ReLU (a
            // select, a local product, a truncation) and hard swish (a two-point select, two
            // truncations at their own addresses, a Beaver product).
            let one = 1i64 << 12;
            for kind in [
                ActivationKind::LeakyRelu { slope: one / 10 },
                ActivationKind::HardSwish {
                    alpha: one / 6,
                    beta: one / 2,
                },
            ] {
                let plan = Plan {
                    kind,
                    layout: layout.clone(),
                    plane: 64,
                    n: xs.elements() as usize,
                    scale: LinearMap::Scale { x: xs },
                    frac_bits: 12,
                };
                assert_independent(
                    &format!("{}, {:?}", kind.name(), config.drelu),
                    compare_copies(config, Leak::None, plan.n, (s1, s2), |p, _, x, _| {
                        let r = p.role.index();
                        both_passes(p, |a| plan.eval(a, &x[r], None)).unwrap();
                    }),
                );
            }
        }

        // A product with a per-channel gate (the `mul` layer: a compressed Beaver product,
        // then a truncation), map and gate both the secret.
        let gs = Shape::new(4, 10, 10);
        let (n, plane) = (gs.elements() as usize, 100);
        let gate = MulShape {
            n_x: n,
            n_y: 4,
            map: Some((0..n).map(|i| (i / plane) as u32).collect()),
        };
        assert_independent(
            "gated product",
            compare_copies(exact, Leak::None, n + 4, (s1, s2), |p, _, x, _| {
                let r = p.role.index();
                let (map, g) = x[r].split_at(if x[r].is_empty() { 0 } else { n });
                both_passes(p, |a| {
                    let y = a.mul(Label::Product(0), &gate, map, g)?;
                    a.truncate(0, y, n)
                })
                .unwrap();
            }),
        );

        let n = 800;
        // Helper-exact truncation.
        assert_independent(
            "truncation",
            compare_copies(exact, Leak::None, n, (s1, s2), |p, _, y, _| {
                trunc::truncate(p, y[p.role.index()].clone(), n).unwrap();
            }),
        );

        // Output: P1's share to P0 (P0 learns the value by design; its share is what it sees).
        assert_independent(
            "output",
            compare_copies(exact, Leak::None, n, (s1, s2), |p, _, y, _| {
                share::reveal_to_client(p, &y[p.role.index()], n).unwrap();
            }),
        );
    }
}

/// `y = W·x` with W `[out, in]`, for the linear-layer tests.
struct MatVec {
    n_in: usize,
    n_out: usize,
}

impl Bilinear for MatVec {
    fn x_len(&self) -> usize {
        self.n_in
    }
    fn w_len(&self) -> usize {
        self.n_in * self.n_out
    }
    fn y_len(&self) -> usize {
        self.n_out
    }
    fn apply(&self, x: &[u64], w: &[u64]) -> Vec<u64> {
        crate::kernels::conv::linear(x, w, self.n_out)
    }
}

/// Linear layer: P0 must not learn W, P1 must not learn X. Condition A: weights W1 and
/// inputs (X1, X1); B: W2 and (X2, X1). The masked weights B = W − F go to P2 once per session.
#[test]
fn linear_views_are_independent_of_inputs_and_weights() {
    let op = MatVec {
        n_in: 64,
        n_out: 16,
    };
    let w_far = |s: u64| vec![s; op.w_len()];
    for (s1, s2) in FAR {
        let (s1, s2) = (s1 as u64, s2 as u64);
        let input = |x: u64, w: &[u64]| {
            let mut sh = shares(&vec![x; op.n_in]);
            sh[Role::Helper.index()] = w.to_vec(); // the server's weights, carried along
            sh
        };
        let found = compare(
            ProtocolConfig::default(),
            Leak::None,
            8,
            || [input(s1, &w_far(s1)), input(s1, &w_far(s1))],
            || [input(s2, &w_far(s2)), input(s1, &w_far(s2))],
            &[],
            |p, i, x, memo| {
                let w = (p.role == Role::Server).then(|| x[Role::Helper.index()].as_slice());
                if i == 0 {
                    memo.push(linear::setup(p, &op, w).unwrap().masked.unwrap_or_default());
                }
                let session = linear::Session {
                    masked: (p.role == Role::Helper).then(|| memo[0].clone()),
                    resident: None,
                };
                let pre = linear::offline(p, &op, &session).unwrap();
                let mine = if p.role == Role::Helper {
                    &[][..]
                } else {
                    &x[p.role.index()][..]
                };
                linear::online(p, &op, mine, w, &session, pre).unwrap();
            },
        );
        assert_independent("linear", found);
    }
}

/// What the helper knows about one comparison: x, both bit shares (it dealt them), and the
/// two vectors it received.
struct Known {
    x: u64,
    x0: Vec<u8>,
    x1: Vec<u8>,
    d0: Vec<u8>,
    d1: Vec<u8>,
}

impl Known {
    fn element(&self, bits: u32) -> Element<'_> {
        Element {
            bits,
            x: self.x,
            x0: &self.x0,
            x1: &self.x1,
            d0: &self.d0,
            d1: &self.d1,
        }
    }
}

/// [`Known`] for each comparison of the DReLU (index 0) in `run`'s inference `inf`.
fn helper_knowledge(run: &Run, inf: usize, bits: u32) -> Vec<Known> {
    let view = &run.views[inf][Role::Helper.index()];
    let get = |step: &str| -> &Received {
        view.iter()
            .find(|m| m.step == step)
            .unwrap_or_else(|| panic!("no {step}"))
    };
    let ring = |m: &Received| ksnn_formats::frame::get_ring(&m.message.payload).unwrap();
    let u0 = ring(get("wrap: masked values from P0"));
    let u1 = ring(get("wrap: masked values from P1"));
    let d0 = &get("wrap: comparison vector from P0").message.payload;
    let d1 = &get("wrap: comparison vector from P1").message.payload;
    let n = u0.len();
    let w = bits as usize;
    let x0_all = run.keys[Role::Helper.index()]
        .stream(
            Pair::ClientHelper,
            &Addr::root(Scope::Inference(inf as u64 + 1)).child(Label::Layer(0)),
            Purpose::WrapBits,
        )
        .mod_p(n * w);
    (0..n)
        .map(|e| {
            let x = u0[e].wrapping_add(u1[e]) & mask(bits);
            let x0 = x0_all[e * w..(e + 1) * w].to_vec();
            let x1: Vec<u8> = bits_msb_first(x, bits)
                .zip(&x0)
                .map(|(b, s)| (b + P - s) % P)
                .collect();
            Known {
                x,
                x0,
                x1,
                d0: d0[e * w..(e + 1) * w].to_vec(),
                d1: d1[e * w..(e + 1) * w].to_vec(),
            }
        })
        .collect()
}

/// Runs the F1 attack on the helper's view of DReLUs of random values; the share recovered.
fn attack_rate(config: ProtocolConfig, leak: Leak, n: usize, budget: usize) -> f64 {
    let bits = 63 - config.approx.g as u32;
    let low = mask(63);
    let values: Vec<u64> = (0..n).map(|_| rand_u64() >> (64 - bits)).collect();
    let run = session(
        config,
        leak,
        &[shares(&values), shares(&values)],
        |p, _, x, _| {
            drelu(p, &x[p.role.index()], n).unwrap();
        },
    );
    let known = helper_knowledge(&run, 0, bits);
    let mut hits = 0;
    for (v, k) in values.iter().zip(&known) {
        let e = k.element(bits);
        let u = (v << config.approx.g & low) >> config.approx.g;
        hits += (attack::recover(&e, budget) == Some(u)) as usize;
    }
    hits as f64 / n as f64
}

fn narrow() -> ProtocolConfig {
    ProtocolConfig {
        approx: ApproxCompare { k: 0, g: 48 },
        ..Default::default()
    }
}

#[test]
fn pc_attack_recovers_r_without_the_zero_sharing() {
    let wide = attack_rate(
        ProtocolConfig::default(),
        Leak::UnmaskedCompare,
        100,
        20_000,
    );
    let short = attack_rate(narrow(), Leak::UnmaskedCompare, 300, 20_000);
    eprintln!("F1 attack on Algorithm 3: {wide:.3} recovered at n = 63, {short:.3} at n = 15");
    assert!(
        wide >= 0.9,
        "the attack should work on Algorithm 3 at n = 63: {wide}"
    );
    assert!(
        short >= 0.9,
        "the attack should work on Algorithm 3 at n = 15: {short}"
    );
}

#[test]
fn pc_attack_fails_on_the_protocol() {
    let wide = attack_rate(ProtocolConfig::default(), Leak::None, 100, 20_000);
    let short = attack_rate(narrow(), Leak::None, 300, 20_000);
    eprintln!("F1 attack on the protocol: {wide:.3} recovered at n = 63, {short:.3} at n = 15");
    // Chance is 2^-63 and 2^-15 per element; allow a stray hit.
    assert!(wide <= 0.01, "recovered {wide} at n = 63");
    assert!(short <= 0.01, "recovered {short} at n = 15");
}

/// Knowledge-conditioned statistics of the helper for DReLU secrets `s1`, `s2`: per element,
/// how well the hypothesis "u is what s1 gives" predicts the observed ratios at the first
/// positions, and whether the attack (2,000 nodes) lands on that u.
fn helper_statistics_differ(leak: Leak, s1: i64, s2: i64) -> Vec<String> {
    let n = 300;
    let guess = s1 as u64 & mask(63);
    let mut h: [Histograms; 2] = Default::default();
    for _ in 0..3 {
        for (c, s) in [s1, s2].into_iter().enumerate() {
            let x = vec![s as u64; n];
            let run = session(
                ProtocolConfig::default(),
                leak,
                &[shares(&x), shares(&x)],
                |p, _, x, _| {
                    drelu(p, &x[p.role.index()], n).unwrap();
                },
            );
            for k in helper_knowledge(&run, 0, 63) {
                let e = k.element(63);
                h[c].add(
                    "presence of the predicted ratios",
                    25,
                    attack::presence(&e, guess),
                );
                let hit = attack::recover(&e, 2_000) == Some(guess);
                h[c].add("the attack finds the hypothesis", 2, hit as usize);
            }
        }
    }
    differing(&h[0], &h[1])
}

#[test]
fn helper_view_is_independent_of_the_compared_value() {
    for (s1, s2) in FAR {
        let found = helper_statistics_differ(Leak::None, s1, s2);
        assert!(found.is_empty(), "{s1} vs {s2}: {found:?}");
    }
}

#[test]
fn unmasked_compare_is_caught() {
    for (s1, s2) in FAR {
        let found = helper_statistics_differ(Leak::UnmaskedCompare, s1, s2);
        assert!(!found.is_empty(), "{s1} vs {s2}: the leak went unseen");
    }
}

#[test]
fn reused_mask_is_caught() {
    let found = drelu_views(
        ProtocolConfig::default(),
        Leak::ReusedMask,
        800,
        0,
        -1i64 as u64,
    );
    assert!(
        !found[Role::Helper.index()].is_empty(),
        "P2 sees a reused mask across inferences"
    );
    assert!(
        !found[Role::Server.index()].is_empty(),
        "P1 sees a reused mask across inferences"
    );
}

/// A DCF key and mask reused across two comparisons (here: the same position in two
/// inferences, [`Leak::ReusedMask`]) must be seen, in the stand-alone DReLU and in the fused
/// select. A received opening alone stays uniform
/// under reuse (the peer's share is fresh), so the test sets it against what the receiver
/// knows, its own opening: the known attack — the difference of the two inferences' opened
/// sums is the difference of the compared values — recovers the secret's change at every
/// position for either computing party with the control, and at none on the protocol.
#[test]
fn reused_fss_key_is_caught() {
    let (s1, s2) = (1234u64, (-98_765i64) as u64);
    let n = 64;
    // What a receiver opens itself for one protocol: its share plus (or minus) the mask it
    // draws at `path` for `purpose`, the mask's first n draws.
    struct Case {
        step: &'static str,
        path: Option<Label>,
        purpose: Purpose,
        minus: bool,
    }
    let recovered = |case: &Case, leak: Leak, role: Role| -> usize {
        let inputs = [shares(&vec![s1; n]), shares(&vec![s2; n])];
        let run = session(fss(), leak, &inputs, |p, _, x, _| {
            let r = p.role.index();
            if case.path.is_none() {
                drelu(p, &x[r], n).unwrap();
            } else {
                let shape = crate::protocol::beaver::MulShape::elementwise(n);
                both_passes(p, |a| {
                    crate::protocol::arith::Arith::select(a, 0, &shape, &x[r])
                })
                .unwrap();
            }
        });
        let opened = |inf: usize| -> Vec<u64> {
            let m = run.views[inf][role.index()]
                .iter()
                .find(|m| m.step.contains(case.step))
                .expect("the peer's opening");
            ksnn_formats::frame::get_ring(&m.message.payload).unwrap()
        };
        // The receiver's own opening, from its share and its mask stream with P2.
        let own = |inf: usize| -> Vec<u64> {
            let mut at = Addr::root(Scope::Inference(inf as u64 + 1)).child(Label::Layer(0));
            if let Some(label) = case.path {
                at = at.child(label);
            }
            if leak == Leak::ReusedMask {
                at = at.in_scope(Scope::Inference(0));
            }
            let pair = Pair::of(role, Role::Helper).unwrap();
            let r = run.keys[role.index()]
                .stream(pair, &at, case.purpose)
                .ring(n);
            let x = &inputs[inf][role.index()];
            (0..n)
                .map(|i| {
                    if case.minus {
                        x[i].wrapping_sub(r[i])
                    } else {
                        x[i].wrapping_add(r[i])
                    }
                })
                .collect()
        };
        let (a, b, oa, ob) = (opened(0), opened(1), own(0), own(1));
        (0..n)
            .filter(|&i| {
                let d = b[i]
                    .wrapping_add(ob[i])
                    .wrapping_sub(a[i].wrapping_add(oa[i]));
                d == s2.wrapping_sub(s1)
            })
            .count()
    };
    let cases = [
        Case {
            step: "open z + r",
            path: None,
            purpose: Purpose::FssMask,
            minus: false,
        },
        // The fused select: the comparison's masked value is the sum of E = x − A.
        Case {
            step: "select: open x − A",
            path: Some(Label::Product(0)),
            purpose: Purpose::SelectMask,
            minus: true,
        },
    ];
    for case in &cases {
        for role in [Role::Client, Role::Server] {
            assert_eq!(
                recovered(case, Leak::ReusedMask, role),
                n,
                "the control, {}: {role} recovers every difference",
                case.step
            );
            assert_eq!(
                recovered(case, Leak::None, role),
                0,
                "fresh keys, {}: {role} recovers nothing",
                case.step
            );
        }
    }
}

/// P0's view of whole inferences of the example CNN under two different weight files with the
/// same input (two inferences per session), without the output it learns by design.
#[test]
fn client_view_is_independent_of_the_weights() {
    use crate::exec::engine::Engine;
    use crate::exec::model::{Model, encode_input};
    use crate::net::counting::CountingTransport;
    use crate::net::recording::RecordingTransport;
    use ksnn_formats::example::{tiny_cnn, with_weights};

    // Two weight files for one architecture; each binds its own program (the weights' hash
    // is public by design), so the client runs the program of the server it talks to.
    let (base, _) = tiny_cnn(9);
    let pairs = [
        with_weights(base.clone(), 1, 0.5),
        with_weights(base, 2, 0.5),
    ];
    let models: Vec<(Model, Model)> = pairs
        .iter()
        .map(|(p, w)| {
            (
                Model::new(p, None).unwrap(),
                Model::new(p, Some(w)).unwrap(),
            )
        })
        .collect();
    let n_in = models[0].0.shapes[0].elements() as usize;
    let pixels: Vec<f32> = (0..n_in).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
    let input = encode_input(&pairs[0].0, &pixels);
    let mut h: [Histograms; 2] = Default::default();
    for _ in 0..6 {
        for (c, (client, server)) in models.iter().enumerate() {
            let (views, keys) = crate::testing::on_three(|k, net| {
                let role = k.role();
                let model = if role == Role::Server { server } else { client };
                let mut engine = Engine::new(model, k.clone());
                let mut net = CountingTransport::new(RecordingTransport::new(net));
                engine.setup(&mut net).unwrap();
                let mut out: [Vec<Received>; 2] = Default::default();
                for (i, o) in out.iter_mut().enumerate() {
                    engine
                        .infer(
                            &mut net,
                            i as u64 + 1,
                            (role == Role::Client).then_some(&input[..]),
                        )
                        .unwrap();
                    // The first inference's view starts with the set-up's.
                    *o = net.inner_mut().take_view();
                }
                out
            });
            let [a, b] = views[0].clone();
            let run = Run {
                views: [[a, Vec::new(), Vec::new()], [b, Vec::new(), Vec::new()]],
                keys,
            };
            features(&run, Role::Client, &["output"], &mut h[c]);
        }
    }
    let found = differing(&h[0], &h[1]);
    assert!(
        found.is_empty(),
        "P0's view depends on the weights:\n{}",
        found.join("\n")
    );
}

/// The program's message bound (what receivers enforce) covers every message a whole
/// inference sends, with either truncation, and is not loose by orders of magnitude.
#[test]
fn every_message_fits_the_program_bound() {
    use crate::exec::engine::Engine;
    use crate::exec::model::{Model, encode_input};
    use crate::net::counting::CountingTransport;
    use crate::net::recording::RecordingTransport;
    use ksnn_formats::example::{tiny_cnn, with_weights};

    let configs = [
        (Truncation::LocalShift, DreluProtocol::SecureNn),
        (Truncation::HelperExact, DreluProtocol::SecureNn),
        (Truncation::LocalShift, DreluProtocol::Fss),
    ];
    for (truncation, drelu) in configs {
        let (mut p, _) = tiny_cnn(4);
        p.protocol.truncation = truncation;
        p.protocol.drelu = drelu;
        let (program, weights) = with_weights(p, 4, 0.3);
        let bound = program.max_layer_message().unwrap() as usize;
        let client = Model::new(&program, None).unwrap();
        let server = Model::new(&program, Some(&weights)).unwrap();
        let input = encode_input(&program, &vec![0.5; 784]);
        let (largest, _) = crate::testing::on_three(|k, net| {
            let model = if k.role() == Role::Server {
                &server
            } else {
                &client
            };
            let role = k.role();
            let mut engine = Engine::new(model, k.clone());
            let mut net = CountingTransport::new(RecordingTransport::new(net));
            engine.setup(&mut net).unwrap();
            engine
                .infer(&mut net, 1, (role == Role::Client).then_some(&input[..]))
                .unwrap();
            let view = net.inner_mut().take_view();
            view.iter()
                .map(|m| m.message.payload.len())
                .max()
                .unwrap_or(0)
        });
        let largest = largest.into_iter().max().unwrap();
        assert!(
            largest <= bound,
            "{truncation:?}, {drelu:?}: a {largest}-byte message over the bound {bound}"
        );
        assert!(
            bound <= 16 * largest,
            "{truncation:?}, {drelu:?}: bound {bound} for at most {largest}"
        );
    }
}
