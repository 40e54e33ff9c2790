//! The multiple-choice knapsack behind block-size selection (docs/original.md §5): every channel of
//! every ReLU layer is a [`Row`], every candidate block size an [`Item`] with weight = DReLU
//! count and value = −distortion. Choose exactly one option per row to maximise Σ value with
//! Σ weight ≤ budget.
//!
//! Two solvers:
//! - [`exact`]: the optimum, by dynamic programming over capacities. Memory is O(budget), not
//!   rows × budget (the original paged ~200 GB of back-pointers for VOC): the choice is
//!   recovered by divide and conquer instead of stored back-pointers.
//! - [`lagrangian`]: near-optimal in O(options · log) time, with a certified upper bound, so
//!   the distance to the optimum is known without solving exactly.
//!
//! Both return original option indices, so callers map choices back to block sizes.
#![forbid(unsafe_code)]

mod exact;
mod lagrangian;

pub use exact::{MAX_EXACT_CAPACITY, exact};
pub use lagrangian::{Bounded, lagrangian};

use thiserror::Error;

/// Which solver to run: the choice callers offer their users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Solver {
    /// [`lagrangian`]: fast, with a certified optimality gap.
    #[default]
    Lagrangian,
    /// [`exact`]: dynamic programming; for small budgets.
    Exact,
}

/// How finely blocks are chosen. The knapsack's choice is per channel; the two naive
/// baselines it is measured against (`ksnn sweep --baseline`) choose coarser, from the same
/// distortion and under the same budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Granularity {
    /// A block per channel (the knapsack of docs/original.md §5). Not a baseline, so not
    /// offered where baselines are named.
    #[default]
    #[cfg_attr(feature = "clap", value(skip))]
    Channel,
    /// One block per layer, all its channels alike (DeepReDuce-style): the same knapsack with
    /// a layer per row, costs and distortions summed over its channels.
    #[cfg_attr(feature = "clap", value(name = "layerwise"))]
    Layer,
    /// One block for every channel of every layer: the largest-cost block within the budget
    /// (the least distortion among equal costs).
    Uniform,
}

/// One option of a row: its cost and how good it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Item {
    /// Cost in budget units (DReLUs); 0 is allowed (identity).
    pub weight: u64,
    /// Larger is better (−distortion); may be negative, must be finite.
    pub value: f64,
}

/// One row (channel): exactly one of its options is chosen. The option index is its position
/// here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// The candidates for this row (e.g. one per block size); must be non-empty.
    pub options: Vec<Item>,
}

/// A multiple-choice knapsack instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Problem {
    /// One row per independent choice (a channel of a ReLU layer), in the caller's order.
    pub rows: Vec<Row>,
}

/// A feasible choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// Original option index per row.
    pub choice: Vec<usize>,
    /// Σ weight of the chosen options (≤ budget).
    pub weight: u64,
    /// Σ value of the chosen options.
    pub value: f64,
}

/// [`Problem::merged`]: at most one option per distinct weight per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// Options sorted by increasing weight.
    pub problem: Problem,
    /// `origin[row][k]` = the original index of merged option `k` of `row`.
    pub origin: Vec<Vec<usize>>,
}

/// Why a solver refused.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum KnapsackError {
    /// A row offers nothing to choose, so no solution picks exactly one option from it.
    #[error("row {row} has no options")]
    EmptyRow {
        /// Index of the empty row in [`Problem::rows`].
        row: usize,
    },
    /// An option's value is NaN or infinite, which would make sums and comparisons meaningless.
    #[error("row {row}, option {option}: value {value} is not finite")]
    NotFinite {
        /// Index of the offending row in [`Problem::rows`].
        row: usize,
        /// Original index of the offending option within its row.
        option: usize,
        /// The non-finite value found.
        value: f64,
    },
    /// Even the cheapest choice (the lightest option of every row) exceeds the budget.
    #[error(
        "infeasible: the lightest option of every row already weighs {min_weight} in total, over the budget {budget}"
    )]
    Infeasible {
        /// Σ over rows of the lightest option's weight (u128: the sum may overflow u64).
        min_weight: u128,
        /// The budget the caller asked for.
        budget: u64,
    },
    /// The exact DP's table would span more capacities than [`MAX_EXACT_CAPACITY`].
    #[error(
        "the exact DP would need {capacity} capacities (budget minus the lightest options), over its limit {limit}"
    )]
    BudgetTooLarge {
        /// Capacities the DP would need: budget minus Σ lightest weights.
        capacity: u64,
        /// The limit exceeded ([`MAX_EXACT_CAPACITY`]).
        limit: u64,
    },
    /// The allocator refused the exact DP's tables; reported instead of aborting the process.
    #[error("cannot allocate {bytes} bytes of DP tables")]
    OutOfMemory {
        /// Total size of the DP tables requested (32 bytes per capacity unit).
        bytes: u64,
    },
}

