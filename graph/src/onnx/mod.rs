//! ONNX import (opsets 9–21) into the graph IR. One importer per op family in [`ops`];
//! weights come from initializers, `Constant` nodes and external data files. Everything the
//! IR cannot express exactly is refused with `unsupported op X (opset N) at node Y` — never
//! skipped — and small shape arithmetic on constants (the legacy exporter's
//! `Shape → Gather → Unsqueeze → Concat → Reshape` flatten) is folded at import.

mod attr;
mod ops;
pub mod tensor;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ksnn_formats::Shape;
use onnx_protobuf::tensor_shape_proto::dimension::Value as Dim;
use onnx_protobuf::type_proto::Value as TypeValue;
use onnx_protobuf::{Message, ModelProto, NodeProto};
use thiserror::Error;

use crate::ir::{Graph, GraphFile, IrError, IrOp, Node, Param, Params, rewrite};
use tensor::Const;

/// The opsets of the default domain this importer knows.
pub const OPSETS: std::ops::RangeInclusive<i64> = 9..=21;

/// Why a model cannot be imported.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The ONNX file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The bytes are not an ONNX `ModelProto`.
    #[error("{path}: not an ONNX model: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The protobuf decoder's complaint.
        reason: String,
    },
    /// The default-domain opset is outside [`OPSETS`] (0 when the file declares none).
    #[error("unsupported opset {version} (ksnn imports opsets 9 to 21)")]
    Opset {
        /// The declared default-domain opset.
        version: i64,
    },
    /// The model has no graph to import.
    #[error("the model has no graph")]
    NoGraph,
    /// A node the IR cannot express exactly (op, attribute or input form); refused, never
    /// skipped.
    #[error("unsupported op {op} (opset {opset}) at node {node}{}", detail(.reason))]
    Unsupported {
        /// The op type (with its domain when not the default one).
        op: String,
        /// The model's default-domain opset.
        opset: i64,
        /// The node's name, or `#index (output …)` when it has none.
        node: String,
        /// Why, when more can be said than the op (may be empty).
        reason: String,
    },
    /// A supported node whose attributes or inputs are malformed.
    #[error("node {node} ({op}): {problem}")]
    Node {
        /// The op type.
        op: String,
        /// The node's name, or `#index (output …)` when it has none.
        node: String,
        /// What is wrong.
        problem: String,
    },
    /// An initializer cannot be decoded (data type, size, external data).
    #[error("tensor `{name}`: {problem}")]
    Tensor {
        /// The initializer's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The graph's inputs are not one image input of a shape ksnn takes, or `--mean`/`--std`
    /// do not fit its channels.
    #[error("graph input `{name}`: {problem}")]
    Input {
        /// The graph input's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A graph output is constant, not computed, or there are none.
    #[error("graph output `{name}`: {problem}")]
    Output {
        /// The graph output's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The imported graph's shapes do not hold together.
    #[error(transparent)]
    Graph(#[from] IrError),
}

fn detail(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Choices the file cannot make for us.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `C×H×W` when the file leaves the input's size open.
    pub input_shape: Option<Shape>,
    /// Input normalisation that the graph expects to have been applied (per channel).
    pub mean: Option<Vec<f32>>,
    /// Per-channel (or one) standard deviation of that normalisation; `None` = 1.
    pub std: Option<Vec<f32>>,
    /// Drop a softmax that produces a graph output: it never changes the predicted class,
    /// and secure inference returns logits.
    pub strip_softmax: bool,
}

/// An ONNX value during import: a computed tensor of the IR, or a constant.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// IR tensor id and its ONNX rank (4 for feature maps, 2 after flattening).
    Tensor {
        id: u32,
        rank: usize,
    },
    Const(Const),
}

/// Import state: the IR built so far and what every ONNX name stands for.
pub(crate) struct Importer {
    pub values: HashMap<String, Value>,
    pub graph: Graph,
    pub shapes: Vec<Shape>,
    pub params: Params,
    pub dir: PathBuf,
    /// The batch size the file fixes (1 when open): what `Shape` reports and what reshape
    /// targets are resolved against. The graph itself runs on any batch.
    pub batch: usize,
    /// ONNX names some node or graph output reads (to refuse outputs we would drop).
    pub consumed: HashSet<String>,
    /// The graph's output names.
    pub outputs: HashSet<String>,
    pub strip_softmax: bool,
    names: HashSet<String>,
}

/// The node being imported, for attribute access and precise errors.
pub(crate) struct Cx<'a> {
    pub node: &'a NodeProto,
    pub index: usize,
    pub opset: i64,
}

impl Cx<'_> {
    /// The node as the file names it (its index when it has no name).
    pub fn display(&self) -> String {
        if self.node.name.is_empty() {
            format!(
                "#{} (output `{}`)",
                self.index,
                self.node.output.first().map_or("", String::as_str)
            )
        } else {
            self.node.name.clone()
        }
    }

    pub fn unsupported(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            op: self.op(),
            opset: self.opset,
            node: self.display(),
            reason: reason.into(),
        }
    }

    pub fn invalid(&self, problem: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            op: self.op(),
            node: self.display(),
            problem: problem.into(),
        }
    }

    fn op(&self) -> String {
        match self.node.domain.as_str() {
            "" | "ai.onnx" => self.node.op_type.clone(),
            d => format!("{d}.{}", self.node.op_type),
        }
    }

    pub fn attrs(&self) -> attr::Attrs<'_> {
        attr::Attrs::of(self.node)
    }
}

