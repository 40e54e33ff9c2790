#!/usr/bin/env python3
"""Writes graph/tests/fixtures/pretrained/: the state-dict key lists of the pretrained
checkpoints `ksnn train --init FILE --map torchvision|mmcls|mmseg` loads, and one small
safetensors file in real torchvision naming (tests do not run this; run it from the repository
root with any Python 3.9+, no packages needed:  python3 tools/pretrained_fixtures.py).

Why no torch here: the key names are what matters, and they come from the frameworks' module
trees, not from torch itself. This file rebuilds those trees with a ten-line stand-in for
nn.Module (children and parameters registered in attribute order, state_dict() walks them the
way torch does: parameters, then buffers, then children, each with its dotted prefix), following
the sources line by line:

* torchvision 0.x  torchvision/models/resnet.py (BasicBlock, Bottleneck, ResNet) and
  torchvision/models/mobilenetv2.py (InvertedResidual, Conv2dNormActivation = conv, bn, act)
* mmcls 0.x        mmcls/models/backbones/resnet.py (norm names `bn1`.. via build_norm_layer
  postfix), resnet_cifar.py, mobilenet_v2.py, heads/linear_head.py (`fc`); the classifier is
  ImageClassifier(backbone, neck=GlobalAveragePooling, head)
* mmseg 0.x        mmseg/models/backbones/resnet.py (ResNetV1c: deep_stem, stem.0..8),
  mobilenet_v2.py, utils/inverted_residual.py, decode_heads/aspp_head.py, fcn_head.py
  (auxiliary head), mmcv ConvModule (`conv`, `bn`)

Outputs:
* keys.json: {"<framework>/<config>": {"zoo": ksnn model, "classes": N,
  "keys": [[name, [dims], dtype], ...]}} in state-dict order, with every buffer
  (num_batches_tracked is int64 with dims []).
* torchvision_resnet18_stem_fc.safetensors: torchvision resnet18(num_classes=10)'s conv1, bn1
  (with num_batches_tracked) and fc only, values from random.Random(18): a real-naming file
  that does NOT fit ksnn's resnet18-cifar (7x7 stem, 10 classes, no residual stages), for the
  error tests. Written with the safetensors layout (8-byte little-endian header length, JSON
  header with dtype/shape/data_offsets, sorted names, raw little-endian data).
"""
import json
import pathlib
import random
import struct

OUT = pathlib.Path(__file__).resolve().parent.parent / "graph/tests/fixtures/pretrained"


class Module:
    """The part of nn.Module that names state-dict entries."""

    def __init__(self):
        self._params, self._buffers, self._children = {}, {}, {}

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self._children[name] = value
        object.__setattr__(self, name, value)

    def state_dict(self, prefix=""):
        out = [(prefix + k, v, "F32") for k, v in self._params.items()]
        out += [(prefix + k, v, dt) for k, (v, dt) in self._buffers.items()]
        for name, child in self._children.items():
            out += child.state_dict(f"{prefix}{name}.")
        return out


class Sequential(Module):
    def __init__(self, *mods):
        super().__init__()
        for i, m in enumerate(mods):
            setattr(self, str(i), m)


class Leaf(Module):
    """A module without parameters (ReLU, pooling, dropout)."""


