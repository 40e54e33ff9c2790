//! ONNX import into a graph file, with the optional rewrites that make a model cheaper to
//! run securely.

use std::path::PathBuf;

use anyhow::Result;
use ksnn_graph::ir::{Graph, rewrite};
use ksnn_graph::onnx::ImportOptions;

/// What `ksnn import` (and the pipeline's ONNX import) does: which file, where to, which rewrites.
#[derive(Clone, Debug)]
pub struct ImportConfig {
    /// The .onnx file (its external data files are read from the same folder).
    pub onnx: PathBuf,
    /// Where to write the graph.
    pub out: PathBuf,
    /// Input shape, normalisation and softmax handling passed to the ONNX importer.
    pub options: ImportOptions,
    /// Replace ReLU6 by ReLU positions the knapsack can budget.
    pub relu6_to_relu: bool,
    /// Replace max pooling by average pooling (local in the secure protocol).
    pub maxpool_to_avgpool: bool,
}

/// Imports the ONNX file, applies the chosen rewrites and writes the graph file, printing a
/// summary.
pub fn run(c: &ImportConfig) -> Result<()> {
    let mut file = ksnn_graph::onnx::import(&c.onnx, &c.options)?;
    if c.relu6_to_relu {
        let n = rewrite::relu6_to_relu(&mut file.graph);
        println!("replaced {n} ReLU6 by ReLU");
    }
    if c.maxpool_to_avgpool {
        let n = rewrite::maxpool_to_avgpool(&mut file.graph);
        println!("replaced {n} max pools by average pools");
    }
    if let Some(dir) = c.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    file.save(&c.out)?;
    println!("{}", summary(&file.graph)?);
    println!("from {}; written to {}", file.source, c.out.display());
    Ok(())
}

/// One line: nodes, parameters, ReLU layers, output shapes.
pub fn summary(g: &Graph) -> Result<String> {
    let shapes = g.shapes()?;
    let outs: Vec<String> = g
        .outputs
        .iter()
        .map(|&o| shapes[o as usize].to_string())
        .collect();
    let others = match g.other_activation_layers().len() {
        0 => String::new(),
        n => format!(" and {n} other activation layers (leaky ReLU, PReLU, hard sigmoid/swish)"),
    };
    Ok(format!(
        "{}: input {}, {} nodes, {} parameters, {} ReLU layers{others}, output {}",
        g.name,
        g.input,
        g.nodes.len(),
        g.parameters(),
        g.relu_layers().len(),
        outs.join(", ")
    ))
}
