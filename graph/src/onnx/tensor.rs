//! Constants known at import time — weights from initializers, `Constant` nodes and external
//! data files, and the small integer tensors of shape arithmetic — and the few operations the
//! importer folds on them.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use onnx_protobuf::TensorProto;
use onnx_protobuf::tensor_proto::DataLocation;

/// A dense constant. Integers are held exactly as `f64` (shape values stay far below 2^53).
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    /// Dimensions, outermost first; empty for a scalar.
    pub dims: Vec<usize>,
    /// Row-major values; as many as the product of `dims`.
    pub values: Vec<f64>,
}

/// Tensors larger than this are refused rather than allocated (4 Gi elements).
const MAX_ELEMENTS: usize = 1 << 32;

impl Const {
    /// A constant from its dimensions and row-major values (their counts must agree).
    pub fn new(dims: Vec<usize>, values: Vec<f64>) -> Self {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        Self { dims, values }
    }

    /// A rank-0 constant.
    pub fn scalar(v: f64) -> Self {
        Self::new(Vec::new(), vec![v])
    }

    /// A rank-1 constant.
    pub fn vector(values: Vec<f64>) -> Self {
        Self::new(vec![values.len()], values)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values as `f32` (weights, for the IR's parameters).
    pub fn f32s(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// The values as integers (shapes, axes, pads), refusing fractions.
    pub fn ints(&self) -> Result<Vec<i64>, String> {
        self.values
            .iter()
            .map(|&v| {
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(v as i64)
                } else {
                    Err(format!("expected integers, found {v}"))
                }
            })
            .collect()
    }

    /// Dimensions without leading ones (how a per-channel constant is recognised).
    pub fn squeezed_dims(&self) -> &[usize] {
        let lead = self.dims.iter().take_while(|&&d| d == 1).count();
        &self.dims[lead..]
    }

    fn strides(dims: &[usize]) -> Vec<usize> {
        let mut s = vec![1; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * dims[i + 1];
        }
        s
    }

    /// Element-wise `f(a, b)` with NumPy broadcasting.
    pub fn broadcast(&self, other: &Const, f: impl Fn(f64, f64) -> f64) -> Result<Const, String> {
        let rank = self.dims.len().max(other.dims.len());
        let pad = |d: &[usize]| {
            let mut v = vec![1; rank - d.len()];
            v.extend_from_slice(d);
            v
        };
        let (a, b) = (pad(&self.dims), pad(&other.dims));
        let mut dims = Vec::with_capacity(rank);
        for (&x, &y) in a.iter().zip(&b) {
            dims.push(match (x, y) {
                _ if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(format!(
                        "shapes {:?} and {:?} do not broadcast",
                        self.dims, other.dims
                    ));
                }
            });
        }
        let (sa, sb, so) = (Self::strides(&a), Self::strides(&b), Self::strides(&dims));
        let n: usize = dims.iter().product();
        let values = (0..n)
            .map(|i| {
                let (mut ia, mut ib) = (0, 0);
                for k in 0..rank {
                    let idx = (i / so[k]) % dims[k];
                    if a[k] != 1 {
                        ia += idx * sa[k];
                    }
                    if b[k] != 1 {
                        ib += idx * sb[k];
                    }
                }
                f(self.values[ia], other.values[ib])
            })
            .collect();
        Ok(Const::new(dims, values))
    }

    /// `numpy.take(self, indices, axis)`.
    pub fn gather(&self, indices: &Const, axis: usize) -> Result<Const, String> {
        let d = *self.dims.get(axis).ok_or("axis out of range")?;
        let outer: usize = self.dims[..axis].iter().product();
        let inner: usize = self.dims[axis + 1..].iter().product();
        let idx: Vec<usize> = indices
            .ints()?
            .into_iter()
            .map(|i| {
                let j = if i < 0 { i + d as i64 } else { i };
                usize::try_from(j)
                    .ok()
                    .filter(|&j| j < d)
                    .ok_or(format!("index {i} out of range for a dimension of {d}"))
            })
            .collect::<Result<_, _>>()?;
        let mut values = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &j in &idx {
                let start = (o * d + j) * inner;
                values.extend_from_slice(&self.values[start..start + inner]);
            }
        }
        let mut dims = self.dims[..axis].to_vec();
        dims.extend_from_slice(&indices.dims);
        dims.extend_from_slice(&self.dims[axis + 1..]);
        Ok(Const::new(dims, values))
    }

