//! Pretrained starting points: which tensor of a state dict saved by another framework
//! (torchvision, mmcls, mmseg naming) fills which variable of a zoo model. Pure name and
//! shape logic, so it is tested without libtorch; `ksnn_compiler::torch::pretrained` reads
//! the safetensors file and copies the values. The per-family name tables are in [`names`];
//! this module matches a file against them and reports every mismatch at once, because a
//! checkpoint that fills a model only partly trains from a silently random layer.

mod names;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use thiserror::Error;

use super::{Graph, variables};
use names::Translator;

/// How the tensors of a pretrained file are named (`ksnn train --map`, `[model] map`; the
/// value names are [`Naming::as_str`]'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Naming {
    /// ksnn's own variable names (`layer1_0_conv1.weight`, `conv1_bn.running_var`): the
    /// identity, for files `ksnn train` wrote.
    Ksnn,
    /// torchvision's `resnet*` and `mobilenet_v2` (`layer1.0.bn1.weight`, `features.3.conv.1.0.weight`).
    Torchvision,
    /// mmcls (mmpretrain 0.x) classifiers: `backbone.` + the backbone, `head.fc` the classifier.
    Mmcls,
    /// mmseg segmentors: `backbone.`, `decode_head.`; `auxiliary_head.` is training-only.
    Mmseg,
}

impl Naming {
    /// Every naming, in `--map`'s order.
    pub const ALL: [Naming; 4] = [
        Naming::Ksnn,
        Naming::Torchvision,
        Naming::Mmcls,
        Naming::Mmseg,
    ];

    /// The `--map` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Naming::Ksnn => "ksnn",
            Naming::Torchvision => "torchvision",
            Naming::Mmcls => "mmcls",
            Naming::Mmseg => "mmseg",
        }
    }

    /// The zoo models this naming has names for (all of them for ksnn's own).
    pub fn models(self) -> &'static [&'static str] {
        match self {
            Naming::Ksnn => super::zoo::MODELS,
            Naming::Torchvision | Naming::Mmcls => &[
                "resnet18-cifar",
                "resnet50",
                "resnet50-avgpool",
                "mobilenetv2",
            ],
            Naming::Mmseg => &[
                "deeplabv3-resnet50",
                "deeplabv3-resnet50-avgpool",
                "deeplabv3-mobilenetv2",
            ],
        }
    }

    /// Tensors a checkpoint of this naming carries only for training and that are skipped
    /// on purpose: batch norms' `num_batches_tracked` (momentum-free BN counts; ksnn's batch
    /// norms have none) and mmseg's auxiliary FCN head (a training loss only).
    pub fn training_only(self, name: &str) -> bool {
        name.ends_with(".num_batches_tracked")
            || (self == Naming::Mmseg && name.starts_with("auxiliary_head."))
    }

    /// The naming a set of tensor names most likely uses, for the hint when nothing matched.
    pub fn guess<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Option<Naming> {
        let any = |f: &dyn Fn(&str) -> bool| names.clone().into_iter().any(f);
        if any(&|n| n.starts_with("decode_head.") || n.starts_with("auxiliary_head.")) {
            Some(Naming::Mmseg)
        } else if any(&|n| n.starts_with("backbone.") || n.starts_with("head.")) {
            Some(Naming::Mmcls)
        } else if any(&|n| n.starts_with("features.") || n.starts_with("layer1.0.")) {
            Some(Naming::Torchvision)
        } else if any(&|n| n.contains("_bn.") || n.starts_with("layer1_0_")) {
            Some(Naming::Ksnn)
        } else {
            None
        }
    }
}

impl fmt::Display for Naming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model variable and the file tensor that fills it under a naming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The variable, as the executor names it (`layer1_0_conv1.weight`).
    pub model: String,
    /// The tensor's name in a file of the naming (`layer1.0.conv1.weight`).
    pub file: String,
    /// The variable's dimensions, which the file's tensor must have.
    pub dims: Vec<u32>,
}

/// What loading a file does: which file tensor goes to which variable, which it skips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Every variable of the model with its file tensor (all of them: a plan is complete).
    pub names: Vec<Name>,
    /// File tensors left out on purpose ([`Naming::training_only`]), by name.
    pub skipped: Vec<String>,
}

/// A file tensor whose dimensions differ from its variable's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misshaped {
    /// The variable and its (expected) dimensions.
    pub name: Name,
    /// The file tensor's dimensions.
    pub got: Vec<u32>,
}

/// Everything that keeps a file from filling a model, listed in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The model's name.
    pub model: String,
    /// The `--map` used.
    pub naming: Naming,
    /// Variables with no tensor in the file (the file name they were looked up under).
    pub missing: Vec<Name>,
    /// File tensors that map to no variable and are not training-only: `(name, dims)`.
    pub extra: Vec<(String, Vec<u32>)>,
    /// File tensors of the wrong shape.
    pub misshaped: Vec<Misshaped>,
    /// When no name matched at all: the naming the file's names look like, if another.
    pub looks_like: Option<Naming>,
    /// Whether any file tensor matched a variable by name.
    pub any_matched: bool,
}

