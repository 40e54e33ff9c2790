//! Every stream one party opens in a session's set-up and one inference has its own address:
//! [`crate::protocol::Party::sub`] hands each sub-protocol a child, so two uses of
//! randomness never share a stream by accident. The positive control flattens the paths, as
//! colliding hand-picked indices would, and must be caught.

use std::collections::{BTreeSet, HashMap};

use ksnn_formats::example::{tiny_cnn, with_weights};
use ksnn_formats::{DreluProtocol, Truncation};

use crate::exec::engine::Engine;
use crate::exec::model::Model;
use crate::net::counting::CountingTransport;
use crate::prf::{Addr, Purpose, audit};
use crate::role::{Pair, Role};
use crate::testing::{Leak, on_three, set_leak};

type Opened = Vec<(Pair, Addr, Purpose)>;

/// What each party opened in the set-up and inference 0 of the example CNN (helper-exact
/// truncation, so truncations draw streams too) with the DReLU protocol `drelu`.
fn opened(leak: Leak, drelu: DreluProtocol) -> [Opened; 3] {
    let (mut program, _) = tiny_cnn(5);
    program.protocol.truncation = Truncation::HelperExact;
    program.protocol.drelu = drelu;
    let (program, weights) = with_weights(program, 5, 0.5);
    let client = Model::new(&program, None).unwrap();
    let server = Model::new(&program, Some(&weights)).unwrap();
    let n = program.input.shape.elements() as usize;
    let input = vec![1u64 << 11; n];
    on_three(|k, net| {
        set_leak(leak);
        let model = if k.role() == Role::Server {
            &server
        } else {
            &client
        };
        let mut engine = Engine::new(model, k.clone());
        let mut net = CountingTransport::new(net);
        audit::start();
        engine.setup(&mut net).unwrap();
        let x = (k.role() == Role::Client).then_some(input.as_slice());
        engine.infer(&mut net, 0, x).unwrap();
        audit::take()
    })
    .0
}

/// The addresses a party opened more than once, with their counts.
fn repeated(opened: &Opened) -> Vec<String> {
    let mut count: HashMap<&(Pair, Addr, Purpose), usize> = HashMap::new();
    for o in opened {
        *count.entry(o).or_default() += 1;
    }
    let mut out: Vec<String> = count
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|((pair, at, purpose), c)| {
            let path: Vec<_> = at.path().collect();
            format!("{pair:?} {:?} {path:?} {purpose:?} ×{c}", at.scope())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn one_inference_never_opens_an_address_twice() {
    for drelu in [DreluProtocol::SecureNn, DreluProtocol::Fss] {
        check_addresses(drelu);
    }
}

fn check_addresses(drelu: DreluProtocol) {
    let opened = opened(Leak::None, drelu);
    for role in Role::ALL {
        let mine = &opened[role.index()];
        assert!(mine.len() > 20, "{role} opened only {} streams", mine.len());
        let again = repeated(mine);
        assert!(
            again.is_empty(),
            "{drelu:?}: {role} reused:\n{}",
            again.join("\n")
        );
    }
    // Correlated randomness only works if both parties of a pair draw the same streams:
    // each address one opens, the other opens too (offline or online, set-up or not).
    for pair in Pair::ALL {
        let of = |r: Role| -> BTreeSet<(Addr, Purpose)> {
            opened[r.index()]
                .iter()
                .filter(|o| o.0 == pair)
                .map(|o| (o.1, o.2))
                .collect()
        };
        let mut parties = Role::ALL.into_iter().filter(|&r| pair.contains(r));
        let (a, b) = (parties.next().unwrap(), parties.next().unwrap());
        assert!(!of(a).is_empty(), "{pair:?} draws nothing");
        assert_eq!(
            of(a),
            of(b),
            "{drelu:?}, {pair:?}: {a} and {b} open different streams"
        );
    }
}

#[test]
fn flattened_addresses_are_caught() {
    let opened = opened(Leak::FlatAddress, DreluProtocol::SecureNn);
    let again = repeated(&opened[Role::Client.index()]);
    assert!(
        again.iter().any(|r| r.contains("WrapCommon")),
        "the max pool's levels share one address when paths are flat: {again:?}"
    );
}
