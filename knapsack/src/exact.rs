//! Exact DP over capacities with divide-and-conquer reconstruction (Hirschberg style).
//!
//! `table(rows, c)[b]` = best value of `rows` with relative weight ≤ b, for b in 0..=c. For
//! rows split in halves A | B, the optimum within c is max_b A[b] + B[c − b]; that b splits
//! the capacity, and each half is solved again with its share. Only O(c) floats live at a
//! time. Once a subproblem's rows × capacities fits a small fixed table, it is solved
//! directly with back-pointers, which saves the last levels of recursion.
//!
//! Time O(Pareto options · capacity · log rows), memory O(capacity) (+ a 16 MiB leaf table).

use std::ops::Range;

use crate::{Flat, KnapsackError, Problem, Solution};

/// Largest capacity (budget minus every row's lightest option) the DP accepts: its tables
/// take 32 bytes per capacity unit.
pub const MAX_EXACT_CAPACITY: u64 = 1 << 32;

/// Leaf subproblems with at most this many rows × capacities keep back-pointers (u32 each).
const LEAF_CELLS: usize = 1 << 22;

/// Work (cells × options) above which the two half tables are computed on two threads.
const PARALLEL_WORK: usize = 1 << 22;

/// The optimum: maximum Σ value with Σ weight ≤ `budget`.
///
/// Errors: empty rows or non-finite values; [`KnapsackError::Infeasible`] when even the
/// lightest options exceed the budget; [`KnapsackError::BudgetTooLarge`] when the capacity
/// the DP must span exceeds [`MAX_EXACT_CAPACITY`].
pub fn exact(problem: &Problem, budget: u64) -> Result<Solution, KnapsackError> {
    let flat = Flat::new(problem)?;
    let cap = flat.capacity(budget)?;
    let n = flat.rows();
    if u128::from(cap) >= flat.span {
        // Everything's best option fits: no DP needed.
        let pick: Vec<usize> = (0..n).map(|r| flat.row(r).0.len() - 1).collect();
        return Ok(flat.solution(problem, &pick));
    }
    if cap > MAX_EXACT_CAPACITY {
        return Err(KnapsackError::BudgetTooLarge {
            capacity: cap,
            limit: MAX_EXACT_CAPACITY,
        });
    }
    let cap = cap as usize;
    let len = cap + 1;
    let mut bufs: [Vec<f64>; 4] = Default::default();
    for b in &mut bufs {
        b.try_reserve_exact(len)
            .map_err(|_| KnapsackError::OutOfMemory {
                bytes: 32 * len as u64,
            })?;
    }
    let mut pick = vec![0usize; n];
    solve(&flat, 0..n, cap, &mut pick, &mut bufs);
    Ok(flat.solution(problem, &pick))
}

/// Fills `pick[i]` (Pareto position) for rows `rows.start + i`, optimal within `cap`.
fn solve(
    flat: &Flat,
    rows: Range<usize>,
    cap: usize,
    pick: &mut [usize],
    bufs: &mut [Vec<f64>; 4],
) {
    let n = rows.len();
    if n == 1 {
        // Pareto options: the heaviest that fits is the best.
        let (w, _) = flat.row(rows.start);
        pick[0] = w.partition_point(|&x| x as usize <= cap) - 1;
        return;
    }
    if n.saturating_mul(cap + 1) <= LEAF_CELLS {
        leaf(flat, rows, cap, pick, bufs);
        return;
    }
    let mid = rows.start + n / 2;
    let work: usize = rows
        .clone()
        .map(|r| flat.row(r).0.len())
        .sum::<usize>()
        .saturating_mul(cap + 1);
    let [fa, ta, fb, tb] = bufs;
    if work >= PARALLEL_WORK {
        std::thread::scope(|s| {
            s.spawn(|| table(flat, rows.start..mid, cap, fa, ta));
            table(flat, mid..rows.end, cap, fb, tb);
        });
    } else {
        table(flat, rows.start..mid, cap, fa, ta);
        table(flat, mid..rows.end, cap, fb, tb);
    }
    let mut split = 0;
    let mut best = f64::NEG_INFINITY;
    for (b, (&x, &y)) in fa.iter().zip(fb.iter().rev()).enumerate() {
        if x + y > best {
            best = x + y;
            split = b;
        }
    }
    let (left, right) = pick.split_at_mut(n / 2);
    solve(flat, rows.start..mid, split, left, bufs);
    solve(flat, mid..rows.end, cap - split, right, bufs);
}

/// `out[b]` = best value of `rows` within relative weight b, for b in 0..=cap.
fn table(flat: &Flat, rows: Range<usize>, cap: usize, out: &mut Vec<f64>, tmp: &mut Vec<f64>) {
    out.clear();
    out.resize(cap + 1, 0.0);
    tmp.clear();
    tmp.resize(cap + 1, 0.0);
    for r in rows {
        let (ws, vs) = flat.row(r);
        // Every row's first option weighs 0, so every capacity stays reachable.
        let v0 = vs[0];
        for (t, &f) in tmp.iter_mut().zip(out.iter()) {
            *t = f + v0;
        }
        for (&w, &v) in ws.iter().zip(vs).skip(1) {
            let w = w as usize;
            if w > cap {
                break;
            }
            for (t, &f) in tmp[w..].iter_mut().zip(&out[..=cap - w]) {
                let c = f + v;
                *t = if c > *t { c } else { *t };
            }
        }
        std::mem::swap(out, tmp);
    }
}

/// Plain DP with back-pointers for a subproblem small enough to keep them.
fn leaf(flat: &Flat, rows: Range<usize>, cap: usize, pick: &mut [usize], bufs: &mut [Vec<f64>; 4]) {
    let len = cap + 1;
    let [f, g, ..] = bufs;
    f.clear();
    f.resize(len, 0.0);
    g.clear();
    g.resize(len, 0.0);
    let mut back = vec![0u32; rows.len() * len];
    for (r, bp) in rows.clone().zip(back.chunks_exact_mut(len)) {
        let (ws, vs) = flat.row(r);
        let v0 = vs[0];
        for (t, &x) in g.iter_mut().zip(f.iter()) {
            *t = x + v0;
        }
        for (k, (&w, &v)) in ws.iter().zip(vs).enumerate().skip(1) {
            let w = w as usize;
            if w > cap {
                break;
            }
            let k = k as u32;
            for ((t, p), &x) in g[w..].iter_mut().zip(&mut bp[w..]).zip(&f[..=cap - w]) {
                let c = x + v;
                let better = c > *t;
                *t = if better { c } else { *t };
                *p = if better { k } else { *p };
            }
        }
        std::mem::swap(f, g);
    }
    // Tables are monotone in capacity, so the optimum sits at `cap`.
    let mut b = cap;
    for (i, r) in rows.enumerate().rev() {
        let k = back[i * len + b] as usize;
        pick[i] = k;
        b -= flat.row(r).0[k] as usize;
    }
}
