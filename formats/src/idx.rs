//! MNIST's IDX files (big-endian magic, dimensions, then unsigned bytes): the digits
//! `tools/setup.sh` installs, read by the compiler and the client alike.

use alloc::vec::Vec;

use crate::error::{FileKind, FormatError};

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Size of each dimension, outermost first (e.g. `[count, 28, 28]` for MNIST images).
    pub dims: Vec<u32>,
    /// The elements in row-major order; `len()` is the product of `dims`.
    pub data: Vec<u8>,
}

fn bad(reason: &str) -> FormatError {
    FormatError::Decode {
        file: FileKind::Dataset,
        reason: reason.into(),
    }
}

/// Parses an IDX file of unsigned bytes (type code 0x08).
pub fn parse(bytes: &[u8]) -> Result<Idx, FormatError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic)"));
    }
    if bytes[2] != 0x08 {
        return Err(bad("IDX element type is not unsigned byte"));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 || bytes.len() < 4 + 4 * ndim {
        return Err(bad("IDX header is truncated or has too many dimensions"));
    }
    let dims: Vec<u32> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")))
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d as usize))
        .ok_or(bad("IDX dimensions overflow"))?;
    let body = &bytes[4 + 4 * ndim..];
    if body.len() != n {
        return Err(bad("IDX data length does not match its dimensions"));
    }
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn parses_and_rejects() {
        let mut f = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        f.extend([1, 2, 3, 4]);
        let idx = parse(&f).unwrap();
        assert_eq!(idx.dims, [2, 1, 2]);
        assert_eq!(idx.data, [1, 2, 3, 4]);
        assert!(parse(&f[..18]).is_err());
        assert!(parse(b"\x89PNG....").is_err());
    }
}
