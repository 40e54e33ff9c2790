//! CIFAR-10 and CIFAR-100 in their binary format: records of label byte(s) then 3×32×32
//! pixel bytes. CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`, one label
//! byte; CIFAR-100: `train.bin`, `test.bin`, a coarse and a fine label byte (the fine one is
//! used).

use std::path::Path;

use super::{Classification, DataError, Split, read};

const PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10 (`classes = 10`) or CIFAR-100 (`classes = 100`) from `dir`.
pub fn load(dir: &Path, classes: u32, split: Split) -> Result<Classification, DataError> {
    let (files, label_bytes): (Vec<String>, usize) = match (classes, split) {
        (10, Split::Train) => ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), 1),
        (10, Split::Test) => (vec!["test_batch.bin".into()], 1),
        (100, Split::Train) => (vec!["train.bin".into()], 2),
        (100, Split::Test) => (vec!["test.bin".into()], 2),
        _ => {
            return Err(DataError::file(
                dir,
                format!("CIFAR has 10 or 100 classes, not {classes}"),
            ));
        }
    };
    let record = label_bytes + PIXELS;
    let mut out = Classification {
        channels: 3,
        height: 32,
        width: 32,
        pixels: Vec::new(),
        labels: Vec::new(),
        classes: Vec::new(),
        masks: Vec::new(),
    };
    for name in files {
        let path = dir.join(&name);
        let bytes = read(&path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(DataError::Layout {
                path,
                reason: format!("{} bytes is not a whole number of records", bytes.len()),
                expected: if label_bytes == 1 {
                    "records of 1 label byte + 3072 pixel bytes"
                } else {
                    "records of 2 label bytes + 3072 pixel bytes"
                },
            });
        }
        for r in bytes.chunks_exact(record) {
            let label = u32::from(r[label_bytes - 1]);
            if label >= classes {
                return Err(DataError::file(
                    &path,
                    format!("label {label} is not below {classes}"),
                ));
            }
            out.labels.push(label);
            out.pixels
                .extend(r[label_bytes..].iter().map(|&v| f32::from(v) / 255.0));
        }
    }
    Ok(out)
}
