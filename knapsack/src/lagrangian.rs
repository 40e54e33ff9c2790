//! Lagrangian / LP-relaxation solver with a certified bound.
//!
//! The LP relaxation of the multiple-choice knapsack lets a row mix two neighbouring points
//! of the upper convex hull of its (weight, value) options. It is solved exactly by starting
//! every row at its lightest option and taking hull segments in order of value gained per
//! weight until the next one does not fit. That segment's slope λ prices the budget, and
//! λ·budget + Σ_rows max_option (value − λ·weight) bounds every integral choice (weak
//! duality, valid for any λ ≥ 0, so floating-point hull details cannot break it). The
//! segments taken form an integral solution; the leftover budget then goes to the best
//! single-row upgrades (any option, not only hull points) while one fits.
//!
//! Time O(options · log options), memory O(options).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{Flat, KnapsackError, Problem, Solution};

/// A solution with a proof of how far from optimal it can be.
#[derive(Clone, Debug, PartialEq)]
pub struct Bounded {
    /// The feasible choice found (Σ weight ≤ budget).
    pub solution: Solution,
    /// No choice within the budget has a larger value.
    pub upper_bound: f64,
    /// `upper_bound − solution.value` (≥ 0): the most the optimum can exceed the solution by.
    pub gap: f64,
}

/// One hull segment of a row: moving from hull point `pos` to `pos + 1`.
struct Segment {
    slope: f64,
    row: u32,
    pos: u32,
}

/// A row's best upgrade within the current leftover, ordered by gain (then lower row first).
#[derive(PartialEq)]
struct Upgrade {
    gain: f64,
    row: usize,
}

impl Eq for Upgrade {}

impl Ord for Upgrade {
    fn cmp(&self, other: &Self) -> Ordering {
        self.gain
            .total_cmp(&other.gain)
            .then(other.row.cmp(&self.row))
    }
}

impl PartialOrd for Upgrade {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A near-optimal choice within `budget` plus an upper bound on the optimum.
///
/// Errors: empty rows or non-finite values; [`KnapsackError::Infeasible`] when even the
/// lightest options exceed the budget.
pub fn lagrangian(problem: &Problem, budget: u64) -> Result<Bounded, KnapsackError> {
    let flat = Flat::new(problem)?;
    let cap = flat.capacity(budget)?;
    let n = flat.rows();

    // Upper hull of each row's Pareto options, as positions into the row.
    let mut hull_start = Vec::with_capacity(n + 1);
    let mut hull: Vec<u32> = Vec::new();
    let mut segments = Vec::new();
    hull_start.push(0);
    for r in 0..n {
        let (ws, vs) = flat.row(r);
        let first = hull.len();
        for k in 0..ws.len() {
            // Drop the last point while it is not strictly above the chord to k.
            while hull.len() >= first + 2 {
                let (a, b) = (hull[hull.len() - 2] as usize, hull[hull.len() - 1] as usize);
                let left = (vs[b] - vs[a]) * (ws[k] - ws[b]) as f64;
                let right = (vs[k] - vs[b]) * (ws[b] - ws[a]) as f64;
                if left <= right {
                    hull.pop();
                } else {
                    break;
                }
            }
            hull.push(k as u32);
        }
        // Slopes, forced non-increasing along the row so the global order keeps each row's
        // segments in sequence even when rounding says otherwise.
        let mut prev = f64::INFINITY;
        for (pos, pair) in hull[first..].windows(2).enumerate() {
            let (a, b) = (pair[0] as usize, pair[1] as usize);
            let slope = ((vs[b] - vs[a]) / (ws[b] - ws[a]) as f64).min(prev);
            prev = slope;
            segments.push(Segment {
                slope,
                row: r as u32,
                pos: pos as u32,
            });
        }
        hull_start.push(hull.len());
    }
    segments.sort_unstable_by(|a, b| {
        b.slope
            .total_cmp(&a.slope)
            .then(a.row.cmp(&b.row))
            .then(a.pos.cmp(&b.pos))
    });

    // LP greedy: hull steps by efficiency until the first that does not fit.
    let mut pick: Vec<usize> = vec![0; n];
    let mut left = cap;
    let mut lambda = 0.0;
    for s in &segments {
        let r = s.row as usize;
        let h = &hull[hull_start[r]..hull_start[r + 1]];
        let (ws, _) = flat.row(r);
        let (from, to) = (h[s.pos as usize] as usize, h[s.pos as usize + 1] as usize);
        debug_assert_eq!(pick[r], from);
        let dw = ws[to] - ws[from];
        if dw > left {
            lambda = s.slope.max(0.0);
            break;
        }
        left -= dw;
        pick[r] = to;
    }
    drop(segments);
    drop(hull);

    // Certified bound: the Lagrangian dual at λ.
    let mut upper = lambda * cap as f64;
    for r in 0..n {
        let (ws, vs) = flat.row(r);
        upper += ws
            .iter()
            .zip(vs)
            .map(|(&w, &v)| v - lambda * w as f64)
            .fold(f64::NEG_INFINITY, f64::max);
    }

    // Repair: spend the leftover on the best single-row upgrade while any gains. On Pareto
    // options the best upgrade within `left` is the heaviest that fits, and gains only
    // shrink as `left` does, so stale heap entries are re-scored lazily.
    let best_move = |r: usize, cur: usize, left: u64| -> (usize, f64) {
        let (ws, vs) = flat.row(r);
        let reach = ws[cur].saturating_add(left);
        let k = ws.partition_point(|&w| w <= reach) - 1;
        (k, vs[k] - vs[cur])
    };
    let mut heap: BinaryHeap<Upgrade> = (0..n)
        .filter_map(|r| {
            let (_, gain) = best_move(r, pick[r], left);
            (gain > 0.0).then_some(Upgrade { gain, row: r })
        })
        .collect();
    while let Some(top) = heap.pop() {
        let r = top.row;
        let (k, gain) = best_move(r, pick[r], left);
        if gain <= 0.0 {
            continue;
        }
        if heap.peek().is_some_and(|next| gain < next.gain) {
            heap.push(Upgrade { gain, row: r });
            continue;
        }
        let (ws, _) = flat.row(r);
        left -= ws[k] - ws[pick[r]];
        pick[r] = k;
        let (_, gain) = best_move(r, k, left);
        if gain > 0.0 {
            heap.push(Upgrade { gain, row: r });
        }
    }

    let solution = flat.solution(problem, &pick);
    debug_assert!(solution.weight <= budget);
    let upper_bound = upper.max(solution.value);
    Ok(Bounded {
        gap: upper_bound - solution.value,
        upper_bound,
        solution,
    })
}
