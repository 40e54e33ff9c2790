//! NumPy's NPY format, for the inputs and outputs people exchange with the parties:
//! little-endian `float32`, `float64` or `uint8`, C order (uint8 is scaled by 1/255).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{FileKind, FormatError};

fn bad(reason: String) -> FormatError {
    FormatError::Decode {
        file: FileKind::Dataset,
        reason,
    }
}

/// A decoded array: its dimensions and its values as `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct Npy {
    /// Size of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The elements in C (row-major) order as `f32` (`uint8` scaled by 1/255); `len()` is the
    /// product of `dims`.
    pub data: Vec<f32>,
}

/// Writes a `float32` array of shape `dims`.
pub fn encode(dims: &[usize], data: &[f32]) -> Vec<u8> {
    let shape: Vec<String> = dims.iter().map(|d| format!("{d}")).collect();
    let shape = if dims.len() == 1 {
        format!("{},", shape[0])
    } else {
        shape.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads an NPY file.
pub fn decode(bytes: &[u8]) -> Result<Npy, FormatError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an NPY file".into()));
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("NPY version {v} is not supported"))),
    };
    let header = bytes
        .get(start..start.saturating_add(hlen))
        .and_then(|h| core::str::from_utf8(h).ok())
        .ok_or_else(|| bad("NPY header is truncated or not text".into()))?;
    if header.contains("'fortran_order': True") {
        return Err(bad(
            "NPY array is in Fortran order; save it C-contiguous".into()
        ));
    }
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .ok_or_else(|| bad("NPY header has no descr".into()))?;
    let dims = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad("NPY header has no shape".into()))?
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("NPY shape is not a list of integers".into()))?;
    let body = &bytes[start + hlen..];
    let data: Vec<f32> = match descr {
        "<f4" => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "<f8" => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        "|u1" => body.iter().map(|&v| f32::from(v) / 255.0).collect(),
        other => {
            return Err(bad(format!(
                "NPY dtype {other} is not supported (use float32, float64 or uint8)"
            )));
        }
    };
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("NPY shape overflows".into()))?;
    if data.len() != n {
        return Err(bad(format!(
            "NPY holds {} values but its shape says {n}",
            data.len()
        )));
    }
    Ok(Npy { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_and_errors() {
        let bytes = encode(&[2, 2], &[0.5, 1.0, 0.0, 0.25]);
        assert_eq!(
            decode(&bytes).unwrap(),
            Npy {
                dims: vec![2, 2],
                data: vec![0.5, 1.0, 0.0, 0.25]
            }
        );
        assert_eq!(decode(&encode(&[3], &[1.0, 2.0, 3.0])).unwrap().dims, [3]);
        assert!(decode(b"garbage").is_err());
        assert!(decode(&bytes[..bytes.len() - 2]).is_err());
    }
}