class Conv2d(Module):
    def __init__(self, cin, cout, k, groups=1, bias=False):
        super().__init__()
        self._params["weight"] = [cout, cin // groups, k, k]
        if bias:
            self._params["bias"] = [cout]


class BatchNorm2d(Module):
    def __init__(self, c):
        super().__init__()
        self._params.update(weight=[c], bias=[c])
        self._buffers.update(running_mean=([c], "F32"), running_var=([c], "F32"),
                             num_batches_tracked=([], "I64"))


class Linear(Module):
    def __init__(self, cin, cout):
        super().__init__()
        self._params.update(weight=[cout, cin], bias=[cout])


class ConvModule(Module):
    """mmcv's ConvModule with a BN: conv (no bias), bn, activation."""

    def __init__(self, cin, cout, k, groups=1):
        super().__init__()
        self.conv = Conv2d(cin, cout, k, groups)
        self.bn = BatchNorm2d(cout)
        self.activate = Leaf()


# --- ResNets (torchvision; mmcls/mmseg use the same block attribute names) -----------------

class BasicBlock(Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = Conv2d(cin, planes, 3), BatchNorm2d(planes)
        self.relu = Leaf()
        self.conv2, self.bn2 = Conv2d(planes, planes, 3), BatchNorm2d(planes)
        if stride != 1 or cin != planes:
            self.downsample = Sequential(Conv2d(cin, planes, 1), BatchNorm2d(planes))


class Bottleneck(Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = Conv2d(cin, planes, 1), BatchNorm2d(planes)
        self.conv2, self.bn2 = Conv2d(planes, planes, 3), BatchNorm2d(planes)
        self.conv3, self.bn3 = Conv2d(planes, 4 * planes, 1), BatchNorm2d(4 * planes)
        self.relu = Leaf()
        if stride != 1 or cin != 4 * planes:
            self.downsample = Sequential(Conv2d(cin, 4 * planes, 1), BatchNorm2d(4 * planes))


def res_layers(m, block, blocks, cin=64):
    for s, n in enumerate(blocks):
        planes = 64 << s
        layer = []
        for i in range(n):
            layer.append(block(cin, planes, (1 if s == 0 else 2) if i == 0 else 1))
            cin = planes * block.expansion
        setattr(m, f"layer{s + 1}", Sequential(*layer))
    return cin


class ResNet(Module):
    """torchvision ResNet, or mmcls/mmseg's backbone (`cifar`: 3x3 stem; `deep_stem`: V1c)."""

    def __init__(self, block, blocks, classes=None, stem=7, deep_stem=False):
        super().__init__()
        if deep_stem:
            self.stem = Sequential(Conv2d(3, 32, 3), BatchNorm2d(32), Leaf(),
                                   Conv2d(32, 32, 3), BatchNorm2d(32), Leaf(),
                                   Conv2d(32, 64, 3), BatchNorm2d(64), Leaf())
        else:
            self.conv1, self.bn1 = Conv2d(3, 64, stem), BatchNorm2d(64)
            self.relu = Leaf()
        self.maxpool = Leaf()
        cout = res_layers(self, block, blocks)
        if classes is not None:  # torchvision's classifier; mmcls's is the head's
            self.avgpool, self.fc = Leaf(), Linear(cout, classes)
        self.out_channels = cout


# --- MobileNetV2 ---------------------------------------------------------------------------

SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]  # t, c, n, s


def conv_norm_act(cin, cout, k, groups=1):
    """torchvision's Conv2dNormActivation: a Sequential conv, bn, ReLU6."""
    return Sequential(Conv2d(cin, cout, k, groups), BatchNorm2d(cout), Leaf())


class TvInvertedResidual(Module):
    def __init__(self, cin, cout, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_norm_act(cin, hidden, 1)] if t != 1 else []
        layers += [conv_norm_act(hidden, hidden, 3, hidden), Conv2d(hidden, cout, 1),
                   BatchNorm2d(cout)]
        self.conv = Sequential(*layers)


class TvMobileNetV2(Module):
    def __init__(self, classes):
        super().__init__()
        feats, cin = [conv_norm_act(3, 32, 3)], 32
        for t, c, n, _ in SETTING:
            for _ in range(n):
                feats.append(TvInvertedResidual(cin, c, t))
                cin = c
        feats.append(conv_norm_act(cin, 1280, 1))
        self.features = Sequential(*feats)
        self.classifier = Sequential(Leaf(), Linear(1280, classes))


class MmInvertedResidual(Module):
    """mmcls and mmseg: every conv a ConvModule (the projection without activation)."""

    def __init__(self, cin, cout, t):
        super().__init__()
        hidden = cin * t
        layers = [ConvModule(cin, hidden, 1)] if t != 1 else []
        layers += [ConvModule(hidden, hidden, 3, hidden), ConvModule(hidden, cout, 1)]
        self.conv = Sequential(*layers)


class MmMobileNetV2(Module):
    """mmcls's (`conv2`: the 1x1 to 1280, out_indices=(7,)) or mmseg's backbone (no conv2)."""

    def __init__(self, conv2):
        super().__init__()
        self.conv1, cin = ConvModule(3, 32, 3), 32
        for s, (t, c, n, _) in enumerate(SETTING):
            blocks = []
            for _ in range(n):
                blocks.append(MmInvertedResidual(cin, c, t))
                cin = c
            setattr(self, f"layer{s + 1}", Sequential(*blocks))
        if conv2:
            self.conv2, cin = ConvModule(cin, 1280, 1), 1280
        self.out_channels = cin


# --- mmcls / mmseg wrappers ------------------------------------------------------------------

class LinearClsHead(Module):
    def __init__(self, cin, classes):
        super().__init__()
        self.fc = Linear(cin, classes)


class ImageClassifier(Module):
    def __init__(self, backbone, classes):
        super().__init__()
        self.backbone, self.neck = backbone, Leaf()
        self.head = LinearClsHead(backbone.out_channels, classes)


class AsppHead(Module):
    def __init__(self, cin, classes, channels=512):
        super().__init__()
        self.conv_seg = Conv2d(channels, classes, 1, bias=True)
        self.dropout = Leaf()
        self.image_pool = Sequential(Leaf(), ConvModule(cin, channels, 1))
        self.aspp_modules = Sequential(*[ConvModule(cin, channels, 1 if d == 1 else 3)
                                         for d in (1, 12, 24, 36)])
        self.bottleneck = ConvModule(5 * channels, channels, 3)


class FcnHead(Module):
    """The auxiliary head (num_convs=1, concat_input=False)."""

    def __init__(self, cin, classes, channels):
        super().__init__()
        self.conv_seg = Conv2d(channels, classes, 1, bias=True)
        self.dropout = Leaf()
        self.convs = Sequential(ConvModule(cin, channels, 3))


class EncoderDecoder(Module):
    def __init__(self, backbone, head_in, aux_in, aux_channels, classes):
        super().__init__()
        self.backbone = backbone
        self.decode_head = AsppHead(head_in, classes)
        self.auxiliary_head = FcnHead(aux_in, classes, aux_channels)


CASES = {
    "torchvision/resnet18": ("resnet18-cifar", 1000, ResNet(BasicBlock, [2, 2, 2, 2], 1000)),
    "torchvision/resnet50": ("resnet50", 1000, ResNet(Bottleneck, [3, 4, 6, 3], 1000)),
    "torchvision/mobilenet_v2": ("mobilenetv2", 1000, TvMobileNetV2(1000)),
    "mmcls/resnet18_8xb16_cifar100": (
        "resnet18-cifar", 100, ImageClassifier(ResNet(BasicBlock, [2, 2, 2, 2], stem=3), 100)),
    "mmcls/resnet50_8xb32_in1k": (
        "resnet50", 1000, ImageClassifier(ResNet(Bottleneck, [3, 4, 6, 3]), 1000)),
    "mmcls/mobilenet-v2_8xb32_in1k": (
        "mobilenetv2", 1000, ImageClassifier(MmMobileNetV2(conv2=True), 1000)),
    # deeplabv3_r50-d8 on VOC: auxiliary FCN on stage 3 (1024 channels, 256 wide).
    "mmseg/deeplabv3_r50-d8_512x512_20k_voc12aug": (
        "deeplabv3-resnet50", 21,
        EncoderDecoder(ResNet(Bottleneck, [3, 4, 6, 3], deep_stem=True), 2048, 1024, 256, 21)),
    # deeplabv3_m-v2-d8 on ADE20K: the config's auxiliary FCN takes in_channels=96 (layer5's
    # output, out_indices (1, 2, 4, 6)), 256 wide.
    "mmseg/deeplabv3_m-v2-d8_512x512_160k_ade20k": (
        "deeplabv3-mobilenetv2", 150,
        EncoderDecoder(MmMobileNetV2(conv2=False), 320, 96, 256, 150)),
}


def write_safetensors(path, tensors, seed):
    """tensors: [(name, dims, dtype)] -> a safetensors file with seeded random values."""
    rnd = random.Random(seed)
    header, blobs, offset = {}, [], 0
    for name, dims, dtype in sorted(tensors):
        n = 1
        for d in dims:
            n *= d
        if dtype == "I64":
            blob = struct.pack(f"<{n}q", *[rnd.randrange(1000) for _ in range(n)])
        else:
            blob = struct.pack(f"<{n}f", *[rnd.gauss(0.0, 0.1) for _ in range(n)])
        header[name] = {"dtype": dtype, "shape": dims, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    keys = {}
    for case, (zoo, classes, model) in CASES.items():
        sd = model.state_dict()
        assert len({k for k, _, _ in sd}) == len(sd), case
        keys[case] = {"zoo": zoo, "classes": classes, "keys": [[k, d, t] for k, d, t in sd]}
    # One tensor a line: small, and diffs show which name changed.
    lines = []
    for case, v in keys.items():
        rows = ",\n".join("  " + json.dumps(k) for k in v["keys"])
        head = json.dumps({"zoo": v["zoo"], "classes": v["classes"]})[:-1]
        lines.append(f'{json.dumps(case)}: {head}, "keys": [\n{rows}\n]}}')
    (OUT / "keys.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    assert json.loads((OUT / "keys.json").read_text()) == keys
    small = ResNet(BasicBlock, [2, 2, 2, 2], 10).state_dict()
    keep = [t for t in small if t[0].split(".")[0] in ("conv1", "bn1", "fc")]
    write_safetensors(OUT / "torchvision_resnet18_stem_fc.safetensors", keep, 18)
    for case, v in keys.items():
        print(f"{case}: {len(v['keys'])} tensors")


if __name__ == "__main__":
    main()