/// A name usable as a tch variable path and a block-spec key: `[A-Za-z0-9_]`, not empty,
/// not starting with a digit.
fn sanitize(name: &str) -> String {
    let mut s = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch);
        } else if !s.ends_with('_') {
            s.push('_');
        }
    }
    let s = s.trim_matches('_').to_string();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("n{s}")
    } else {
        s
    }
}

impl Importer {
    /// Input `i` of the node; empty names and missing inputs are `None` (optional inputs).
    pub fn input(&self, cx: &Cx, i: usize) -> Result<Option<&Value>, OnnxError> {
        match cx.node.input.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self.values.get(name).map(Some).ok_or_else(|| {
                cx.invalid(format!("input `{name}` is not defined before the node"))
            }),
        }
    }

    /// Every input (variadic ops: `Sum`, `Concat`), all required.
    pub fn all_inputs(&self, cx: &Cx) -> Result<Vec<Value>, OnnxError> {
        (0..cx.node.input.len())
            .map(|i| {
                self.input(cx, i)?
                    .cloned()
                    .ok_or_else(|| cx.invalid(format!("input {i} is missing")))
            })
            .collect()
    }

    /// A computed input, with its rank.
    pub fn tensor(&self, cx: &Cx, i: usize) -> Result<(u32, usize), OnnxError> {
        match self.input(cx, i)? {
            Some(Value::Tensor { id, rank }) => Ok((*id, *rank)),
            Some(Value::Const(_)) => Err(cx.unsupported(format!(
                "input {i} is a constant where a computed tensor is expected"
            ))),
            None => Err(cx.invalid(format!("input {i} is missing"))),
        }
    }

    /// A constant input (`None` when the optional input is absent).
    pub fn constant(&self, cx: &Cx, i: usize) -> Result<Option<&Const>, OnnxError> {
        match self.input(cx, i)? {
            Some(Value::Const(c)) => Ok(Some(c)),
            Some(Value::Tensor { .. }) => Err(cx.unsupported(format!(
                "input {i} (`{}`) is computed; ksnn needs it to be a constant",
                cx.node.input[i]
            ))),
            None => Ok(None),
        }
    }

    pub fn required_constant(&self, cx: &Cx, i: usize) -> Result<&Const, OnnxError> {
        self.constant(cx, i)?
            .ok_or_else(|| cx.invalid(format!("input {i} is missing")))
    }

    pub fn shape(&self, id: u32) -> Shape {
        self.shapes[id as usize]
    }

    /// Appends an IR node (named after the ONNX node plus `suffix`) and returns its tensor.
    pub fn add(
        &mut self,
        cx: &Cx,
        suffix: &str,
        op: IrOp,
        inputs: &[u32],
    ) -> Result<u32, OnnxError> {
        let base = match sanitize(&cx.node.name) {
            s if s.is_empty() => {
                format!("{}_{}", sanitize(&cx.node.op_type).to_lowercase(), cx.index)
            }
            s => s,
        };
        let base = format!("{base}{suffix}");
        let mut name = base.clone();
        let mut k = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        let node = Node {
            name,
            op,
            inputs: inputs.to_vec(),
        };
        Ok(self.graph.push(node, &mut self.shapes)?)
    }

    /// The IR name of the node behind tensor `id` (for parameter names).
    pub fn node_name(&self, id: u32) -> &str {
        &self.graph.nodes[id as usize - 1].name
    }

    pub fn param(&mut self, id: u32, what: &str, dims: Vec<u32>, data: Vec<f32>) {
        let name = format!("{}.{what}", self.node_name(id));
        self.params.insert(name, Param::new(dims, data));
    }

    /// Binds output `i` of the node.
    pub fn set(&mut self, cx: &Cx, i: usize, value: Value) {
        if let Some(name) = cx.node.output.get(i).filter(|n| !n.is_empty()) {
            self.values.insert(name.clone(), value);
        }
    }

    /// Refuses a node whose extra outputs (indices, masks, running statistics) are read.
    pub fn only_first_output(&self, cx: &Cx) -> Result<(), OnnxError> {
        match cx
            .node
            .output
            .iter()
            .skip(1)
            .find(|o| self.consumed.contains(*o))
        {
            Some(o) => Err(cx.unsupported(format!("its output `{o}` is used"))),
            None => Ok(()),
        }
    }
}

