//! Distortion work on disk, so that any scheduler (a Slurm array, a Kubernetes job, a shell
//! loop over GPUs) can run shards anywhere and a stopped run resumes: `meta.json` says what
//! is measured, each finished item is one file under `rows/` written atomically, finished
//! items are skipped, and [`Store::merge`] assembles `distortion.json`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::LayerOptions;

/// Channels per work item: small enough to resume with little loss, large enough to batch.
pub const CHANNELS_PER_ITEM: u32 = 8;

/// A slice of one layer's channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Index of the layer in the store's [`Meta::layers`].
    pub layer: usize,
    /// The channels measured, at most [`CHANNELS_PER_ITEM`] of them.
    pub channels: Range<u32>,
}

/// Every item, in layer then channel order.
pub fn items(layers: &[LayerOptions]) -> Vec<Item> {
    layers
        .iter()
        .enumerate()
        .flat_map(|(l, lo)| {
            (0..lo.channels)
                .step_by(CHANNELS_PER_ITEM as usize)
                .map(move |c| Item {
                    layer: l,
                    channels: c..(c + CHANNELS_PER_ITEM).min(lo.channels),
                })
        })
        .collect()
}

/// Shard `index` of `count` (`--shard i/n`, 0-based): every item whose position ≡ i mod n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard's number i, `0 ≤ i < count`.
    pub index: usize,
    /// The number of shards n (1 = everything).
    pub count: usize,
}

impl Shard {
    /// Every item: the unsharded run.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` (`--shard 0/4`); needs `0 ≤ i < n`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 0/4")?;
        let (index, count) = (
            i.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{i}` is not a number"))?,
            n.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{n}` is not a number"))?,
        );
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 ≤ i < n"));
        }
        Ok(Self { index, count })
    }

    /// Whether the item at `position` (in [`items`] order) belongs to this shard.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

/// What a distortion directory measures; a second run must agree with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The graph's name.
    pub model: String,
    /// Hash of the graph and its parameters.
    pub fingerprint: String,
    /// Training images in the sample.
    pub images: usize,
    /// Every ReLU layer with its candidate blocks, in graph order.
    pub layers: Vec<LayerOptions>,
}

/// One layer's measurements: `noise[channel][option]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerDistortion {
    /// The layer and its candidates (flattened into the same JSON object).
    #[serde(flatten)]
    pub layer: LayerOptions,
    /// Mean squared output error per channel, per candidate in `layer.options` order.
    pub noise: Vec<Vec<f64>>,
}

/// The merged result (`distortion.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distortion {
    /// The graph's name.
    pub model: String,
    /// Hash of the graph and its parameters, as in [`Meta`].
    pub fingerprint: String,
    /// Training images the noise is averaged over.
    pub images: usize,
    /// Every ReLU layer's measurements, in graph order.
    pub layers: Vec<LayerDistortion>,
}

/// Why a distortion directory or file cannot be used; each names the path.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Reading, writing or renaming a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// A file is not the JSON it should be.
    #[error("{path}: {error}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        error: serde_json::Error,
    },
    #[error(
        "{dir} holds distortion of another model, parameters, sample or candidate list; use another --out or delete it"
    )]
    /// The directory's `meta.json` differs from this run's (another model, checkpoint, sample
    /// size or candidate list).
    Mismatch {
        /// The distortion directory (`--out`).
        dir: PathBuf,
    },
    #[error(
        "{missing} of {total} work items are not measured yet (first: layer `{first}`); run the remaining shards"
    )]
    /// `merge` found work items without results.
    Incomplete {
        /// Items not measured yet.
        missing: usize,
        /// All items.
        total: usize,
        /// The layer of the first missing item.
        first: String,
    },
    /// A result file has the wrong number of rows or options.
    #[error("{path}: holds {got} values, expected {expected}")]
    Size {
        /// The result file.
        path: PathBuf,
        /// Values (channels × options) it should hold.
        expected: usize,
        /// Values it holds.
        got: usize,
    },
}

/// A distortion directory.
pub struct Store {
    dir: PathBuf,
    meta: Meta,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.into(),
        error,
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StoreError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|error| StoreError::Json {
        path: path.into(),
        error,
    })
}

/// Writes via a temporary file and a rename, so a killed run never leaves half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_string(value).expect("serialisable");
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Store {
    /// Opens `dir`, creating it with `meta`, or checking that it measures the same thing.
    pub fn open(dir: &Path, meta: Meta) -> Result<Self, StoreError> {
        let rows = dir.join("rows");
        std::fs::create_dir_all(&rows).map_err(io(&rows))?;
        let path = dir.join("meta.json");
        if path.exists() {
            let existing: Meta = read_json(&path)?;
            if existing != meta {
                return Err(StoreError::Mismatch { dir: dir.into() });
            }
        } else {
            write_json(&path, &meta)?;
        }
        Ok(Self {
            dir: dir.into(),
            meta,
        })
    }

    /// What this directory measures.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    fn path(&self, item: &Item) -> PathBuf {
        let name = &self.meta.layers[item.layer].name;
        self.dir.join("rows").join(format!(
            "{name}.{}-{}.json",
            item.channels.start, item.channels.end
        ))
    }

    /// Whether `item` has its result file (finished items are skipped on resume).
    pub fn done(&self, item: &Item) -> bool {
        self.path(item).is_file()
    }

    /// Writes `item`'s noise (`[channel][option]`) atomically, marking it done.
    pub fn save(&self, item: &Item, noise: &[Vec<f64>]) -> Result<(), StoreError> {
        write_json(&self.path(item), &noise)
    }

    /// Assembles every item into `distortion.json` (and returns it).
    pub fn merge(&self) -> Result<Distortion, StoreError> {
        let all = items(&self.meta.layers);
        let missing: Vec<&Item> = all.iter().filter(|i| !self.done(i)).collect();
        if let Some(first) = missing.first() {
            return Err(StoreError::Incomplete {
                missing: missing.len(),
                total: all.len(),
                first: self.meta.layers[first.layer].name.clone(),
            });
        }
        let mut layers: Vec<LayerDistortion> = self
            .meta
            .layers
            .iter()
            .map(|l| LayerDistortion {
                layer: l.clone(),
                noise: Vec::with_capacity(l.channels as usize),
            })
            .collect();
        for item in &all {
            let path = self.path(item);
            let rows: Vec<Vec<f64>> = read_json(&path)?;
            let want = self.meta.layers[item.layer].options.len();
            if rows.len() != item.channels.len() || rows.iter().any(|r| r.len() != want) {
                return Err(StoreError::Size {
                    path,
                    expected: item.channels.len() * want,
                    got: rows.iter().map(Vec::len).sum(),
                });
            }
            layers[item.layer].noise.extend(rows);
        }
        let d = Distortion {
            model: self.meta.model.clone(),
            fingerprint: self.meta.fingerprint.clone(),
            images: self.meta.images,
            layers,
        };
        write_json(&self.dir.join("distortion.json"), &d)?;
        Ok(d)
    }
}

impl Distortion {
    /// Reads a `distortion.json`.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        read_json(path)
    }
}
