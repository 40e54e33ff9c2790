//! The block spec a benchmark runs with: every budgeted activation (ReLU, leaky ReLU, PReLU,
//! hard sigmoid, hard swish) per element, one block size everywhere, a file, or the knapsack's
//! choice over synthetic distortions at a DReLU budget.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use ksnn_formats::{Block, BlockSpec, Shape};
use ksnn_graph::ir::{Graph, IrOp};
use ksnn_knapsack::lagrangian;

use crate::synthetic::{self, ReluShape};

/// A spec and the DReLUs per inference its budgeted layers cost, by `Block::drelus` on the
/// graph's real shapes times each layer's decisions per block (`None` for a file: the lowered
/// program counts it).
pub struct Chosen {
    /// Layer → blocks; layers it omits stay per element.
    pub spec: BlockSpec,
    /// What the spec's budgeted layers cost.
    pub drelus: Option<u64>,
}

/// A budgeted layer: a ReLU, or leaky ReLU, PReLU, hard sigmoid or hard swish.
pub struct Budgeted {
    /// The node's name, which keys the spec.
    pub name: String,
    /// The map the activation sees.
    pub shape: Shape,
    /// Sign decisions per block (two for the hard kinds).
    pub decisions: u64,
}

/// The budgeted layers, in order.
pub fn budgeted_layers(graph: &Graph) -> Result<Vec<Budgeted>> {
    let shapes = graph.shapes().context("the graph's shapes")?;
    Ok(graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let decisions = match n.op {
                IrOp::Relu => 1,
                IrOp::Activation(a) => a.decisions(),
                _ => return None,
            };
            Some(Budgeted {
                name: n.name.clone(),
                shape: shapes[i + 1],
                decisions,
            })
        })
        .collect())
}

/// DReLUs of every budgeted layer kept per element (`[1,1]` everywhere): what `--budget` is
/// a share of.
pub fn all_relus(graph: &Graph) -> Result<u64> {
    Ok(budgeted_layers(graph)?
        .iter()
        .map(|l| l.decisions * u64::from(l.shape.c) * Block::RELU.drelus(l.shape.h, l.shape.w))
        .sum())
}

/// Every channel of every budgeted layer gets `h×w` blocks, clipped to maps smaller than
/// that (a block may not exceed its map; a clipped block is one decision per channel either
/// way).
pub fn uniform(graph: &Graph, h: u16, w: u16) -> Result<Chosen> {
    ensure!(
        h > 0 && w > 0,
        "--uniform {h}x{w}: both sides must be at least 1"
    );
    let mut spec = BlockSpec::default();
    let mut drelus = 0;
    for l in budgeted_layers(graph)? {
        let s = l.shape;
        let b = Block(h.min(s.h as u16), w.min(s.w as u16));
        drelus += l.decisions * u64::from(s.c) * b.drelus(s.h, s.w);
        spec.layers.insert(l.name, vec![b; s.c as usize]);
    }
    Ok(Chosen {
        spec,
        drelus: Some(drelus),
    })
}

/// The knapsack (Lagrangian solver) over `bench knapsack`'s synthetic distortions on this
/// graph's budgeted shapes, at a budget of `ratio` × all their per-element DReLUs.
pub fn budget(graph: &Graph, ratio: f64, seed: u64) -> Result<Chosen> {
    ensure!(
        ratio > 0.0 && ratio <= 1.0,
        "--budget {ratio}: give the share of all ReLUs' DReLUs to keep, in (0, 1]"
    );
    let layers = budgeted_layers(graph)?;
    let shapes: Vec<ReluShape> = layers
        .iter()
        .map(|l| ReluShape {
            channels: l.shape.c.into(),
            decisions: l.decisions,
            h: l.shape.h,
            w: l.shape.w,
        })
        .collect();
    let cap = (ratio * all_relus(graph)? as f64).round() as u64;
    let inst = synthetic::instance(&shapes, seed);
    let solved = lagrangian(&inst.problem, cap).context("the knapsack")?;
    let mut choice = solved.solution.choice.iter();
    let mut spec = BlockSpec::default();
    for (l, options) in layers.iter().zip(&inst.blocks) {
        let blocks = choice
            .by_ref()
            .take(l.shape.c as usize)
            .map(|&k| options[k])
            .collect();
        spec.layers.insert(l.name.clone(), blocks);
    }
    Ok(Chosen {
        spec,
        drelus: Some(solved.solution.weight),
    })
}

