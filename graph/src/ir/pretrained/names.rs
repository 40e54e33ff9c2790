//! The name tables: a zoo node name → the module path another framework gives the same
//! layer. The zoo already names nodes after those frameworks' modules (see the builders in
//! `ir/zoo`), so each table is a few rewrite rules rather than a list per model:
//!
//! | ksnn node                    | torchvision              | mmcls / mmseg                      |
//! |------------------------------|--------------------------|------------------------------------|
//! | `conv1`, `conv1_bn` (ResNet) | `conv1`, `bn1`           | `backbone.conv1`, `backbone.bn1`   |
//! | `layerS_B_convK`(`_bn`)      | `layerS.B.convK`, `.bnK` | `backbone.` + the same             |
//! | `layerS_B_downsample`(`_bn`) | `layerS.B.downsample.0`/`.1` | `backbone.` + the same         |
//! | `stem_K` (ResNetV1c)         | —                        | `backbone.stem.K` (mmseg)          |
//! | `fc` (ResNet)                | `fc`                     | `head.fc` (mmcls)                  |
//! | `conv1_conv`(`_bn`) (MobileNetV2) | `features.0.0`/`.1` | `backbone.conv1.conv`/`.bn`        |
//! | `layerS_B_convK`(`_bn`) (MobileNetV2) | `features.J.conv.K.0`/`.1`, the last `conv.K`/`conv.K+1` | `backbone.layerS.B.conv.K.conv`/`.bn` |
//! | `conv2_conv`(`_bn`) (MobileNetV2) | `features.18.0`/`.1` | `backbone.conv2.conv`/`.bn` (mmcls) |
//! | `fc` (MobileNetV2)           | `classifier.1`           | `head.fc` (mmcls)                  |
//! | `decode_image_pool_conv`(`_bn`) | —                     | `decode_head.image_pool.1.conv`/`.bn` |
//! | `decode_asppI`(`_bn`)        | —                        | `decode_head.aspp_modules.I.conv`/`.bn` |
//! | `decode_bottleneck`(`_bn`)   | —                        | `decode_head.bottleneck.conv`/`.bn` |
//! | `decode_conv_seg`            | —                        | `decode_head.conv_seg`             |
//!
//! J counts the inverted-residual blocks from 1 in order (torchvision's `features` is one
//! flat Sequential); a block's last conv is the linear projection, which torchvision keeps
//! as a bare conv + BN pair instead of a `Conv2dNormActivation`.

use std::collections::HashMap;

use super::Naming;
use crate::ir::{Graph, IrOp};

/// The model families the tables cover, told apart by the zoo model's name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    ResNet,
    MobileNetV2,
    DeepLabResNet,
    DeepLabMobileNetV2,
}

/// Translates one graph's node names into one naming.
pub(super) struct Translator {
    naming: Naming,
    family: Option<Family>,
    /// MobileNetV2 blocks `layerS_B`: position among the blocks and the index of the last
    /// conv (1 without an expansion conv, else 2).
    blocks: HashMap<String, (usize, u32)>,
}

/// `layerS_B_rest` → `(S, B, rest)`.
fn block(node: &str) -> Option<(u32, u32, &str)> {
    let (s, r) = node.strip_prefix("layer")?.split_once('_')?;
    let (b, rest) = r.split_once('_')?;
    Some((s.parse().ok()?, b.parse().ok()?, rest))
}

/// mmcv's `ConvModule`: a conv and its norm as `.conv`/`.bn`.
fn conv_module(path: String) -> (String, String) {
    (format!("{path}.conv"), format!("{path}.bn"))
}

impl Translator {
    /// `None` when `naming` has no table for the graph's model.
    pub(super) fn new(graph: &Graph, naming: Naming) -> Option<Self> {
        if !naming.models().contains(&graph.name.as_str()) {
            return None;
        }
        let family = match graph.name.as_str() {
            "resnet18-cifar" | "resnet50" | "resnet50-avgpool" => Some(Family::ResNet),
            "mobilenetv2" => Some(Family::MobileNetV2),
            "deeplabv3-resnet50" | "deeplabv3-resnet50-avgpool" => Some(Family::DeepLabResNet),
            "deeplabv3-mobilenetv2" => Some(Family::DeepLabMobileNetV2),
            _ => None,
        };
        if family.is_none() && naming != Naming::Ksnn {
            return None;
        }
        let mut blocks: HashMap<String, (usize, u32)> = HashMap::new();
        for n in &graph.nodes {
            if let (IrOp::Conv(_), Some((s, b, rest))) = (&n.op, block(&n.name))
                && let Some(k) = rest
                    .strip_prefix("conv")
                    .and_then(|k| k.parse::<u32>().ok())
            {
                let next = blocks.len();
                let e = blocks.entry(format!("layer{s}_{b}")).or_insert((next, 0));
                e.1 = e.1.max(k);
            }
        }
        Some(Self {
            naming,
            family,
            blocks,
        })
    }