/// Reads and imports `path`.
pub fn import(path: &Path, opts: &ImportOptions) -> Result<GraphFile, OnnxError> {
    let bytes = std::fs::read(path).map_err(|error| OnnxError::Io {
        path: path.into(),
        error,
    })?;
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| OnnxError::Decode {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = path
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    import_model(&model, &dir, &name, opts)
}

/// Imports a decoded model; external data files are looked up in `dir`.
pub fn import_model(
    model: &ModelProto,
    dir: &Path,
    name: &str,
    opts: &ImportOptions,
) -> Result<GraphFile, OnnxError> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or(OnnxError::Opset { version: 0 })?;
    if !OPSETS.contains(&opset) {
        return Err(OnnxError::Opset { version: opset });
    }
    let g = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;

    let mut values = HashMap::new();
    for t in &g.initializer {
        let c = tensor::decode(t, dir).map_err(|problem| OnnxError::Tensor {
            name: t.name.clone(),
            problem,
        })?;
        values.insert(t.name.clone(), Value::Const(c));
    }
    let inputs: Vec<_> = g
        .input
        .iter()
        .filter(|i| !values.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(OnnxError::Input {
            name: inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            problem: format!(
                "ksnn models have exactly one image input, this one has {}",
                inputs.len()
            ),
        });
    };
    let (shape, rank, batch) = input_shape(input, opts)?;
    let channels = shape.c as usize;
    let per_channel =
        |v: &Option<Vec<f32>>, default: f32, what: &str| -> Result<Vec<f32>, OnnxError> {
            match v {
                None => Ok(vec![default; channels]),
                Some(v) if v.len() == channels => Ok(v.clone()),
                Some(v) if v.len() == 1 => Ok(vec![v[0]; channels]),
                Some(v) => Err(OnnxError::Input {
                    name: input.name.clone(),
                    problem: format!("{what} has {} values for {channels} channels", v.len()),
                }),
            }
        };
    let graph = Graph {
        // Exporters name every graph alike (`main_graph`, `torch_jit`); the file name says more.
        name: sanitize(name),
        input: shape,
        mean: per_channel(&opts.mean, 0.0, "--mean")?,
        std: per_channel(&opts.std, 1.0, "--std")?,
        nodes: Vec::new(),
        outputs: Vec::new(),
    };
    values.insert(input.name.clone(), Value::Tensor { id: 0, rank });
    let consumed = g
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(g.output.iter().map(|o| &o.name))
        .cloned()
        .collect();
    let mut im = Importer {
        values,
        shapes: vec![graph.input],
        graph,
        params: Params::new(),
        dir: dir.to_path_buf(),
        batch,
        consumed,
        outputs: g.output.iter().map(|o| o.name.clone()).collect(),
        strip_softmax: opts.strip_softmax,
        names: HashSet::new(),
    };
    for (index, node) in g.node.iter().enumerate() {
        let cx = Cx { node, index, opset };
        if !matches!(node.domain.as_str(), "" | "ai.onnx") {
            return Err(cx.unsupported(format!(
                "domain `{}` is not the ONNX default domain",
                node.domain
            )));
        }
        ops::import(&mut im, &cx)?;
    }
    for o in &g.output {
        match im.values.get(&o.name) {
            Some(Value::Tensor { id, .. }) => im.graph.outputs.push(*id),
            Some(Value::Const(_)) => {
                return Err(OnnxError::Output {
                    name: o.name.clone(),
                    problem: "is a constant; it does not depend on the input".into(),
                });
            }
            None => {
                return Err(OnnxError::Output {
                    name: o.name.clone(),
                    problem: "no node computes it".into(),
                });
            }
        }
    }
    if im.graph.outputs.is_empty() {
        return Err(OnnxError::Output {
            name: String::new(),
            problem: "the graph has no outputs".into(),
        });
    }
    rewrite::fold_pad(&mut im.graph);
    im.graph.shapes()?;
    Ok(GraphFile {
        graph: im.graph,
        params: im.params,
        source: format!(
            "ONNX opset {opset}, {} nodes, producer `{} {}`",
            g.node.len(),
            model.producer_name,
            model.producer_version
        ),
    })
}

