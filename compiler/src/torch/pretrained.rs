//! Reading and writing pretrained state dicts (safetensors) in another framework's names.
//! The name tables and the matching are `ksnn_graph::ir::pretrained` (no libtorch); this
//! module only moves the values, so a file is checked in full before any variable changes.

use std::path::{Path, PathBuf};

use ksnn_graph::ir::Graph;
use ksnn_graph::ir::pretrained::{self, Naming, Plan, PretrainedError};
use tch::{Device, Kind, Tensor, nn};
use thiserror::Error;

/// A pretrained starting point: `--init FILE --map NAMING`.
#[derive(Clone, Debug)]
pub struct Init {
    /// The safetensors file.
    pub path: PathBuf,
    /// How its tensors are named.
    pub naming: Naming,
}

/// A pretrained file that cannot be read, written or fitted to the model.
#[derive(Debug, Error)]
pub enum InitError {
    /// The file is missing or not safetensors (libtorch's message, first line).
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The names or shapes do not fit (every mismatch listed).
    #[error("{path}: {error}")]
    Fit {
        /// The file.
        path: String,
        /// The complete report.
        error: PretrainedError,
    },
    /// The model has no variable the plan names (the var store is not the graph's).
    #[error("the model has no variable `{0}`")]
    Variable(String),
    /// libtorch failed to copy or convert values.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// libtorch errors carry a C++ backtrace after the first line.
fn first_line(e: &tch::TchError) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("cannot read")
        .to_string()
}

/// Checks the file against `graph` under `init.naming` and, only if every variable has a
/// tensor of its shape, copies them into `vs` (converted to its float kind). Returns the
/// plan, whose `skipped` lists the training-only tensors left out.
pub fn load(vs: &nn::VarStore, graph: &Graph, init: &Init) -> Result<Plan, InitError> {
    let path = || init.path.display().to_string();
    if !init.path.is_file() {
        return Err(InitError::Read {
            path: path(),
            message: "no such file".into(),
        });
    }
    let tensors = Tensor::read_safetensors(&init.path).map_err(|e| InitError::Read {
        path: path(),
        message: first_line(&e),
    })?;
    let shapes: Vec<(String, Vec<u32>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.size().iter().map(|&d| d as u32).collect()))
        .collect();
    let plan = pretrained::plan(graph, init.naming, &shapes).map_err(|error| InitError::Fit {
        path: path(),
        error,
    })?;
    let mut vars = vs.variables();
    let by_name: std::collections::HashMap<&str, &Tensor> =
        tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::no_grad(|| {
        for n in &plan.names {
            let var = vars
                .get_mut(&n.model)
                .ok_or_else(|| InitError::Variable(n.model.clone()))?;
            var.f_copy_(by_name[n.file.as_str()])?;
        }
        Ok::<_, InitError>(())
    })?;
    Ok(plan)
}

/// Writes the model's variables under `naming`'s names (float32, on the CPU): the inverse
/// of [`load`], for handing a model to another framework and for round-trip tests.
pub fn save(
    vs: &nn::VarStore,
    graph: &Graph,
    naming: Naming,
    path: &Path,
) -> Result<(), InitError> {
    let fit = |error| InitError::Fit {
        path: path.display().to_string(),
        error,
    };
    let names = pretrained::names(graph, naming).map_err(fit)?;
    let vars = vs.variables();
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let var = vars
            .get(&n.model)
            .ok_or_else(|| InitError::Variable(n.model.clone()))?;
        out.push((
            n.file,
            var.to_device(Device::Cpu).to_kind(Kind::Float).contiguous(),
        ));
    }
    Tensor::write_safetensors(&out, path).map_err(|e| InitError::Read {
        path: path.display().to_string(),
        message: first_line(&e),
    })
}
