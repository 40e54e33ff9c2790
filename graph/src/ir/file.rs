//! `model.ksnn-graph`: a graph with its parameters, in the ksnn envelope (magic, version,
//! SHA-256), so `ksnn import` output can be trained, inspected and compiled later.

use std::path::Path;

use ksnn_formats::FormatError;
use ksnn_formats::envelope::{self, Magic};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Graph, IrError, Params};

/// A graph file's contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphFile {
    /// The model, checked for consistent shapes on load.
    pub graph: Graph,
    /// Initial parameter values; empty for a graph to train from scratch.
    pub params: Params,
    /// Where the graph came from (ONNX path and opset, or the zoo), for people.
    pub source: String,
}

/// A graph file that cannot be read.
#[derive(Debug, Error)]
pub enum GraphFileError {
    /// Reading or writing the file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The envelope or its body is damaged or not a graph file.
    #[error("{path}: {error}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with the envelope or body.
        error: FormatError,
    },
    /// The file decodes but its graph does not hold together.
    #[error("{path}: {error}")]
    Graph {
        /// The file.
        path: String,
        /// What does not hold together.
        error: IrError,
    },
}

impl GraphFile {
    /// The `KSNNGRF` envelope with the postcard body, as written to `model.ksnn-graph`.
    pub fn encode(&self) -> Vec<u8> {
        envelope::seal(Magic::Graph, self)
    }

    /// Decodes and checks that the graph holds together.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        envelope::open(Magic::Graph, bytes)
    }

    /// Reads, decodes and shape-checks a graph file; errors name the path.
    pub fn load(path: &Path) -> Result<Self, GraphFileError> {
        let p = || path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| GraphFileError::Io { path: p(), error })?;
        let file =
            Self::decode(&bytes).map_err(|error| GraphFileError::Format { path: p(), error })?;
        file.graph
            .shapes()
            .map_err(|error| GraphFileError::Graph { path: p(), error })?;
        Ok(file)
    }

    /// Writes the encoded file to `path` (the parent folder must exist).
    pub fn save(&self, path: &Path) -> Result<(), GraphFileError> {
        std::fs::write(path, self.encode()).map_err(|error| GraphFileError::Io {
            path: path.display().to_string(),
            error,
        })
    }
}