    /// The module path of a node with parameters (its variables are `path.weight` etc.);
    /// `None` for a node the table does not name.
    pub(super) fn module(&self, node: &str) -> Option<String> {
        let Some(family) = self.family.filter(|_| self.naming != Naming::Ksnn) else {
            return Some(node.to_string());
        };
        let tv = self.naming == Naming::Torchvision;
        match (family, node) {
            (Family::ResNet, "fc") => return Some(if tv { "fc" } else { "head.fc" }.into()),
            (Family::MobileNetV2, "fc") => {
                return Some(if tv { "classifier.1" } else { "head.fc" }.into());
            }
            (Family::DeepLabResNet | Family::DeepLabMobileNetV2, "decode_conv_seg") => {
                return Some("decode_head.conv_seg".into());
            }
            (Family::DeepLabResNet, _) => {
                if let Some(k) = node
                    .strip_prefix("stem_")
                    .filter(|k| k.parse::<u32>().is_ok())
                {
                    return Some(format!("backbone.stem.{k}"));
                }
            }
            _ => {}
        }
        let (base, bn) = match node.strip_suffix("_bn") {
            Some(b) => (b, true),
            None => (node, false),
        };
        let (conv, norm) = match family {
            Family::ResNet | Family::DeepLabResNet => {
                aspp(base).or_else(|| self.prefixed(resnet(base)?))
            }
            Family::MobileNetV2 | Family::DeepLabMobileNetV2 => {
                aspp(base).or_else(|| self.mobilenet(base))
            }
        }?;
        Some(if bn { norm } else { conv })
    }

    /// `backbone.` before a backbone path, except in torchvision's flat classifiers.
    fn prefixed(&self, (conv, norm): (String, String)) -> Option<(String, String)> {
        Some(match self.naming {
            Naming::Torchvision => (conv, norm),
            _ => (format!("backbone.{conv}"), format!("backbone.{norm}")),
        })
    }

    fn mobilenet(&self, base: &str) -> Option<(String, String)> {
        let tv = self.naming == Naming::Torchvision;
        let pair = |j: usize| (format!("features.{j}.0"), format!("features.{j}.1"));
        match base {
            "conv1_conv" if tv => return Some(pair(0)),
            "conv1_conv" => return Some(conv_module("backbone.conv1".into())),
            "conv2_conv" if tv => return Some(pair(self.blocks.len() + 1)),
            "conv2_conv" => return Some(conv_module("backbone.conv2".into())),
            _ => {}
        }
        let (s, b, rest) = block(base)?;
        let k: u32 = rest.strip_prefix("conv")?.parse().ok()?;
        let &(j, last) = self.blocks.get(&format!("layer{s}_{b}"))?;
        if !tv {
            return Some(conv_module(format!("backbone.layer{s}.{b}.conv.{k}")));
        }
        let f = format!("features.{}.conv", j + 1);
        if k < last {
            Some((format!("{f}.{k}.0"), format!("{f}.{k}.1")))
        } else {
            (k == last).then(|| (format!("{f}.{k}"), format!("{f}.{}", k + 1)))
        }
    }
}

/// ResNet (torchvision = mmcls's backbone names) without a prefix: stem and residual blocks.
fn resnet(base: &str) -> Option<(String, String)> {
    if base == "conv1" {
        return Some(("conv1".into(), "bn1".into()));
    }
    let (s, b, rest) = block(base)?;
    let p = format!("layer{s}.{b}");
    if rest == "downsample" {
        return Some((format!("{p}.downsample.0"), format!("{p}.downsample.1")));
    }
    let k: u32 = rest.strip_prefix("conv")?.parse().ok()?;
    (1..=3)
        .contains(&k)
        .then(|| (format!("{p}.conv{k}"), format!("{p}.bn{k}")))
}

/// mmseg's `ASPPHead` (conv_seg aside): image pooling, the ASPP branches, the bottleneck.
fn aspp(base: &str) -> Option<(String, String)> {
    let path = match base {
        "decode_image_pool_conv" => "decode_head.image_pool.1".to_string(),
        "decode_bottleneck" => "decode_head.bottleneck".to_string(),
        _ => {
            let i: u32 = base.strip_prefix("decode_aspp")?.parse().ok()?;
            format!("decode_head.aspp_modules.{i}")
        }
    };
    Some(conv_module(path))
}