/// The input's `C×H×W`, its ONNX rank and its batch size (1 when open).
fn input_shape(
    input: &onnx_protobuf::ValueInfoProto,
    opts: &ImportOptions,
) -> Result<(Shape, usize, usize), OnnxError> {
    let err = |problem: String| OnnxError::Input {
        name: input.name.clone(),
        problem,
    };
    let Some(TypeValue::TensorType(t)) = input.type_.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(err("is not a tensor".into()));
    };
    if t.elem_type != 1 {
        return Err(err(format!(
            "has element type {}, ksnn needs float32 (1)",
            t.elem_type
        )));
    }
    let dims: Vec<Option<u32>> = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Dim::DimValue(v)) if v > 0 => u32::try_from(v).ok(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let rank = dims.len();
    let batch = dims.first().copied().flatten().unwrap_or(1) as usize;
    if let Some(s) = opts.input_shape {
        let fits = match rank {
            4 => [s.c, s.h, s.w]
                .iter()
                .zip(&dims[1..])
                .all(|(a, b)| b.is_none_or(|b| b == *a)),
            2 => s.h == 1 && s.w == 1 && dims[1].is_none_or(|f| f == s.c),
            _ => false,
        };
        if !fits {
            return Err(err(format!(
                "dimensions {dims:?} do not admit --input-shape {s}"
            )));
        }
        return Ok((s, rank, batch));
    }
    let open = || {
        err(format!(
            "dimensions {dims:?} are not all fixed; pass --input-shape C,H,W"
        ))
    };
    match rank {
        4 => Ok((
            Shape::new(
                dims[1].ok_or_else(open)?,
                dims[2].ok_or_else(open)?,
                dims[3].ok_or_else(open)?,
            ),
            4,
            batch,
        )),
        2 => Ok((Shape::vector(dims[1].ok_or_else(open)?), 2, batch)),
        r => Err(err(format!(
            "has rank {r}; ksnn takes N×C×H×W images (or N×F vectors)"
        ))),
    }
}