impl Problem {
    /// Per row, the best option per distinct weight (ties: the lower original index), sorted by
    /// weight: options of identical cost can never both be useful, and fewer options make
    /// every solver faster (docs/original.md §5.2).
    pub fn merged(&self) -> Merged {
        let mut rows = Vec::with_capacity(self.rows.len());
        let mut origin = Vec::with_capacity(self.rows.len());
        let mut order = Vec::new();
        for row in &self.rows {
            sort_options(&row.options, &mut order);
            let mut items = Vec::new();
            let mut from = Vec::new();
            for &k in &order {
                let it = row.options[k];
                if items
                    .last()
                    .is_some_and(|last: &Item| last.weight == it.weight)
                {
                    continue; // the first of a weight group is its best
                }
                items.push(it);
                from.push(k);
            }
            rows.push(Row { options: items });
            origin.push(from);
        }
        Merged {
            problem: Problem { rows },
            origin,
        }
    }
}

impl Merged {
    /// Maps a choice of merged option indices back to original indices.
    pub fn to_original(&self, choice: &[usize]) -> Vec<usize> {
        choice
            .iter()
            .zip(&self.origin)
            .map(|(&k, from)| from[k])
            .collect()
    }
}

/// Indices of `options` by weight ascending, then value descending, then index.
fn sort_options(options: &[Item], order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..options.len());
    order.sort_by(|&a, &b| {
        let (x, y) = (options[a], options[b]);
        x.weight
            .cmp(&y.weight)
            .then(y.value.total_cmp(&x.value))
            .then(a.cmp(&b))
    });
}

/// The solvers' view: per row only the Pareto-optimal options (strictly heavier ⇒ strictly
/// better), sorted by weight, with weights relative to the row's lightest option. Dominated
/// options never help either solver; relative weights make every row start at 0.
pub(crate) struct Flat {
    /// Row `r` is `start[r]..start[r + 1]`.
    start: Vec<usize>,
    /// Weight minus the row's lightest weight (0 for the first option of each row).
    weight: Vec<u64>,
    value: Vec<f64>,
    /// Original option index.
    origin: Vec<usize>,
    /// Σ lightest weight over rows.
    pub(crate) base: u128,
    /// Σ relative weight of each row's best (heaviest Pareto) option.
    pub(crate) span: u128,
}

impl Flat {
    pub(crate) fn new(p: &Problem) -> Result<Self, KnapsackError> {
        let mut f = Flat {
            start: Vec::with_capacity(p.rows.len() + 1),
            weight: Vec::new(),
            value: Vec::new(),
            origin: Vec::new(),
            base: 0,
            span: 0,
        };
        f.start.push(0);
        let mut order = Vec::new();
        for (r, row) in p.rows.iter().enumerate() {
            if row.options.is_empty() {
                return Err(KnapsackError::EmptyRow { row: r });
            }
            if let Some((option, it)) = row
                .options
                .iter()
                .enumerate()
                .find(|(_, it)| !it.value.is_finite())
            {
                return Err(KnapsackError::NotFinite {
                    row: r,
                    option,
                    value: it.value,
                });
            }
            sort_options(&row.options, &mut order);
            let lightest = row.options[order[0]].weight;
            let mut best = f64::NEG_INFINITY;
            for &k in &order {
                let it = row.options[k];
                if it.value > best {
                    best = it.value;
                    f.weight.push(it.weight - lightest);
                    f.value.push(it.value);
                    f.origin.push(k);
                }
            }
            f.base += u128::from(lightest);
            f.span += u128::from(*f.weight.last().expect("a row keeps its first option"));
            f.start.push(f.weight.len());
        }
        Ok(f)
    }

    pub(crate) fn rows(&self) -> usize {
        self.start.len() - 1
    }

    /// Relative weights and values of row `r`'s Pareto options.
    pub(crate) fn row(&self, r: usize) -> (&[u64], &[f64]) {
        let s = self.start[r]..self.start[r + 1];
        (&self.weight[s.clone()], &self.value[s])
    }

    /// Capacity left for relative weights, or why there is none.
    pub(crate) fn capacity(&self, budget: u64) -> Result<u64, KnapsackError> {
        if self.base > u128::from(budget) {
            return Err(KnapsackError::Infeasible {
                min_weight: self.base,
                budget,
            });
        }
        Ok(budget - self.base as u64)
    }

    /// The solution for Pareto positions `pick` (one per row), measured on the original
    /// problem so reported numbers are exactly the caller's.
    pub(crate) fn solution(&self, p: &Problem, pick: &[usize]) -> Solution {
        let choice: Vec<usize> = pick
            .iter()
            .enumerate()
            .map(|(r, &k)| self.origin[self.start[r] + k])
            .collect();
        let mut weight = 0u128;
        let mut value = 0.0;
        for (row, &k) in p.rows.iter().zip(&choice) {
            weight += u128::from(row.options[k].weight);
            value += row.options[k].value;
        }
        Solution {
            choice,
            weight: u64::try_from(weight).expect("solutions stay within a u64 budget"),
            value,
        }
    }
}