/// A spec file in any form `ksnn_graph::spec::read` knows (JSON, binary, the original's pickle).
pub fn file(path: &Path) -> Result<Chosen> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = ksnn_graph::spec::read(&bytes).with_context(|| format!("{}", path.display()))?;
    Ok(Chosen { spec, drelus: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_model::params;
    use ksnn_formats::Program;
    use ksnn_formats::layer::Op;
    use ksnn_graph::ir::zoo;
    use ksnn_graph::lower::{LowerOptions, lower};

    /// Lowers mnist-cnn with random parameters and `spec`: the program's own cost model counts.
    fn lowered(spec: &BlockSpec) -> Program {
        let g = zoo::mnist_cnn();
        lower(&g, &params::random(&g, 3), spec, &LowerOptions::default())
            .expect("lowers")
            .program
    }

    #[test]
    fn no_spec_costs_all_relus() {
        let g = zoo::mnist_cnn();
        let all = all_relus(&g).unwrap();
        assert_eq!(lowered(&BlockSpec::default()).spec_drelus().unwrap(), all);
        assert_eq!(budgeted_layers(&g).unwrap().len(), 5);
    }

    #[test]
    fn uniform_specs_cost_what_they_claim() {
        let g = zoo::mnist_cnn();
        let all = all_relus(&g).unwrap();
        for (h, w) in [(1, 1), (2, 2), (2, 3), (64, 64)] {
            let c = uniform(&g, h, w).unwrap();
            let p = lowered(&c.spec);
            assert_eq!(Some(p.spec_drelus().unwrap()), c.drelus, "{h}x{w}");
            for l in &p.layers {
                if let Op::BlockRelu(b) = &l.op
                    && h <= 7
                {
                    assert!(b.blocks.iter().all(|&x| x == Block(h, w)), "{}", l.name);
                }
            }
            let d = c.drelus.unwrap();
            match (h, w) {
                (1, 1) => assert_eq!(d, all),
                // Larger than every map: one DReLU per channel.
                (64, 64) => assert_eq!(d, 16 + 32 + 32 + 32 + 64),
                _ => assert!(d * 3 < all, "{h}x{w}: {d} of {all}"),
            }
        }
        assert!(uniform(&g, 0, 2).is_err());
    }

    #[test]
    fn budget_specs_cost_what_they_claim_within_the_budget() {
        let g = zoo::mnist_cnn();
        let all = all_relus(&g).unwrap();
        for ratio in [0.06, 0.3] {
            let c = budget(&g, ratio, 7).unwrap();
            let p = lowered(&c.spec);
            let d = p.spec_drelus().unwrap();
            assert_eq!(Some(d), c.drelus);
            let cap = (ratio * all as f64).round() as u64;
            assert!(
                d <= cap && d as f64 >= 0.9 * cap as f64,
                "{d} for a budget of {cap}"
            );
        }
        assert!(budget(&g, 0.0, 1).is_err() && budget(&g, 1.5, 1).is_err());
    }

    /// torchvision's MobileNetV3-small: ReLU, hard swish and hard sigmoid layers budgeted
    /// together, the hard ones at two decisions per block.
    #[test]
    fn specs_budget_the_other_activations_too() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../graph/tests/fixtures/onnx/mobilenetv3_small.onnx");
        let file = ksnn_graph::onnx::import(&path, &Default::default()).unwrap();
        let g = &file.graph;
        let layers = budgeted_layers(g).unwrap();
        let hard = layers.iter().filter(|l| l.decisions == 2).count();
        assert!(
            hard >= 20 && layers.len() > hard,
            "{} of {}",
            hard,
            layers.len()
        );
        let lowered = |spec: &BlockSpec| {
            lower(g, &file.params, spec, &LowerOptions::default())
                .unwrap()
                .program
                .spec_drelus()
                .unwrap()
        };
        let all = all_relus(g).unwrap();
        assert_eq!(lowered(&BlockSpec::default()), all);
        let c = uniform(g, 2, 2).unwrap();
        assert_eq!(Some(lowered(&c.spec)), c.drelus);
        let c = budget(g, 0.06, 3).unwrap();
        let d = lowered(&c.spec);
        let cap = (0.06 * all as f64).round() as u64;
        assert_eq!(Some(d), c.drelus);
        assert!(d <= cap && d as f64 >= 0.9 * cap as f64, "{d} of {cap}");
    }
}
