//! JPEG: baseline and progressive, 8-bit grey or RGB (what cameras and datasets hold).

use std::string::ToString;
use std::vec::Vec;

use jpeg_decoder::{Decoder, PixelFormat};

use super::{DecodeError, Image, MAX_DECODED_BYTES, planar_without_alpha};

/// Decodes a JPEG to a planar image in [0, 1].
pub fn decode(bytes: &[u8]) -> Result<Image, DecodeError> {
    let mut dec = Decoder::new(bytes);
    dec.set_max_decoding_buffer_size(MAX_DECODED_BYTES);
    let data = dec.decode().map_err(|e| DecodeError::Jpeg(e.to_string()))?;
    let info = dec
        .info()
        .ok_or_else(|| DecodeError::Jpeg("no frame header".into()))?;
    let c = match info.pixel_format {
        PixelFormat::L8 => 1,
        PixelFormat::RGB24 => 3,
        PixelFormat::L16 => return Err(DecodeError::JpegPixels("12- and 16-bit")),
        PixelFormat::CMYK32 => return Err(DecodeError::JpegPixels("CMYK")),
    };
    let samples: Vec<f32> = data.iter().map(|&v| f32::from(v) / 255.0).collect();
    let (h, w) = (usize::from(info.height), usize::from(info.width));
    if samples.len() != c * h * w {
        return Err(DecodeError::Jpeg(
            "decoded data does not match the header".into(),
        ));
    }
    Ok(planar_without_alpha(c, h, w, &samples))
}