/// Why a pretrained file cannot initialise a model.
#[derive(Debug, Error)]
pub enum PretrainedError {
    /// The naming has no table for this model.
    #[error(
        "--map {naming} has no names for model `{model}`; it maps {}; use --map ksnn for files in ksnn's own names",
        naming.models().join(", ")
    )]
    Unsupported {
        /// The graph's name.
        model: String,
        /// The `--map` asked for.
        naming: Naming,
    },
    /// The model is one the naming knows, but some of its nodes are not in the table (a
    /// graph that only shares the zoo model's name).
    #[error("--map {naming} has no names for node(s) {} of `{model}`", nodes.join(", "))]
    Nodes {
        /// The graph's name.
        model: String,
        /// The `--map` asked for.
        naming: Naming,
        /// Nodes with parameters the table does not name.
        nodes: Vec<String>,
    },
    /// Missing, extra or mis-shaped tensors (all of them).
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
}

/// Every variable of `graph` with its name in a file of `naming`, in node order.
pub fn names(graph: &Graph, naming: Naming) -> Result<Vec<Name>, PretrainedError> {
    let t = Translator::new(graph, naming).ok_or_else(|| PretrainedError::Unsupported {
        model: graph.name.clone(),
        naming,
    })?;
    let mut out = Vec::new();
    let mut unnamed = BTreeSet::new();
    for (model, dims) in variables(graph) {
        let (node, what) = model.rsplit_once('.').unwrap_or((model.as_str(), ""));
        match t.module(node) {
            Some(m) => out.push(Name {
                file: format!("{m}.{what}"),
                model,
                dims,
            }),
            None => {
                unnamed.insert(node.to_string());
            }
        }
    }
    if !unnamed.is_empty() {
        return Err(PretrainedError::Nodes {
            model: graph.name.clone(),
            naming,
            nodes: unnamed.into_iter().collect(),
        });
    }
    Ok(out)
}

/// Matches a file's tensors, `(name, dims)` in any order, against `graph`'s variables under
/// `naming`: a complete plan, or every missing, extra and mis-shaped tensor.
pub fn plan(
    graph: &Graph,
    naming: Naming,
    file: &[(String, Vec<u32>)],
) -> Result<Plan, PretrainedError> {
    let names = names(graph, naming)?;
    let by_file: BTreeMap<&str, &Name> = names.iter().map(|n| (n.file.as_str(), n)).collect();
    let in_file: BTreeMap<&str, &Vec<u32>> = file.iter().map(|(n, d)| (n.as_str(), d)).collect();
    let mut m = Mismatch {
        model: graph.name.clone(),
        naming,
        missing: Vec::new(),
        extra: Vec::new(),
        misshaped: Vec::new(),
        looks_like: None,
        any_matched: false,
    };
    // Reports in a stable order whatever the file's: the model's variables in node order,
    // the file's leftovers by name.
    let mut skipped = Vec::new();
    for (&name, &dims) in &in_file {
        if by_file.contains_key(name) {
            m.any_matched = true;
        } else if naming.training_only(name) {
            skipped.push(name.to_string());
        } else {
            m.extra.push((name.to_string(), dims.clone()));
        }
    }
    for n in &names {
        match in_file.get(n.file.as_str()) {
            None => m.missing.push(n.clone()),
            Some(&dims) if *dims != n.dims => m.misshaped.push(Misshaped {
                name: n.clone(),
                got: dims.clone(),
            }),
            Some(_) => {}
        }
    }
    if m.missing.is_empty() && m.extra.is_empty() && m.misshaped.is_empty() {
        return Ok(Plan { names, skipped });
    }
    if !m.any_matched {
        m.looks_like = Naming::guess(file.iter().map(|(n, _)| n.as_str())).filter(|&g| g != naming);
    }
    Err(PretrainedError::Mismatch(Box::new(m)))
}

impl fmt::Display for Mismatch {
    /// A summary line, then one line per tensor, so a long list stays readable and greppable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the tensors do not fit `{}` under --map {}: {} missing, {} extra, {} mis-shaped",
            self.model,
            self.naming,
            self.missing.len(),
            self.extra.len(),
            self.misshaped.len()
        )?;
        if !self.any_matched {
            write!(f, "; no tensor name matched")?;
            if let Some(g) = self.looks_like {
                write!(f, ": the file's names look like {g}'s (--map {g})")?;
            }
        }
        for n in &self.missing {
            write!(
                f,
                "\n  missing: `{}` {:?} (for the model's `{}`)",
                n.file, n.dims, n.model
            )?;
        }
        for (name, dims) in &self.extra {
            write!(
                f,
                "\n  extra: `{name}` {dims:?} maps to nothing in the model"
            )?;
        }
        for s in &self.misshaped {
            write!(
                f,
                "\n  mis-shaped: `{}` is {:?} in the file, the model's `{}` is {:?}",
                s.name.file, s.got, s.name.model, s.name.dims
            )?;
        }
        Ok(())
    }
}
