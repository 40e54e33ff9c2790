//! Features of a party's joint view and the two-sample χ² test that compares them between
//! two secrets.

use std::collections::BTreeMap;

use ksnn_formats::FrameKind;

use super::Run;
use crate::net::recording::Received;
use crate::prf::P;
use crate::role::Role;

/// Counts per bin of every feature, by name.
#[derive(Default)]
pub struct Histograms(pub BTreeMap<String, Vec<u64>>);

impl Histograms {
    pub fn add(&mut self, name: &str, bins: usize, symbol: usize) {
        let h = self
            .0
            .entry(name.to_string())
            .or_insert_with(|| vec![0; bins]);
        h[symbol] += 1;
    }

    fn ring(&mut self, name: &str, v: u64) {
        // Mod a prime mixes all 64 bits (a constant difference lands in one bin); the top
        // byte sees structure in the high bits.
        self.add(&format!("{name} mod 251"), 251, (v % 251) as usize);
        self.add(&format!("{name} top byte"), 256, (v >> 56) as usize);
    }
}

enum Elems {
    Ring(Vec<u64>),
    Bytes(Vec<u8>),
}

fn elems(m: &Received) -> Elems {
    match m.message.kind {
        FrameKind::Ring => Elems::Ring(ksnn_formats::frame::get_ring(&m.message.payload).unwrap()),
        _ => Elems::Bytes(m.message.payload.clone()),
    }
}

fn inv_mod_p(a: u8) -> u8 {
    super::INV_MOD_P[a as usize]
}

/// Adds the features of `role`'s view in `run` to `h`, skipping steps named in `skip`:
/// every element of every message; pairs of same-shaped messages from the two peers at the
/// same position (sum, difference, ratio mod 67); and for all of these the difference
/// between the session's two inferences.
pub fn features(run: &Run, role: Role, skip: &[&str], h: &mut Histograms) {
    // Messages are named by step and occurrence, so the two inferences line up even when
    // only the first carries the session's set-up.
    let keep = |v: &[Received]| -> Vec<(String, Elems, Role)> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        v.iter()
            .filter(|m| !skip.iter().any(|s| m.step.contains(s)))
            .map(|m| {
                let k = seen.entry(m.step).or_default();
                *k += 1;
                (format!("{} #{k}", m.step), elems(m), m.from)
            })
            .collect()
    };
    let v1 = keep(&run.views[0][role.index()]);
    let v2 = keep(&run.views[1][role.index()]);
    let second = |name: &str| v2.iter().position(|(n, _, _)| n == name);
    for (name, a, _) in &v1 {
        let b = second(name).map(|j| &v2[j].1);
        match (a, b) {
            (Elems::Ring(a), b) => {
                for (k, x) in a.iter().enumerate() {
                    h.ring(name, *x);
                    if let Some(Elems::Ring(b)) = b {
                        h.ring(&format!("{name} Δinference"), b[k].wrapping_sub(*x));
                    }
                }
            }
            (Elems::Bytes(a), b) => {
                for (k, x) in a.iter().enumerate() {
                    h.add(name, 256, *x as usize);
                    if let Some(Elems::Bytes(b)) = b {
                        h.add(
                            &format!("{name} Δinference"),
                            256,
                            b[k].wrapping_sub(*x) as usize,
                        );
                    }
                }
            }
        }
    }
    for i in 0..v1.len() {
        for j in i + 1..v1.len() {
            let ((ni, ai, fi), (nj, aj, fj)) = (&v1[i], &v1[j]);
            if fi == fj {
                continue;
            }
            let name = format!("{ni} & {nj}");
            let later = second(ni)
                .zip(second(nj))
                .map(|(x, y)| (&v2[x].1, &v2[y].1));
            match (ai, aj) {
                (Elems::Ring(a), Elems::Ring(b)) if a.len() == b.len() => {
                    for k in 0..a.len() {
                        let s1 = a[k].wrapping_add(b[k]);
                        h.ring(&format!("{name} sum"), s1);
                        h.ring(&format!("{name} difference"), a[k].wrapping_sub(b[k]));
                        if let Some((Elems::Ring(a2), Elems::Ring(b2))) = later {
                            let s2 = a2[k].wrapping_add(b2[k]);
                            h.ring(&format!("{name} sum Δinference"), s2.wrapping_sub(s1));
                        }
                    }
                }
                (Elems::Bytes(a), Elems::Bytes(b)) if a.len() == b.len() => {
                    let p = P as u16;
                    for k in 0..a.len() {
                        let (x, y) = (a[k] as u16 % p, b[k] as u16 % p);
                        let s1 = (x + y) % p;
                        h.add(&format!("{name} sum"), 67, s1 as usize);
                        h.add(
                            &format!("{name} difference"),
                            67,
                            ((x + p - y) % p) as usize,
                        );
                        let ratio = if x == 0 || y == 0 {
                            66 + (x == 0) as usize + 2 * (y == 0) as usize
                        } else {
                            (x * inv_mod_p(y as u8) as u16 % p) as usize
                        };
                        h.add(&format!("{name} ratio"), 70, ratio);
                        if let Some((Elems::Bytes(a2), Elems::Bytes(b2))) = later {
                            let s2 = (a2[k] as u16 % p + b2[k] as u16 % p) % p;
                            h.add(
                                &format!("{name} sum Δinference"),
                                67,
                                ((s2 + p - s1) % p) as usize,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Two-sample χ² over the bins either sample uses, its degrees of freedom, and whether it
/// exceeds the critical value at p ≈ 10⁻⁹ (Wilson–Hilferty), so many features can be tested
/// at once without false alarms.
pub fn chi_square(a: &[u64], b: &[u64]) -> (f64, usize, bool) {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    let (ka, kb) = ((nb / na).sqrt(), (na / nb).sqrt());
    let mut chi = 0.0;
    let mut df = 0usize;
    for (&x, &y) in a.iter().zip(b) {
        if x + y == 0 {
            continue;
        }
        df += 1;
        let d = x as f64 * ka - y as f64 * kb;
        chi += d * d / (x + y) as f64;
    }
    let df = df.saturating_sub(1).max(1);
    let d = df as f64;
    let z = 6.0;
    let critical = d * (1.0 - 2.0 / (9.0 * d) + z * (2.0 / (9.0 * d)).sqrt()).powi(3);
    (chi, df, chi > critical)
}

/// Features of `role` whose distributions differ between the two samples, with their χ².
pub fn differing(a: &Histograms, b: &Histograms) -> Vec<String> {
    let mut out = Vec::new();
    for (name, ha) in &a.0 {
        let hb =
            b.0.get(name)
                .unwrap_or_else(|| panic!("feature {name} only in one sample"));
        let (chi, df, rejected) = chi_square(ha, hb);
        if rejected {
            out.push(format!("{name}: χ² {chi:.0} on {df} df"));
        }
    }
    out
}
