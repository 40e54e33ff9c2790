//! PNG: every colour type and bit depth the format has (grey, grey+alpha, RGB, RGBA, palette;
//! 1–16 bits), 16-bit samples kept at full precision.

use std::format;
use std::string::ToString;
use std::vec::Vec;

use png::{BitDepth, ColorType, Decoder, Transformations};

use super::{DecodeError, Image, MAX_DECODED_BYTES, planar_without_alpha};

fn bad(e: png::DecodingError) -> DecodeError {
    DecodeError::Png(e.to_string())
}

/// Decodes one frame with `transform`: its output info and samples.
fn frame(
    bytes: &[u8],
    transform: Transformations,
) -> Result<(png::OutputInfo, Vec<u8>), DecodeError> {
    let mut dec = Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(transform);
    let mut reader = dec.read_info().map_err(bad)?;
    let (width, height) = reader.info().size();
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= MAX_DECODED_BYTES)
        .ok_or(DecodeError::TooLarge { width, height })?;
    let mut buf = std::vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    buf.truncate(info.buffer_size());
    Ok((info, buf))
}

/// Decodes a PNG to a planar image in [0, 1], alpha dropped.
pub fn decode(bytes: &[u8]) -> Result<Image, DecodeError> {
    // EXPAND: palette → RGB, grey below 8 bits → 8 bits, a tRNS colour key → alpha (dropped).
    let (info, buf) = frame(bytes, Transformations::EXPAND)?;
    let samples: Vec<f32> = match info.bit_depth {
        BitDepth::Eight => buf.iter().map(|&v| f32::from(v) / 255.0).collect(),
        BitDepth::Sixteen => buf
            .chunks_exact(2)
            .map(|b| f32::from(u16::from_be_bytes([b[0], b[1]])) / 65535.0)
            .collect(),
        other => {
            return Err(DecodeError::Png(format!(
                "{other:?} samples after expansion"
            )));
        }
    };
    Ok(planar_without_alpha(
        info.color_type.samples(),
        info.height as usize,
        info.width as usize,
        &samples,
    ))
}

/// Decodes an 8-bit indexed or grey PNG to its raw values: `(height, width, values)`.
pub fn decode_mask(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), DecodeError> {
    let (info, buf) = frame(bytes, Transformations::IDENTITY)?;
    if info.bit_depth != BitDepth::Eight
        || !matches!(info.color_type, ColorType::Indexed | ColorType::Grayscale)
    {
        return Err(DecodeError::Mask(format!(
            "{:?} {:?}",
            info.color_type, info.bit_depth
        )));
    }
    Ok((info.height as usize, info.width as usize, buf))
}
