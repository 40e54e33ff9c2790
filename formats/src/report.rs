//! `report.json`: what every secure run and every benchmark writes, in the schema of
//! `docs/design.md` §9, so runs can be compared by tools and by people.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::error::{FileKind, FormatError};

/// Top-1 accuracy (or mIoU for segmentation) in `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Cleartext float model.
    pub plain: f64,
    /// The secure run, as reconstructed by the client.
    pub secure: f64,
}

/// Offline (input-independent) and online seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Seconds of input-independent preprocessing, on the client's clock (it waits for all
    /// the material the helper deals it).
    pub offline: f64,
    /// Seconds from the client sharing its input to holding the answer.
    pub online: f64,
    /// `offline + online`: the latency of one inference as the client sees it.
    pub total: f64,
}

/// Bytes sent by each party.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyBytes {
    /// Bytes party P0 sent.
    #[serde(rename = "P0")]
    pub p0: u64,
    /// Bytes party P1 sent.
    #[serde(rename = "P1")]
    pub p1: u64,
    /// Bytes the helper P2 sent.
    #[serde(rename = "P2")]
    pub p2: u64,
    /// `P0 + P1 + P2`.
    pub total: u64,
}

/// Bytes of all parties by phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseBytes {
    /// Input-independent traffic: the helper's dealing (triples, comparison keys).
    pub offline: u64,
    /// Traffic from sharing the input to revealing the output.
    pub online: u64,
}

/// Averages over the images of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerInference {
    /// Average time per inference, by phase.
    pub seconds: Phases,
    /// Average bytes per inference in the offline and online phases (set-up and control excluded).
    pub bytes: PartyBytes,
    /// The same bytes split by phase instead of by party (0 in reports from before it).
    #[serde(default)]
    pub phase_bytes: PhaseBytes,
    /// Longest chain of dependent messages in the online phase (average critical-path depth).
    pub rounds: u64,
}

/// Peak resident memory of each party's process in bytes (Linux `VmHWM`, since the process
/// started); `None` where it was not measured (another system, a daemon on another host, or a
/// report from before this field).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeakRss {
    /// The client P0.
    #[serde(rename = "P0")]
    pub p0: Option<u64>,
    /// The server P1.
    #[serde(rename = "P1")]
    pub p1: Option<u64>,
    /// The helper P2.
    #[serde(rename = "P2")]
    pub p2: Option<u64>,
}

/// One layer's share of an inference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// The layer's name in the program.
    pub name: String,
    /// The op kind, as [`crate::Op::kind`] names it.
    pub kind: String,
    /// Secure comparisons the layer needs per inference (block ReLU, max pool and clip).
    pub drelus: u64,
    /// Average bytes per inference, offline + online, summed over all parties.
    pub bytes: u64,
    /// Online rounds the layer adds to the critical path (0 when its messages do not depend on
    /// the previous layer's).
    pub rounds: u64,
    /// Online seconds per inference (the slowest reporting party; over the network, P0's).
    pub seconds: f64,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Name of the program run.
    pub model: String,
    /// DReLUs of the block-ReLU layers per inference: what the knapsack budgets.
    pub spec_drelus: u64,
    /// Inferences in the run.
    pub images: u64,
    /// Accuracy of the plain reference and of the secure run (−1 where unknown).
    pub accuracy: Accuracy,
    /// Images whose secure prediction equals the fixed-point reference's.
    pub secure_equals_reference: u64,
    /// Average cost of one inference.
    pub per_inference: PerInference,
    /// Bytes sent once per session (the server's masked weights), not per inference.
    #[serde(default)]
    pub setup_bytes: u64,
    /// Wall-clock seconds of the client's whole session, all inferences back to back (set-up
    /// included): `images / wall_seconds` is the throughput. 0 where unknown (older reports).
    #[serde(default)]
    pub wall_seconds: f64,
    /// Peak memory per party (optional: older reports lack it).
    #[serde(default)]
    pub peak_rss: PeakRss,
    /// Cost per program layer, in program order.
    pub per_layer: Vec<LayerReport>,
}

impl Report {
    /// The pretty-printed `report.json` text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }

    /// A short human-readable table.
    pub fn to_table(&self) -> String {
        use core::fmt::Write;
        let mut s = String::new();
        let p = &self.per_inference;
        let _ = writeln!(s, "report for {} over {} images", self.model, self.images);
        let _ = writeln!(
            s,
            "accuracy    plain {:.4}  secure {:.4}  ({} of {} equal to the fixed-point reference)",
            self.accuracy.plain, self.accuracy.secure, self.secure_equals_reference, self.images
        );
        let _ = writeln!(
            s,
            "per image   {:.3} s ({:.3} offline + {:.3} online), {} bytes ({} offline + {} online; P0 {}, P1 {}, P2 {}), {} rounds, {} spec DReLUs",
            p.seconds.total,
            p.seconds.offline,
            p.seconds.online,
            p.bytes.total,
            p.phase_bytes.offline,
            p.phase_bytes.online,
            p.bytes.p0,
            p.bytes.p1,
            p.bytes.p2,
            p.rounds,
            self.spec_drelus
        );
        let _ = writeln!(s, "per session {} bytes of set-up", self.setup_bytes);
        let _ = writeln!(
            s,
            "  {:<20} {:<16} {:>9} {:>12} {:>6} {:>9}",
            "layer", "kind", "DReLUs", "bytes", "rounds", "seconds"
        );
        for l in &self.per_layer {
            let _ = writeln!(
                s,
                "  {:<20} {:<16} {:>9} {:>12} {:>6} {:>9.4}",
                l.name, l.kind, l.drelus, l.bytes, l.rounds, l.seconds
            );
        }
        s
    }

    /// Parses `report.json` text; a missing or mistyped field is a [`FormatError::Decode`].
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        serde_json::from_str(text).map_err(|e| FormatError::Decode {
            file: FileKind::Report,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn schema_field_names() {
        let r = Report {
            model: "mnist-cnn".into(),
            spec_drelus: 10,
            images: 2,
            per_layer: vec![LayerReport {
                name: "relu1".into(),
                kind: "block_relu".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = r.to_json();
        for key in [
            "\"model\"",
            "\"spec_drelus\"",
            "\"images\"",
            "\"plain\"",
            "\"secure\"",
            "\"secure_equals_reference\"",
            "\"per_inference\"",
            "\"phase_bytes\"",
            "\"offline\"",
            "\"online\"",
            "\"P0\"",
            "\"P1\"",
            "\"P2\"",
            "\"total\"",
            "\"rounds\"",
            "\"per_layer\"",
            "\"drelus\"",
            "\"seconds\"",
        ] {
            assert!(json.contains(key), "missing {key} in {json}");
        }
        assert_eq!(Report::from_json(&json).unwrap(), r);
        assert!(Report::from_json("{\"model\": 3}").is_err());
        assert!(json.contains("\"peak_rss\"") && json.contains("\"wall_seconds\""));
    }

    #[test]
    fn reports_without_the_newer_fields_still_parse() {
        let r = Report {
            model: "mnist-cnn".into(),
            wall_seconds: 2.5,
            peak_rss: PeakRss {
                p0: Some(1 << 20),
                p1: None,
                p2: Some(3 << 20),
            },
            ..Default::default()
        };
        let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["peak_rss"]["P1"], serde_json::Value::Null);
        let o = v.as_object_mut().unwrap();
        o.remove("peak_rss");
        o.remove("wall_seconds");
        let old = Report::from_json(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(old.peak_rss, PeakRss::default());
        assert_eq!(old.wall_seconds, 0.0);
        assert_eq!(old.model, "mnist-cnn");
    }
}
