//! Both solvers against brute force and each other on deterministic random instances.

use ksnn_knapsack::{
    Item, KnapsackError, MAX_EXACT_CAPACITY, Problem, Row, Solution, exact, lagrangian,
};

/// SplitMix64: small, deterministic, good enough for test instances.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_problem(rng: &mut Rng, rows: usize, max_options: u64, max_weight: u64) -> Problem {
    Problem {
        rows: (0..rows)
            .map(|_| Row {
                options: (0..1 + rng.below(max_options))
                    .map(|_| Item {
                        weight: rng.below(max_weight + 1),
                        // Small integers half the time, so ties and equal values happen.
                        value: if rng.below(2) == 0 {
                            rng.below(7) as f64 - 3.0
                        } else {
                            rng.unit() * 20.0 - 10.0
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Optimum by enumerating every choice, or None when nothing fits.
fn brute(p: &Problem, budget: u64) -> Option<f64> {
    let mut best: Option<f64> = None;
    let mut idx = vec![0usize; p.rows.len()];
    loop {
        let w: u64 = p
            .rows
            .iter()
            .zip(&idx)
            .map(|(r, &k)| r.options[k].weight)
            .sum();
        if w <= budget {
            let v: f64 = p
                .rows
                .iter()
                .zip(&idx)
                .map(|(r, &k)| r.options[k].value)
                .sum();
            best = Some(best.map_or(v, |b: f64| b.max(v)));
        }
        let mut r = 0;
        loop {
            if r == idx.len() {
                return best;
            }
            idx[r] += 1;
            if idx[r] < p.rows[r].options.len() {
                break;
            }
            idx[r] = 0;
            r += 1;
        }
    }
}

/// The solution is what it claims and within the budget.
fn check(p: &Problem, budget: u64, s: &Solution) {
    assert_eq!(s.choice.len(), p.rows.len());
    let w: u64 = p
        .rows
        .iter()
        .zip(&s.choice)
        .map(|(r, &k)| r.options[k].weight)
        .sum();
    let v: f64 = p
        .rows
        .iter()
        .zip(&s.choice)
        .map(|(r, &k)| r.options[k].value)
        .sum();
    assert_eq!(w, s.weight);
    assert!((v - s.value).abs() <= 1e-9, "{v} vs {}", s.value);
    assert!(
        s.weight <= budget,
        "weight {} over budget {budget}",
        s.weight
    );
}

fn min_weight(p: &Problem) -> u64 {
    p.rows
        .iter()
        .map(|r| r.options.iter().map(|o| o.weight).min().unwrap())
        .sum()
}

fn max_weight(p: &Problem) -> u64 {
    p.rows
        .iter()
        .map(|r| r.options.iter().map(|o| o.weight).max().unwrap())
        .sum()
}

#[test]
fn exact_matches_brute_force() {
    let mut rng = Rng(1);
    let mut infeasible = 0;
    for case in 0..3000 {
        let rows = 1 + rng.below(6) as usize;
        let max_w = [0, 1, 3, 10, 40][case % 5];
        let p = random_problem(&mut rng, rows, 4, max_w);
        let (lo, hi) = (min_weight(&p), max_weight(&p));
        let budget = match rng.below(5) {
            0 => lo.saturating_sub(1 + rng.below(3)), // often infeasible
            1 => lo,                                  // exactly tight
            2 => hi,
            _ => lo + rng.below(hi - lo + 1),
        };
        let want = brute(&p, budget);
        let got = exact(&p, budget);
        let lg = lagrangian(&p, budget);
        match want {
            None => {
                infeasible += 1;
                assert!(
                    matches!(got, Err(KnapsackError::Infeasible { .. })),
                    "{got:?}"
                );
                assert!(
                    matches!(lg, Err(KnapsackError::Infeasible { .. })),
                    "{lg:?}"
                );
            }
            Some(v) => {
                let s = got.unwrap();
                check(&p, budget, &s);
                assert!(
                    (s.value - v).abs() <= 1e-9,
                    "case {case}: exact {} brute {v}",
                    s.value
                );
                let b = lg.unwrap();
                check(&p, budget, &b.solution);
                assert!(
                    b.upper_bound >= v - 1e-9,
                    "bound {} < optimum {v}",
                    b.upper_bound
                );
                assert!(b.gap >= 0.0);
                assert!(v - b.solution.value <= b.gap + 1e-9);
            }
        }
    }
    assert!(infeasible > 100, "too few infeasible cases: {infeasible}");
}

#[test]
fn lagrangian_is_feasible_and_certified_on_large_instances() {
    let mut rng = Rng(7);
    for case in 0..6 {
        let p = random_problem(&mut rng, 1000, 19, 50); // ~10 options per row
        let (lo, hi) = (min_weight(&p), max_weight(&p));
        let budget = lo + (hi - lo) * (case as u64 + 1) / 8;
        let opt = exact(&p, budget).unwrap();
        check(&p, budget, &opt);
        let b = lagrangian(&p, budget).unwrap();
        check(&p, budget, &b.solution);
        assert!(b.upper_bound >= opt.value - 1e-9);
        assert!(opt.value - b.solution.value <= b.gap + 1e-9);
        assert!(b.solution.value <= opt.value + 1e-9);
        // Sanity on quality: the LP gap over 1000 rows is a few options' worth at most.
        assert!(b.gap <= 50.0, "gap {}", b.gap);
    }
}

#[test]
fn exact_uses_the_leaf_and_the_split_paths() {
    // Few rows with a large capacity (split path down to single rows), many rows with a
    // small capacity (one leaf) and in between, against brute force or the Lagrangian bound.
    let mut rng = Rng(11);
    for (rows, options, max_w) in [(8, 4, 500_000), (3000, 8, 3), (200, 8, 30_000)] {
        let p = random_problem(&mut rng, rows, options, max_w);
        let (lo, hi) = (min_weight(&p), max_weight(&p));
        let budget = lo + (hi - lo) / 3;
        let opt = exact(&p, budget).unwrap();
        check(&p, budget, &opt);
        let b = lagrangian(&p, budget).unwrap();
        check(&p, budget, &b.solution);
        assert!(b.upper_bound >= opt.value - 1e-9);
        assert!(b.solution.value <= opt.value + 1e-9);
        if rows == 8 {
            let want = brute(&p, budget).unwrap();
            assert!((opt.value - want).abs() <= 1e-9, "{} vs {want}", opt.value);
        }
    }
}

#[test]
fn merged_keeps_the_best_per_weight() {
    let p = Problem {
        rows: vec![Row {
            options: vec![
                Item {
                    weight: 5,
                    value: -1.0,
                },
                Item {
                    weight: 0,
                    value: -9.0,
                },
                Item {
                    weight: 5,
                    value: -0.5,
                },
                Item {
                    weight: 2,
                    value: -3.0,
                },
                Item {
                    weight: 0,
                    value: -9.0,
                }, // tie: the lower index (1) stays
                Item {
                    weight: 2,
                    value: -4.0,
                },
            ],
        }],
    };
    let m = p.merged();
    let ws: Vec<u64> = m.problem.rows[0].options.iter().map(|o| o.weight).collect();
    let vs: Vec<f64> = m.problem.rows[0].options.iter().map(|o| o.value).collect();
    assert_eq!(ws, [0, 2, 5]);
    assert_eq!(vs, [-9.0, -3.0, -0.5]);
    assert_eq!(m.origin, vec![vec![1, 3, 2]]);
    assert_eq!(m.to_original(&[2]), vec![2]);

    // Random: every merged option is the best of its weight, and the optimum is unchanged.
    let mut rng = Rng(3);
    for _ in 0..200 {
        let p = random_problem(&mut rng, 4, 6, 5);
        let m = p.merged();
        for ((row, mrow), from) in p.rows.iter().zip(&m.problem.rows).zip(&m.origin) {
            let mut weights: Vec<u64> = row.options.iter().map(|o| o.weight).collect();
            weights.sort();
            weights.dedup();
            let got: Vec<u64> = mrow.options.iter().map(|o| o.weight).collect();
            assert_eq!(got, weights);
            for (o, &k) in mrow.options.iter().zip(from) {
                assert_eq!(row.options[k], *o);
                let best = row
                    .options
                    .iter()
                    .filter(|x| x.weight == o.weight)
                    .map(|x| x.value)
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(o.value, best);
            }
        }
        let budget = min_weight(&p) + rng.below(8);
        let a = exact(&p, budget).unwrap();
        let b = exact(&m.problem, budget).unwrap();
        assert!((a.value - b.value).abs() <= 1e-9);
    }
}

#[test]
fn degenerate_cases() {
    // All weights zero: every row takes its best option, even with budget 0.
    let p = Problem {
        rows: (0..5)
            .map(|i| Row {
                options: vec![
                    Item {
                        weight: 0,
                        value: -(i as f64),
                    },
                    Item {
                        weight: 0,
                        value: 1.0 + i as f64,
                    },
                    Item {
                        weight: 0,
                        value: 0.5,
                    },
                ],
            })
            .collect(),
    };
    for solve in [exact_value, lagrangian_value] {
        let (s, bound) = solve(&p, 0);
        assert_eq!(s.choice, vec![1; 5]);
        assert_eq!(s.weight, 0);
        assert_eq!(s.value, 15.0);
        assert_eq!(bound, 15.0);
    }

    // A single row: the best option that fits.
    let p = Problem {
        rows: vec![Row {
            options: vec![
                Item {
                    weight: 10,
                    value: 1.0,
                },
                Item {
                    weight: 3,
                    value: -2.0,
                },
                Item {
                    weight: 6,
                    value: 0.5,
                },
                Item {
                    weight: 20,
                    value: 0.7,
                },
            ],
        }],
    };
    for (budget, want) in [(3, 1), (5, 1), (6, 2), (9, 2), (10, 0), (100, 0)] {
        for solve in [exact_value, lagrangian_value] {
            let (s, bound) = solve(&p, budget);
            assert_eq!(s.choice, vec![want], "budget {budget}");
            assert!(bound >= s.value);
        }
    }
    assert!(matches!(
        exact(&p, 2),
        Err(KnapsackError::Infeasible {
            min_weight: 3,
            budget: 2
        })
    ));
    assert!(matches!(
        lagrangian(&p, 2),
        Err(KnapsackError::Infeasible { .. })
    ));

    // Single-option rows, negative values, no rows at all.
    let p = Problem {
        rows: vec![
            Row {
                options: vec![Item {
                    weight: 4,
                    value: -1.5
                }]
            };
            3
        ],
    };
    assert_eq!(exact(&p, 12).unwrap().value, -4.5);
    assert_eq!(lagrangian(&p, 12).unwrap().gap, 0.0);
    let empty = Problem::default();
    assert_eq!(exact(&empty, 0).unwrap().choice, Vec::<usize>::new());
    assert_eq!(lagrangian(&empty, 0).unwrap().upper_bound, 0.0);

    // Refusals.
    let bad = Problem {
        rows: vec![Row { options: vec![] }],
    };
    assert_eq!(exact(&bad, 1), Err(KnapsackError::EmptyRow { row: 0 }));
    let nan = Problem {
        rows: vec![Row {
            options: vec![Item {
                weight: 0,
                value: f64::NAN,
            }],
        }],
    };
    assert!(matches!(
        lagrangian(&nan, 1),
        Err(KnapsackError::NotFinite {
            row: 0,
            option: 0,
            ..
        })
    ));
    let huge = Problem {
        rows: vec![
            Row {
                options: vec![
                    Item {
                        weight: 0,
                        value: 0.0
                    },
                    Item {
                        weight: u64::MAX / 2,
                        value: 1.0
                    }
                ],
            };
            3
        ],
    };
    assert_eq!(
        exact(&huge, MAX_EXACT_CAPACITY + 1),
        Err(KnapsackError::BudgetTooLarge {
            capacity: MAX_EXACT_CAPACITY + 1,
            limit: MAX_EXACT_CAPACITY
        })
    );
    // The Lagrangian solver has no capacity limit.
    let b = lagrangian(&huge, u64::MAX / 2).unwrap();
    assert_eq!(b.solution.value, 1.0);
    assert!((b.upper_bound - 1.0).abs() <= 1e-9);
}

fn exact_value(p: &Problem, budget: u64) -> (Solution, f64) {
    let s = exact(p, budget).unwrap();
    let v = s.value;
    (s, v)
}

fn lagrangian_value(p: &Problem, budget: u64) -> (Solution, f64) {
    let b = lagrangian(p, budget).unwrap();
    check(p, budget, &b.solution);
    (b.solution, b.upper_bound)
}