    /// Concatenation along `axis` (all parts of the same rank).
    pub fn concat(parts: &[&Const], axis: usize) -> Result<Const, String> {
        let first = parts.first().ok_or("nothing to concatenate")?;
        let rank = first.dims.len();
        if axis >= rank.max(1) {
            return Err(format!("axis {axis} out of range for rank {rank}"));
        }
        let outer: usize = first.dims[..axis].iter().product();
        let mut dims = first.dims.clone();
        dims[axis] = 0;
        for p in parts {
            let same =
                p.dims.len() == rank && (0..rank).all(|k| k == axis || p.dims[k] == first.dims[k]);
            if !same {
                return Err(format!(
                    "cannot concatenate {:?} and {:?}",
                    first.dims, p.dims
                ));
            }
            dims[axis] += p.dims[axis];
        }
        let mut values = Vec::new();
        for o in 0..outer {
            for p in parts {
                let chunk = p.values.len() / outer.max(1);
                values.extend_from_slice(&p.values[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(Const::new(dims, values))
    }

    /// Axis permutation.
    pub fn transpose(&self, perm: &[usize]) -> Result<Const, String> {
        let rank = self.dims.len();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(format!("{perm:?} is not a permutation of {rank} axes"));
        }
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let (si, so) = (Self::strides(&self.dims), Self::strides(&dims));
        let values = (0..self.values.len())
            .map(|i| {
                let src: usize = (0..rank)
                    .map(|k| ((i / so[k]) % dims[k]) * si[perm[k]])
                    .sum();
                self.values[src]
            })
            .collect();
        Ok(Const::new(dims, values))
    }
}

/// Decodes one little-endian element.
type ReadElement = fn(&[u8]) -> f64;

/// Size in bytes of one element and its decoder.
fn element(data_type: i32) -> Option<(usize, ReadElement)> {
    Some(match data_type {
        1 => (4, |b| {
            f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))
        }),
        2 => (1, |b| f64::from(b[0])),
        3 => (1, |b| f64::from(b[0] as i8)),
        5 => (2, |b| {
            f64::from(i16::from_le_bytes(b.try_into().expect("2 bytes")))
        }),
        6 => (4, |b| {
            f64::from(i32::from_le_bytes(b.try_into().expect("4 bytes")))
        }),
        7 => (8, |b| {
            i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64
        }),
        9 => (1, |b| f64::from(b[0] != 0)),
        11 => (8, |b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        _ => return None,
    })
}

fn type_name(data_type: i32) -> &'static str {
    match data_type {
        10 => "float16",
        16 => "bfloat16",
        8 => "string",
        4 => "uint16",
        12 => "uint32",
        13 => "uint64",
        14 | 15 => "complex",
        _ => "this",
    }
}

/// Decodes a tensor; `dir` is the model's folder, where external data files live.
pub fn decode(t: &TensorProto, dir: &Path) -> Result<Const, String> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("dimensions {dims:?} are too large"))?;
    let (size, read) = element(t.data_type).ok_or_else(|| {
        format!(
            "{} data type ({}) is not supported",
            type_name(t.data_type),
            t.data_type
        )
    })?;
    let external = t.data_location.enum_value() == Ok(DataLocation::EXTERNAL);
    let bytes = if external {
        Some(external_bytes(t, dir, n * size)?)
    } else if !t.raw_data.is_empty() {
        Some(t.raw_data.clone())
    } else {
        None
    };
    let values: Vec<f64> = match bytes {
        Some(b) => {
            if b.len() != n * size {
                return Err(format!(
                    "holds {} bytes, but {dims:?} needs {}",
                    b.len(),
                    n * size
                ));
            }
            b.chunks_exact(size).map(read).collect()
        }
        None => match t.data_type {
            1 => t.float_data.iter().map(|&v| f64::from(v)).collect(),
            11 => t.double_data.clone(),
            7 => t.int64_data.iter().map(|&v| v as f64).collect(),
            2 | 3 | 5 | 6 | 9 => t.int32_data.iter().map(|&v| f64::from(v)).collect(),
            _ => Vec::new(),
        },
    };
    if values.len() != n {
        return Err(format!(
            "holds {} values, but {dims:?} needs {n}",
            values.len()
        ));
    }
    Ok(Const::new(dims, values))
}

/// Reads an external data region, refusing paths that leave the model's folder.
fn external_bytes(t: &TensorProto, dir: &Path, expected: usize) -> Result<Vec<u8>, String> {
    let key = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let location = key("location").ok_or("external data without a `location`")?;
    let rel = Path::new(location);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location `{location}` must be a relative path inside the model's folder"
        ));
    }
    let number = |k: &str| -> Result<Option<u64>, String> {
        key(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data `{k}` is `{v}`, not a number"))
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?.unwrap_or(expected as u64);
    if length != expected as u64 {
        return Err(format!(
            "external data length {length} bytes, but the tensor needs {expected}"
        ));
    }
    let path = dir.join(rel);
    let mut f = std::fs::File::open(&path)
        .map_err(|e| format!("external data file {}: {e}", path.display()))?;
    let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if offset.checked_add(length).is_none_or(|end| end > file_len) {
        return Err(format!(
            "external data file {} has {file_len} bytes; the tensor needs bytes {offset}..{}",
            path.display(),
            offset.saturating_add(length)
        ));
    }
    let mut buf = vec![0; expected];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| format!("external data file {}: {e}", path.display()))?;
    Ok(buf)
}
