#!/usr/bin/env python3
"""Generate the committed ONNX test fixtures in graph/tests/fixtures/onnx/.

What it makes (tract-style fixtures, so CI needs no Python):

* For every case NAME:
    NAME.onnx      the model (opset and op form exact: most cases are built node by node
                   with onnx.helper; the *_legacy / *_dynamo cases are exported from torch)
    NAME.onnx.data external weights (only for the dynamo exports, which write them there)
    NAME.in.npy    float32 input, NCHW, batch 2, standard normal (x4 for the activation cases),
                   fixed seed per case
    NAME.out.npy   float32, the FIRST graph output as computed by onnxruntime on NAME.in.npy
* manifest.json: a list of {"name", "opset", "ops", "what", "expect"}; "expect" is "ok" or
  {"error": "<exact message the importer must give>"}, i.e.
    "unsupported op OPTYPE (opset N) at node NODENAME"   (N = the model's default-domain opset,
                                                          NODENAME = the node's `name` field)
    "unsupported opset N (ksnn imports opsets 9 to 21)"
* light/: the onnx wheel's onnx/backend/test/data/light/light_*.onnx (real architectures,
  weights replaced by ConstantOfShape), copied from the installed onnx package, + light/SOURCES.txt.
* SOURCES.txt: how everything was produced, with the exact package versions.

Checks done here: onnx.checker (full_check) on every hand-built model; every node has a unique
non-empty name (hand-built); every model runs in onnxruntime; for the torch exports onnxruntime's
output matches torch's within 1e-4 (max abs); the dynamo exports really keep their weights in
NAME.onnx.data (initializers with external_data).

Set-up (a venv OUTSIDE the repository; full torch is ~2.6 GB download, ~45 s):

    python3 -m venv /tmp/onnxgen
    /tmp/onnxgen/bin/pip install torch==2.13.0 torchvision==0.28.0 onnx==1.23.2 onnxruntime onnxscript numpy

Run (from the repository root; it deletes and rewrites graph/tests/fixtures/onnx/):

    /tmp/onnxgen/bin/python tools/onnx_fixtures.py
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "graph" / "tests" / "fixtures" / "onnx"
MIN_OPSET, MAX_OPSET = 9, 21
MAX_TOTAL_BYTES = 4 * 1024 * 1024

MANIFEST: list[dict] = []


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def rng_for(name: str, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(seed_of(name + salt))


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def init(name: str, arr, dtype=None) -> TensorProto:
    arr = np.asarray(arr, dtype=dtype) if dtype is not None else np.asarray(arr)
    return numpy_helper.from_array(arr, name)


def vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def ops_of(model: onnx.ModelProto) -> list[str]:
    """Op types of the top-level graph, in order of first appearance."""
    seen: list[str] = []
    for n in model.graph.node:
        if n.op_type not in seen:
            seen.append(n.op_type)
    return seen


def default_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    raise ValueError("model has no default-domain opset")


def node_named(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    hits = [n for n in model.graph.node if n.name == name]
    assert len(hits) == 1, f"node {name!r} found {len(hits)} times"
    return hits[0]


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ins = sess.get_inputs()
    assert len(ins) == 1, f"{path.name}: expected exactly one graph input, got {[i.name for i in ins]}"
    y = sess.run(None, {ins[0].name: x})[0]
    assert y.dtype == np.float32, f"{path.name}: output dtype {y.dtype}"
    return y


def record(name: str, model: onnx.ModelProto, x: np.ndarray, what: str, expect, *,
           torch_out: np.ndarray | None = None) -> np.ndarray:
    """Write NAME.in.npy / NAME.out.npy (model file already written), add the manifest entry."""
    path = OUT / f"{name}.onnx"
    x = f32(x)
    y = ort_run(path, x)
    if torch_out is not None:
        diff = float(np.max(np.abs(y - torch_out)))
        assert y.shape == torch_out.shape, f"{name}: ort {y.shape} vs torch {torch_out.shape}"
        assert diff <= 1e-4, f"{name}: onnxruntime vs torch max abs diff {diff}"
        print(f"  {name}: onnxruntime vs torch max abs diff {diff:.2e}")
    np.save(OUT / f"{name}.in.npy", x)
    np.save(OUT / f"{name}.out.npy", y)
    MANIFEST.append({
        "name": name,
        "opset": default_opset(model),
        "ops": ops_of(model),
        "what": what,
        "expect": expect,
    })
    return y


def build(name: str, nodes, in_shape, opset: int, initializers=(), out_name: str = "y",
          out_shape=None, extra_value_info=()) -> onnx.ModelProto:
    """A single-input single-output graph; input 'x' of in_shape, output out_name."""
    for n in nodes:
        assert n.name, f"{name}: node without a name: {n.op_type}"
    names = [n.name for n in nodes]
    assert len(set(names)) == len(names), f"{name}: duplicate node names"
    graph = helper.make_graph(
        list(nodes), name,
        [vi("x", in_shape)],
        [vi(out_name, out_shape) if out_shape is not None
         else helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)],
        initializer=list(initializers),
        value_info=list(extra_value_info),
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="ksnn tools/onnx_fixtures.py",
        ir_version=max(4, helper.find_min_ir_version_for(opsets)),  # IR 4: initializers need not be inputs
    )
    return model


def finish_built(model: onnx.ModelProto) -> onnx.ModelProto:
    """Run strict shape inference, give the output its inferred shape, check."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    out = model.graph.output[0]
    if not out.type.tensor_type.HasField("shape"):
        for v in list(inferred.graph.value_info) + list(inferred.graph.output):
            if v.name == out.name and v.type.tensor_type.HasField("shape"):
                out.type.CopyFrom(v.type)
                break
    if not out.type.tensor_type.HasField("shape"):
        # Shape inference cannot follow Shape->...->Reshape; take the shape onnxruntime computes.
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        i = sess.get_inputs()[0]
        y = sess.run(None, {i.name: np.zeros(i.shape, np.float32)})[0]
        out.type.CopyFrom(vi(out.name, y.shape).type)
    onnx.checker.check_model(model, full_check=True)
    return model


def case(name: str, nodes, opset: int, what: str, *, in_shape=(2, 4, 8, 8), initializers=(),
         expect="ok", out_name: str = "y", skip_checker: bool = False, scale: float = 1.0):
    model = build(name, nodes, in_shape, opset, initializers, out_name)
    if not skip_checker:
        model = finish_built(model)
    path = OUT / f"{name}.onnx"
    onnx.save(model, str(path))
    x = rng_for(name).standard_normal(in_shape).astype(np.float32)
    if scale != 1.0:
        x = (x * np.float32(scale)).astype(np.float32)
    record(name, model, x, what, expect)


def unsupported(model_path_name: str, node_name: str, opset: int) -> dict:
    model = onnx.load(str(OUT / f"{model_path_name}.onnx"), load_external_data=False)
    n = node_named(model, node_name)
    assert default_opset(model) == opset
    return {"error": f"unsupported op {n.op_type} (opset {opset}) at node {n.name}"}


def N(op, inputs, outputs, name, **attrs):
    return helper.make_node(op, inputs, outputs, name=name, **attrs)


def conv_w(name, cout, cin_per_group, k, salt="w"):
    r = rng_for(name, salt)
    kh, kw = (k, k) if isinstance(k, int) else k
    return f32(r.standard_normal((cout, cin_per_group, kh, kw)) * 0.3)


def vec(name, n, salt, scale=0.5, offset=0.0):
    return f32(rng_for(name, salt).standard_normal(n) * scale + offset)


def bn_params(name, c, prefix="bn"):
    return [
        init(f"{prefix}_scale", vec(name, c, prefix + "s", 0.3, 1.0)),
        init(f"{prefix}_bias", vec(name, c, prefix + "b", 0.3)),
        init(f"{prefix}_mean", vec(name, c, prefix + "m", 0.5)),
        init(f"{prefix}_var", f32(rng_for(name, prefix + "v").uniform(0.5, 2.0, c))),
    ]


# --------------------------------------------------------------------------------------------
# a. one case per op form, built with onnx.helper
# --------------------------------------------------------------------------------------------

def conv_cases():
    C = 4

    def conv(name, what, cout=6, group=1, k=3, bias=True, opset=13, in_shape=(2, C, 8, 8), **attrs):
        inits = [init("W", conv_w(name, cout, in_shape[1] // group, k))]
        ins = ["x", "W"]
        if bias:
            inits.append(init("B", vec(name, cout, "b")))
            ins.append("B")
        kshape = [k, k] if isinstance(k, int) else list(k)
        if group != 1:
            attrs["group"] = group
        case(name, [N("Conv", ins, ["y"], "conv0", kernel_shape=kshape, **attrs)], opset, what,
             in_shape=in_shape, initializers=inits)

    conv("conv_bias", "Conv 3x3, pads 1, with bias", pads=[1, 1, 1, 1])
    conv("conv_nobias", "Conv 3x3, pads 1, no bias input", bias=False, pads=[1, 1, 1, 1])
    conv("conv_group2", "Conv 3x3, group=2 (4->6 channels), pads 1", group=2, pads=[1, 1, 1, 1])
    conv("conv_depthwise", "depthwise Conv 3x3, group=C=4, 4->4 channels, pads 1", cout=C, group=C,
         pads=[1, 1, 1, 1])
    conv("conv_dilation2", "Conv 3x3, dilations 2, pads 2", dilations=[2, 2], pads=[2, 2, 2, 2])
    conv("conv_stride2", "Conv 3x3, strides 2, pads 1 (8x8 -> 4x4)", strides=[2, 2], pads=[1, 1, 1, 1])
    conv("conv_pads_asym", "Conv 3x3, explicit asymmetric pads [0,1,2,1] (top,left,bottom,right)",
         pads=[0, 1, 2, 1])
    conv("conv_same_upper", "Conv 3x3 stride 2, auto_pad SAME_UPPER (odd total pad: extra at end)",
         strides=[2, 2], auto_pad="SAME_UPPER")
    conv("conv_same_lower", "Conv 3x3 stride 2, auto_pad SAME_LOWER (odd total pad: extra at start)",
         strides=[2, 2], auto_pad="SAME_LOWER")
    conv("conv_valid", "Conv 3x3, auto_pad VALID (8x8 -> 6x6)", auto_pad="VALID")
    conv("conv_1x1", "Conv 1x1 (pointwise), no pads", k=1)
    conv("conv_rect", "Conv with a rectangular 1x3 kernel, pads [0,1,0,1]", k=(1, 3), pads=[0, 1, 0, 1])


def dense_cases():
    name = "gemm_transb"
    inits = [init("W", f32(rng_for(name, "w").standard_normal((10, 64)) * 0.2)),
             init("B", vec(name, 10, "b"))]
    case(name, [N("Flatten", ["x"], ["f"], "flatten0", axis=1),
                N("Gemm", ["f", "W", "B"], ["y"], "gemm0", transB=1, alpha=0.5, beta=2.0)],
         13, "Flatten then Gemm transB=1 alpha=0.5 beta=2.0, W [10,64]", in_shape=(2, 4, 4, 4),
         initializers=inits)
    name = "gemm_notransb"
    inits = [init("W", f32(rng_for(name, "w").standard_normal((64, 10)) * 0.2)),
             init("B", vec(name, 10, "b"))]
    case(name, [N("Flatten", ["x"], ["f"], "flatten0", axis=1),
                N("Gemm", ["f", "W", "B"], ["y"], "gemm0")],
         13, "Flatten then Gemm transB=0 (default alpha/beta), W [64,10]", in_shape=(2, 4, 4, 4),
         initializers=inits)
    name = "matmul_add"
    inits = [init("W", f32(rng_for(name, "w").standard_normal((64, 10)) * 0.2)),
             init("B", vec(name, 10, "b"))]
    case(name, [N("Flatten", ["x"], ["f"], "flatten0", axis=1),
                N("MatMul", ["f", "W"], ["m"], "matmul0"),
                N("Add", ["m", "B"], ["y"], "add0")],
         13, "Flatten, MatMul with constant W [64,10], Add constant bias [10]", in_shape=(2, 4, 4, 4),
         initializers=inits)


def elementwise_cases():
    C = 4
    name = "batchnorm"
    case(name, [N("BatchNormalization", ["x", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["y"],
                  "bn0", epsilon=1e-3)],
         13, "BatchNormalization (inference), non-trivial scale/bias/mean/var, epsilon 1e-3",
         initializers=bn_params(name, C))
    case("relu", [N("Relu", ["x"], ["y"], "relu0")], 13, "Relu")
    case("clip9_attr", [N("Clip", ["x"], ["y"], "clip0", min=0.0, max=6.0)], 9,
         "Clip opset 9 with min/max attributes (min 0, max 6: ReLU6)", initializers=[])
    case("clip13_inputs", [N("Clip", ["x", "lo", "hi"], ["y"], "clip0")], 13,
         "Clip opset 13 with min/max as constant scalar inputs (min -1, max 1.5)",
         initializers=[init("lo", f32(-1.0)), init("hi", f32(1.5))])
    case("clip13_min_only", [N("Clip", ["x", "lo"], ["y"], "clip0")], 13,
         "Clip opset 13 with only the min input (min 0, no max: a Relu)",
         initializers=[init("lo", f32(0.0))])
    case("clip11_relu6", [N("Clip", ["x", "lo", "hi"], ["y"], "clip0")], 11,
         "Clip opset 11 with min/max inputs (min 0, max 6: ReLU6 as torch exports it)",
         initializers=[init("lo", f32(0.0)), init("hi", f32(6.0))])
    case("identity", [N("Identity", ["x"], ["y"], "identity0")], 13, "Identity")
    case("dropout13", [N("Dropout", ["x"], ["y"], "dropout0")], 13,
         "Dropout opset 13, inference (no ratio/training_mode inputs): identity")

    # binary ops with constants
    pc = vec("perchannel", C, "c", 0.8, 1.0).reshape(C, 1, 1)
    case("add_channel", [N("Add", ["x", "c"], ["y"], "add0")], 13,
         "Add a constant per-channel tensor of shape [C,1,1]", initializers=[init("c", pc)])
    case("mul_scalar", [N("Mul", ["x", "c"], ["y"], "mul0")], 13, "Mul by a scalar constant (shape [])",
         initializers=[init("c", f32(1.75))])
    case("mul_channel", [N("Mul", ["x", "c"], ["y"], "mul0")], 13, "Mul by a per-channel constant [C,1,1]",
         initializers=[init("c", pc)])
    case("div_scalar", [N("Div", ["x", "c"], ["y"], "div0")], 13, "Div by a scalar constant (shape [])",
         initializers=[init("c", f32(2.5))])
    case("div_channel", [N("Div", ["x", "c"], ["y"], "div0")], 13, "Div by a per-channel constant [C,1,1]",
         initializers=[init("c", pc)])
    case("sub_scalar", [N("Sub", ["x", "c"], ["y"], "sub0")], 13, "Sub a scalar constant (x - c)",
         initializers=[init("c", f32(0.25))])
    case("sub_channel", [N("Sub", ["x", "c"], ["y"], "sub0")], 13, "Sub a per-channel constant [C,1,1] (x - c)",
         initializers=[init("c", pc)])
    case("sub_const_left", [N("Sub", ["c", "x"], ["y"], "sub0")], 13,
         "Sub with the constant on the left (c - x), c per-channel [C,1,1]", initializers=[init("c", pc)])
    case("mul_const_left", [N("Mul", ["c", "x"], ["y"], "mul0")], 13,
         "Mul with the constant on the left (c * x), c scalar", initializers=[init("c", f32(-0.5))])

    # binary ops of two tensors (both computed from x)
    name = "add_two_tensors"
    case(name, [N("Conv", ["x", "W", "B"], ["a"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                N("Relu", ["x"], ["b"], "relu0"),
                N("Add", ["a", "b"], ["y"], "add0")],
         13, "Add of two non-constant tensors: Conv(x) + Relu(x)",
         initializers=[init("W", conv_w(name, C, C, 3)), init("B", vec(name, C, "b"))])
    name = "mul_two_tensors"
    case(name, [N("Conv", ["x", "W", "B"], ["a"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                N("Relu", ["a"], ["b"], "relu0"),
                N("Mul", ["a", "b"], ["y"], "mul0")],
         13, "Mul of two non-constant tensors of one shape: Conv(x) * Relu(Conv(x))",
         initializers=[init("W", conv_w(name, C, C, 3)), init("B", vec(name, C, "b"))])
    name = "mul_gate"
    case(name, [N("GlobalAveragePool", ["x"], ["g"], "gap0"),
                N("Conv", ["g", "W", "B"], ["s"], "fc0", kernel_shape=[1, 1]),
                N("HardSigmoid", ["s"], ["h"], "hsig0", alpha=1.0 / 6.0, beta=0.5),
                N("Mul", ["h", "x"], ["y"], "mul0")],
         14, "squeeze-and-excitation gate as torchvision's MobileNetV3 has it: GlobalAveragePool, "
         "1x1 Conv, HardSigmoid, then Mul of the [N,C,1,1] gate (first operand) by the map",
         initializers=[init("W", conv_w(name, C, C, 1)), init("B", vec(name, C, "b"))], scale=2.0)
    name = "sum3"
    case(name, [N("Conv", ["x", "W", "B"], ["a"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                N("Relu", ["x"], ["b"], "relu0"),
                N("Sum", ["a", "b", "x"], ["y"], "sum0")],
         13, "Sum of three tensors: Conv(x) + Relu(x) + x",
         initializers=[init("W", conv_w(name, C, C, 3)), init("B", vec(name, C, "b"))])
    name = "concat3"
    case(name, [N("Conv", ["x", "W", "B"], ["a"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                N("Relu", ["x"], ["b"], "relu0"),
                N("Concat", ["a", "b", "x"], ["y"], "concat0", axis=1)],
         13, "Concat on axis 1 of three inputs: [Conv(x) (2 ch), Relu(x) (4 ch), x (4 ch)] -> 10 ch",
         initializers=[init("W", conv_w(name, 2, C, 3)), init("B", vec(name, 2, "b"))])


def activation_cases():
    """LeakyRelu, PRelu, HardSigmoid, HardSwish in their opset and attribute/input forms. Inputs
    are scaled by 4 so both clip points of the hard ones (x = -3 and 3 for alpha 1/6) are crossed."""
    C = 4
    case("leakyrelu6_default", [N("LeakyRelu", ["x"], ["y"], "leaky0")], 9,
         "LeakyRelu opset 6 form, default alpha 0.01", scale=4.0)
    case("leakyrelu16_alpha", [N("LeakyRelu", ["x"], ["y"], "leaky0", alpha=0.2)], 16,
         "LeakyRelu opset 16, alpha 0.2", scale=4.0)
    slopes = vec("slope", C, "s", 0.3, 0.1)
    case("prelu9_channel", [N("PRelu", ["x", "slope"], ["y"], "prelu0")], 9,
         "PRelu opset 9, per-channel slope [C,1,1] (as torch exports nn.PReLU(C))",
         initializers=[init("slope", slopes.reshape(C, 1, 1))], scale=4.0)
    case("prelu16_shared", [N("PRelu", ["x", "slope"], ["y"], "prelu0")], 16,
         "PRelu opset 16, one shared slope [1] (nn.PReLU())",
         initializers=[init("slope", f32([0.25]))], scale=4.0)
    case("prelu16_vector", [N("Flatten", ["x"], ["f"], "flatten0", axis=1),
                            N("PRelu", ["f", "slope"], ["y"], "prelu0")], 16,
         "PRelu opset 16 on a flattened vector, slope [F] (one per feature)",
         initializers=[init("slope", vec("slope", C * 8 * 8, "v", 0.3, 0.1))], scale=4.0)
    case("hardsigmoid6_default", [N("HardSigmoid", ["x"], ["y"], "hsig0")], 9,
         "HardSigmoid opset 6 form, default alpha 0.2, beta 0.5", scale=4.0)
    case("hardsigmoid6_torch", [N("HardSigmoid", ["x"], ["y"], "hsig0", alpha=1.0 / 6.0, beta=0.5)], 13,
         "HardSigmoid alpha 1/6, beta 0.5 (torch's nn.Hardsigmoid)", scale=4.0)
    case("hardswish14", [N("HardSwish", ["x"], ["y"], "hswish0")], 14, "HardSwish opset 14",
         scale=4.0)
    case("hardswish17", [N("HardSwish", ["x"], ["y"], "hswish0")], 17, "HardSwish opset 17",
         scale=4.0)
    case("prelu_slope_hw", [N("PRelu", ["x", "slope"], ["y"], "prelu0")], 16,
         "unsupported: PRelu whose slope [W] varies along the width",
         initializers=[init("slope", vec("slope", 8, "w", 0.3, 0.1))], scale=4.0,
         expect={"error": "unsupported op PRelu (opset 16) at node prelu0"})


def pool_cases():
    case("maxpool_k3s2p1", [N("MaxPool", ["x"], ["y"], "maxpool0", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1])],
         13, "MaxPool kernel 3 stride 2 pads 1 (8x8 -> 4x4)")
    case("maxpool_ceil", [N("MaxPool", ["x"], ["y"], "maxpool0", kernel_shape=[3, 3], strides=[2, 2],
                            ceil_mode=1)],
         13, "MaxPool kernel 3 stride 2 ceil_mode=1, no pads (8x8 -> 4x4; floor would give 3x3)")
    case("maxpool_pads_asym", [N("MaxPool", ["x"], ["y"], "maxpool0", kernel_shape=[3, 3], strides=[2, 2],
                                 pads=[0, 0, 1, 1])],
         13, "MaxPool kernel 3 stride 2, asymmetric pads [0,0,1,1] (8x8 -> 4x4)")
    case("maxpool_k2s2", [N("MaxPool", ["x"], ["y"], "maxpool0", kernel_shape=[2, 2], strides=[2, 2])],
         13, "MaxPool kernel 2 stride 2 (8x8 -> 4x4)")
    case("avgpool_pad_exclude", [N("AveragePool", ["x"], ["y"], "avgpool0", kernel_shape=[3, 3],
                                   strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)],
         13, "AveragePool kernel 3 stride 2 pads 1, count_include_pad=0 (padding not counted)")
    case("avgpool_pad_include", [N("AveragePool", ["x"], ["y"], "avgpool0", kernel_shape=[3, 3],
                                   strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)],
         13, "AveragePool kernel 3 stride 2 pads 1, count_include_pad=1 (padding counted as zeros)")
    case("avgpool_ceil", [N("AveragePool", ["x"], ["y"], "avgpool0", kernel_shape=[3, 3], strides=[2, 2],
                            ceil_mode=1)],
         13, "AveragePool kernel 3 stride 2 ceil_mode=1, no pads (8x8 -> 4x4; last window is clipped)")
    case("global_avgpool", [N("GlobalAveragePool", ["x"], ["y"], "gap0")], 13, "GlobalAveragePool (-> N,C,1,1)")
    case("reducemean13_attr", [N("ReduceMean", ["x"], ["y"], "reducemean0", axes=[2, 3], keepdims=1)],
         13, "ReduceMean over axes [2,3] keepdims 1, axes as attribute (opset 13)")
    case("reducemean18_input", [N("ReduceMean", ["x", "axes"], ["y"], "reducemean0", keepdims=1)],
         18, "ReduceMean over axes [2,3] keepdims 1, axes as a constant input (opset 18)",
         initializers=[init("axes", np.array([2, 3], dtype=np.int64))])


def shape_cases():
    case("flatten", [N("Flatten", ["x"], ["y"], "flatten0", axis=1)], 13, "Flatten axis 1 (-> N, C*H*W)")
    case("reshape_const", [N("Reshape", ["x", "shape"], ["y"], "reshape0")], 13,
         "Reshape to [N,-1] with a constant shape initializer [0,-1] (0 copies the batch dim)",
         initializers=[init("shape", np.array([0, -1], dtype=np.int64))])
    case("reshape_const_explicit", [N("Reshape", ["x", "shape"], ["y"], "reshape0")], 13,
         "Reshape to [N,-1] with a constant shape initializer [2,-1] (batch written out)",
         initializers=[init("shape", np.array([2, -1], dtype=np.int64))])
    # legacy torch x.view(x.size(0), -1)
    for opset in (11, 13):
        if opset < 13:
            unsq = N("Unsqueeze", ["n"], ["n1"], "unsqueeze0", axes=[0])
            inits = []
        else:
            unsq = N("Unsqueeze", ["n", "axes0"], ["n1"], "unsqueeze0")
            inits = [init("axes0", np.array([0], dtype=np.int64))]
        inits += [init("idx0", np.array(0, dtype=np.int64)), init("minus1", np.array([-1], dtype=np.int64))]
        case(f"reshape_shape_chain{opset}",
             [N("Shape", ["x"], ["s"], "shape0"),
              N("Gather", ["s", "idx0"], ["n"], "gather0", axis=0),
              unsq,
              N("Concat", ["n1", "minus1"], ["shape"], "concat0", axis=0),
              N("Reshape", ["x", "shape"], ["y"], "reshape0")],
             opset, f"legacy torch x.view(x.size(0), -1): Shape->Gather(0)->Unsqueeze->Concat([n,-1])->Reshape "
                    f"(opset {opset}, Unsqueeze axes {'attribute' if opset < 13 else 'input'})",
             initializers=inits)


def pad_resize_cases():
    case("pad9_attr", [N("Pad", ["x"], ["y"], "pad0", mode="constant", pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.0)],
         9, "Pad opset 9, pads attribute [0,0,1,2,0,0,2,1], mode constant, value 0")
    case("pad13_input", [N("Pad", ["x", "pads"], ["y"], "pad0", mode="constant")], 13,
         "Pad opset 13, pads as a constant input [0,0,1,2,0,0,2,1], mode constant (default value 0)",
         initializers=[init("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64))])
    case("upsample9_nearest", [N("Upsample", ["x", "scales"], ["y"], "upsample0", mode="nearest")], 9,
         "Upsample opset 9, nearest, scales input [1,1,2,2]",
         initializers=[init("scales", f32([1, 1, 2, 2]))])
    case("resize11_nearest",
         [N("Resize", ["x", "roi", "scales"], ["y"], "resize0", mode="nearest",
            coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
         11, "Resize opset 11, nearest, asymmetric, floor, scales [1,1,2,2] (empty roi)",
         initializers=[init("roi", f32([])), init("scales", f32([1, 1, 2, 2]))])
    case("resize13_linear_align_corners",
         [N("Resize", ["x", "", "", "sizes"], ["y"], "resize0", mode="linear",
            coordinate_transformation_mode="align_corners")],
         13, "Resize opset 13, linear, align_corners, sizes [2,4,13,13] (8x8 -> 13x13)",
         initializers=[init("sizes", np.array([2, 4, 13, 13], dtype=np.int64))])
    case("resize13_linear_half_pixel",
         [N("Resize", ["x", "", "scales"], ["y"], "resize0", mode="linear",
            coordinate_transformation_mode="half_pixel")],
         13, "Resize opset 13, linear, half_pixel, scales [1,1,2,2]",
         initializers=[init("scales", f32([1, 1, 2, 2]))])
    case("resize13_linear_pytorch_half_pixel",
         [N("Resize", ["x", "", "scales"], ["y"], "resize0", mode="linear",
            coordinate_transformation_mode="pytorch_half_pixel")],
         13, "Resize opset 13, linear, pytorch_half_pixel, scales [1,1,2,2]",
         initializers=[init("scales", f32([1, 1, 2, 2]))])


def constant_cases():
    C = 4
    name = "constant_node_weight"
    w = conv_w(name, 6, C, 3)
    case(name, [N("Constant", [], ["W"], "const_w", value=numpy_helper.from_array(w, "W")),
                N("Constant", [], ["B"], "const_b", value=numpy_helper.from_array(vec(name, 6, "b"), "B")),
                N("Conv", ["x", "W", "B"], ["y"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
         13, "Conv whose weight and bias come from Constant nodes (no initializers)")
    name = "constantofshape_weight"
    case(name, [N("ConstantOfShape", ["W__SHAPE"], ["W"], "cos_w",
                  value=numpy_helper.from_array(f32([0.02]), "")),
                N("ConstantOfShape", ["B__SHAPE"], ["B"], "cos_b",
                  value=numpy_helper.from_array(f32([0.1]), "")),
                N("Conv", ["x", "W", "B"], ["c"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                N("Relu", ["c"], ["y"], "relu0")],
         9, "Conv whose weight/bias are ConstantOfShape(shape initializer, value 0.02 / 0.1), "
            "like the onnx wheel's light_* models (opset 9)",
         initializers=[init("W__SHAPE", np.array([6, C, 3, 3], dtype=np.int64)),
                       init("B__SHAPE", np.array([6], dtype=np.int64))])


def chain_cases():
    """conv-bn-relu-pool chains at opsets 9, 11, 17, 21."""
    C, K = 3, 8
    for opset in (9, 11, 17, 21):
        name = f"chain{opset}"
        inits = [init("W", conv_w(name, K, C, 3)), init("B", vec(name, K, "b"))] + bn_params(name, K)
        nodes = [N("Conv", ["x", "W", "B"], ["c"], "conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 N("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["b"], "bn0",
                   epsilon=1e-5),
                 N("Relu", ["b"], ["r"], "relu0"),
                 N("MaxPool", ["r"], ["y"], "maxpool0", kernel_shape=[2, 2], strides=[2, 2])]
        case(name, nodes, opset, f"Conv-BatchNormalization-Relu-MaxPool chain at opset {opset} "
                                 f"(input 3x16x16, 8 channels)", in_shape=(2, C, 16, 16), initializers=inits)
    # a small "whole net" at opset 17 ending in Gemm
    name = "smallnet17"
    inits = [init("W1", conv_w(name, 8, 3, 3, "w1")), init("B1", vec(name, 8, "b1")),
             init("W2", conv_w(name, 8, 8, 3, "w2")), init("B2", vec(name, 8, "b2")),
             init("Wf", f32(rng_for(name, "wf").standard_normal((10, 8)) * 0.3)), init("Bf", vec(name, 10, "bf"))]
    nodes = [N("Conv", ["x", "W1", "B1"], ["c1"], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             N("Relu", ["c1"], ["r1"], "relu1"),
             N("Conv", ["r1", "W2", "B2"], ["c2"], "conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             N("Add", ["c2", "r1"], ["s"], "add_residual"),
             N("Relu", ["s"], ["r2"], "relu2"),
             N("GlobalAveragePool", ["r2"], ["g"], "gap"),
             N("Flatten", ["g"], ["f"], "flatten", axis=1),
             N("Gemm", ["f", "Wf", "Bf"], ["y"], "fc", transB=1)]
    case(name, nodes, 17, "small net at opset 17: Conv s2-Relu-Conv-residual Add-Relu-GlobalAveragePool-"
                          "Flatten-Gemm -> 10 logits", in_shape=(2, 3, 16, 16), initializers=inits)


# --------------------------------------------------------------------------------------------
# c. unsupported cases (expect an error)
# --------------------------------------------------------------------------------------------

def error_cases():
    C = 3

    def head(name):
        return ([N("Conv", ["x", "W1", "B1"], ["c1"], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 N("Relu", ["c1"], ["r1"], "relu1")],
                [init("W1", conv_w(name, 4, C, 3, "w1")), init("B1", vec(name, 4, "b1"))])

    name = "err_softmax_end"
    nodes, inits = head(name)
    inits += [init("Wf", f32(rng_for(name, "wf").standard_normal((10, 4)) * 0.3)), init("Bf", vec(name, 10, "bf"))]
    nodes += [N("GlobalAveragePool", ["r1"], ["g"], "gap"),
              N("Flatten", ["g"], ["f"], "flatten", axis=1),
              N("Gemm", ["f", "Wf", "Bf"], ["l"], "fc", transB=1),
              N("Softmax", ["l"], ["y"], "softmax_out", axis=1)]
    case(name, nodes, 13, "unsupported: Softmax at the end of a small conv net", in_shape=(2, C, 8, 8),
         initializers=inits, expect=None)
    MANIFEST[-1]["expect"] = unsupported(name, "softmax_out", 13)

    name = "err_sigmoid_middle"
    nodes, inits = head(name)
    inits += [init("W2", conv_w(name, 4, 4, 3, "w2")), init("B2", vec(name, 4, "b2"))]
    nodes += [N("Sigmoid", ["r1"], ["s"], "sigmoid_mid"),
              N("Conv", ["s", "W2", "B2"], ["y"], "conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    case(name, nodes, 13, "unsupported: Sigmoid between two convs", in_shape=(2, C, 8, 8),
         initializers=inits, expect=None)
    MANIFEST[-1]["expect"] = unsupported(name, "sigmoid_mid", 13)

    name = "err_div_two_tensors"
    nodes, inits = head(name)
    nodes += [N("Div", ["c1", "r1"], ["y"], "div_gate")]
    case(name, nodes, 13, "unsupported: Div of two non-constant tensors Conv(x) / Relu(Conv(x))",
         in_shape=(2, C, 8, 8), initializers=inits, expect=None)
    MANIFEST[-1]["expect"] = unsupported(name, "div_gate", 13)

    name = "err_gather_activation"
    nodes, inits = head(name)
    inits += [init("idx", np.array([0, 2], dtype=np.int64))]
    nodes += [N("Gather", ["r1", "idx"], ["y"], "gather_channels", axis=1)]
    case(name, nodes, 13, "unsupported: Gather (constant indices [0,2], axis 1) on a non-constant tensor",
         in_shape=(2, C, 8, 8), initializers=inits, expect=None)
    MANIFEST[-1]["expect"] = unsupported(name, "gather_channels", 13)

    name = "err_lstm"
    H = 4
    nodes, inits = head(name)
    # [2,4,8,8] -> [seq=2, batch=32, input=8]
    inits += [init("shape3", np.array([2, 32, 8], dtype=np.int64)),
              init("Wl", f32(rng_for(name, "wl").standard_normal((1, 4 * H, 8)) * 0.3)),
              init("Rl", f32(rng_for(name, "rl").standard_normal((1, 4 * H, H)) * 0.3)),
              init("Bl", f32(rng_for(name, "bl").standard_normal((1, 8 * H)) * 0.1))]
    nodes += [N("Reshape", ["r1", "shape3"], ["seq"], "reshape_seq"),
              N("LSTM", ["seq", "Wl", "Rl", "Bl"], ["y"], "lstm0", hidden_size=H)]
    case(name, nodes, 13, "unsupported: LSTM (hidden 4) on a Reshape of conv features [2,32,8]; "
         "the import stops at the first node it cannot compute, the 3-D Reshape",
         in_shape=(2, C, 8, 8), initializers=inits, expect=None)
    MANIFEST[-1]["expect"] = unsupported(name, "reshape_seq", 13)

    for opset in (8, 22):
        name = f"err_opset{opset}"
        nodes, inits = head(name)
        nodes[-1] = N("Relu", ["c1"], ["y"], "relu1")
        case(name, nodes, opset, f"unsupported: Conv-Relu at default-domain opset {opset}",
             in_shape=(2, C, 8, 8), initializers=inits,
             expect={"error": f"unsupported opset {opset} (ksnn imports opsets {MIN_OPSET} to {MAX_OPSET})"})


# --------------------------------------------------------------------------------------------
# b. whole small models exported from torch
# --------------------------------------------------------------------------------------------

def randomize_bn(model, seed: int, mean_scale: float = 0.5):
    """Non-trivial BatchNorm parameters and running statistics, so folding them matters."""
    import torch
    import torch.nn as nn
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.3 * torch.randn(c, generator=g))
                m.bias.copy_(0.3 * torch.randn(c, generator=g))
                m.running_mean.copy_(mean_scale * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))


def torch_cases():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


    def cbr(cin, cout, stride=1, groups=1, act=nn.ReLU):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), act())

    class MnistNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = cbr(1, 8)
            self.b2 = cbr(8, 8)
            self.b3 = cbr(8, 8)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 14 * 14, 10)

        def forward(self, x):
            a = self.b1(x)
            y = self.b3(self.b2(a)) + a
            y = self.pool(y)
            return self.fc(torch.flatten(y, 1))

    class ResNetish(nn.Module):
        """stem, a basic block, a stride-2 block with a 1x1 projection, GAP, fc."""

        def __init__(self):
            super().__init__()
            self.stem = cbr(3, 8)
            self.c1 = cbr(8, 8)
            self.c2 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8))
            self.d1 = cbr(8, 8, stride=2)
            self.d2 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8))
            self.proj = nn.Sequential(nn.Conv2d(8, 8, 1, 2, bias=False), nn.BatchNorm2d(8))
            self.relu = nn.ReLU()
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            x = self.stem(x)
            x = self.relu(self.c2(self.c1(x)) + x)
            x = self.relu(self.d2(self.d1(x)) + self.proj(x))
            return self.fc(torch.flatten(self.gap(x), 1))

    class MobileNetish(nn.Module):
        """stem, an inverted residual block (1x1 expand, depthwise 3x3, 1x1 project, residual),
        ReLU6 everywhere, GAP, fc."""

        def __init__(self):
            super().__init__()
            self.stem = cbr(3, 4, act=nn.ReLU6)
            self.expand = nn.Sequential(nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
            self.dw = cbr(8, 8, groups=8, act=nn.ReLU6)
            self.project = nn.Sequential(nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4))
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            x = self.stem(x)
            x = x + self.project(self.dw(self.expand(x)))
            return self.fc(torch.flatten(self.gap(x), 1))

    def export(name, net, in_shape, dynamo: bool, opset: int | None, what: str, dynamic_batch=False):
        path = OUT / f"{name}.onnx"
        x = rng_for(name).standard_normal(in_shape).astype(np.float32)
        xt = torch.from_numpy(x)
        with torch.no_grad():
            ref = net(xt).numpy()
        kw = dict(input_names=["input"], output_names=["logits"])
        if dynamo:
            prog = torch.onnx.export(net, (xt,), dynamo=True, opset_version=opset, external_data=True, **kw)
            # Save explicitly so every initializer (even tiny ones) goes to NAME.onnx.data.
            prog.save(str(path), external_data=True)
        else:
            if dynamic_batch:
                kw["dynamic_axes"] = {"input": {0: "N"}, "logits": {0: "N"}}
            torch.onnx.export(net, (xt,), str(path), dynamo=False, opset_version=opset,
                              do_constant_folding=True, **kw)
        model = onnx.load(str(path), load_external_data=False)
        assert all(n.name for n in model.graph.node), f"{name}: exporter left a node without a name"
        onnx.checker.check_model(str(path), full_check=True)
        if dynamo:
            data = OUT / f"{name}.onnx.data"
            ext = [t.name for t in model.graph.initializer
                   if t.data_location == TensorProto.EXTERNAL]
            inl = [t.name for t in model.graph.initializer
                   if t.data_location != TensorProto.EXTERNAL]
            locs = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
            assert data.exists(), f"{name}: no {data.name}"
            assert ext, f"{name}: no initializer has external_data"
            assert locs == {data.name}, f"{name}: external locations {locs}"
            n_const = sum(1 for n in model.graph.node if n.op_type == "Constant")
            what += (f"; weights in external file {data.name} ({len(ext)} of {len(model.graph.initializer)} "
                     f"initializers have external_data, location {data.name}"
                     + (f"; {len(inl)} stay inline: {', '.join(inl)}" if inl else "")
                     + (f"; {n_const} Constant nodes" if n_const else "") + ")")
            print(f"  {name}: {len(ext)}/{len(model.graph.initializer)} initializers external in {data.name}")
        ops = ops_of(model)
        if "BatchNormalization" not in ops:
            what += "; no BatchNormalization left (folded into Conv by the exporter)"
        record(name, model, x, what, "ok", torch_out=ref)

    cases = [
        ("mnist", MnistNet, (2, 1, 28, 28),
         "MNIST-shaped CNN (1x28x28): 3x conv-bn-relu (8 ch) with residual add b1+b3, MaxPool 2, "
         "Flatten, Linear 1568->10", 13),
        ("resnetish", ResNetish, (2, 3, 16, 16),
         "ResNet-ish: stem conv-bn-relu, basic block with identity residual, stride-2 block with 1x1 "
         "projection residual, global average pool, Linear 8->10", 11),
        ("mobilenetish", MobileNetish, (2, 3, 16, 16),
         "MobileNet-ish: stem conv-bn-ReLU6, inverted residual (1x1 expand 4->8, depthwise 3x3, 1x1 "
         "project 8->4, residual add), ReLU6 as Clip, global average pool, Linear 4->10", 11),
    ]
    for i, (base, cls, in_shape, what, legacy_opset) in enumerate(cases):
        torch.manual_seed(100 + i)
        net = cls()
        randomize_bn(net, 200 + i)
        net.eval()
        export(f"{base}_legacy", net, in_shape, False, legacy_opset,
               f"{what}; torch legacy exporter (dynamo=False, opset {legacy_opset}, eval)")
        export(f"{base}_dynamo", net, in_shape, True, None,
               f"{what}; torch dynamo exporter (dynamo=True, its default opset, eval, saved by the exporter "
               f"with external_data=True)")
        if base == "mnist":
            export("mnist_legacy_dynbatch", net, in_shape, False, 13,
                   f"{what}; torch legacy exporter (opset 13) with a dynamic batch dim 'N' on input "
                   f"and output (dim_param)", dynamic_batch=True)


def int8_weights(model: onnx.ModelProto, min_elements: int = 256) -> tuple[onnx.ModelProto, int]:
    """Stores each float initializer of at least `min_elements` as int8 with one float scale per
    slice of axis 0, rebuilt in the graph by Cast and Mul (constants the importer folds): 4x
    smaller, so a real architecture fits the fixtures' size cap. The weights change (rounded to
    127 levels per output channel), so the expected outputs are onnxruntime's on this model."""
    g = model.graph
    keep, prologue, n = [], [], 0
    for t in g.initializer:
        w = numpy_helper.to_array(t)
        if w.dtype != np.float32 or w.size < min_elements:
            keep.append(t)
            continue
        flat = w.reshape(w.shape[0], -1)
        scale = (np.abs(flat).max(axis=1) / 127.0).astype(np.float32)
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(flat / scale[:, None]), -127, 127).astype(np.int8).reshape(w.shape)
        s_shape = (w.shape[0],) + (1,) * (w.ndim - 1)
        keep += [init(f"{t.name}__q", q), init(f"{t.name}__scale", scale.reshape(s_shape))]
        prologue += [N("Cast", [f"{t.name}__q"], [f"{t.name}__qf"], f"{t.name}__cast", to=TensorProto.FLOAT),
                     N("Mul", [f"{t.name}__qf", f"{t.name}__scale"], [t.name], f"{t.name}__dequant")]
        n += 1
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = prologue + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return model, n


def model_cases():
    """Whole architectures with the activations beyond ReLU: torchvision's MobileNetV3-small
    (HardSwish, HardSigmoid in its squeeze-and-excitation gates, ReLU) and a small MNIST-shaped
    CNN with LeakyReLU and PReLU (per-channel and shared), as detectors use them."""
    import torch
    import torch.nn as nn
    import torchvision

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


    class LeakyNet(nn.Module):
        """conv-bn-LeakyReLU(0.1), conv-bn-PReLU(8), max pool, depthwise conv-PReLU(shared),
        global average pool, fc: the activations a YOLO-style backbone uses."""

        def __init__(self):
            super().__init__()
            self.c1 = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
                                    nn.LeakyReLU(0.1))
            self.c2 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.PReLU(8))
            self.pool = nn.MaxPool2d(2)
            self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.PReLU())
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            x = self.pool(self.c2(self.c1(x)))
            return self.fc(torch.flatten(self.gap(self.dw(x)), 1))

    def export(name, net, in_shape, opset, what, quantize=False, keep_bn=False):
        path = OUT / f"{name}.onnx"
        x = rng_for(name).standard_normal(in_shape).astype(np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        # PRESERVE skips the exporter's eval-mode Conv+BatchNorm fusion: the BatchNormalization
        # nodes stay, so the imported graph trains with batch norms as the original does.
        mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
        torch.onnx.export(net, (torch.from_numpy(x),), str(path), dynamo=False, opset_version=opset,
                          do_constant_folding=True, training=mode, input_names=["input"],
                          output_names=["logits"])
        model = onnx.load(str(path))
        assert all(n.name for n in model.graph.node), f"{name}: exporter left a node without a name"
        y = ort_run(path, x)
        diff = float(np.max(np.abs(y - ref)))
        assert diff <= 1e-4, f"{name}: onnxruntime vs torch max abs diff {diff}"
        print(f"  {name}: onnxruntime vs torch max abs diff {diff:.2e} (before int8 weights)")
        if quantize:
            model, n = int8_weights(model)
            onnx.checker.check_model(model, full_check=True)
            onnx.save(model, str(path))
            what += (f"; the {n} largest initializers stored as int8 + per-output-channel scale, "
                     f"rebuilt by Cast and Mul (weights rounded, so no torch comparison after)")
        y = record(name, model, x, what, "ok", torch_out=None if quantize else ref)
        print(f"  {name}: output max abs {float(np.max(np.abs(y))):.3g}")

    torch.manual_seed(300)
    net = torchvision.models.mobilenet_v3_small(num_classes=10)
    randomize_bn(net, 301, mean_scale=0.1)
    with torch.no_grad():
        # torchvision initialises the classifier at std 0.01, which leaves logits of ~0.02;
        # 1/sqrt(fan-in) gives outputs of unit scale, where fixed-point errors show.
        for m in net.classifier:
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, m.in_features ** -0.5)
                m.bias.normal_(0.0, 0.1)
    net.eval()
    export("mobilenetv3_small", net, (2, 3, 64, 64), 17,
           f"torchvision {torchvision.__version__} mobilenet_v3_small(num_classes=10), width 1.0, random "
           "weights (torch.manual_seed(300), BatchNorm statistics randomised, classifier at std 1/sqrt(fan-in)), "
           "64x64 input; torch legacy "
           "exporter, opset 17, eval with BatchNormalization kept (TrainingMode.PRESERVE, so ksnn can "
           "train it): HardSwish, HardSigmoid + Mul squeeze-and-excitation gates, ReLU, depthwise "
           "3x3/5x5 stride 2, residual Add, Gemm", quantize=True, keep_bn=True)
    torch.manual_seed(310)
    net = LeakyNet()
    randomize_bn(net, 311, mean_scale=0.1)
    with torch.no_grad():
        net.c2[2].weight.copy_(0.1 + 0.3 * torch.rand(8))
        net.dw[1].weight.fill_(0.2)
    net.eval()
    export("leaky_prelu_net", net, (2, 1, 28, 28), 13,
           "MNIST-shaped CNN: conv-bn-LeakyReLU(0.1), conv-bn-PReLU(8 slopes), MaxPool 2, depthwise "
           "conv-PReLU(one shared slope), global average pool, Linear 8->10; torch legacy exporter, "
           "opset 13, eval")


# --------------------------------------------------------------------------------------------
# 3. the onnx wheel's light models
# --------------------------------------------------------------------------------------------

def copy_light():
    src = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    dst = OUT / "light"
    dst.mkdir()
    lines = []
    for f in sorted(src.glob("light_*.onnx")):
        shutil.copyfile(f, dst / f.name)
        m = onnx.load(str(f))
        cnt = collections.Counter(n.op_type for n in m.graph.node)
        lines.append(f"  {f.name:26s} {f.stat().st_size:7d} B  IR {m.ir_version}, opset {default_opset(m)}, "
                     f"{len(m.graph.node)} nodes: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(cnt.items())))
    lic = Path(onnx.__file__).parent.parent / f"onnx-{onnx.__version__}.dist-info" / "licenses" / "LICENSE"
    lic_first = " ".join(lic.read_text().split()[:4]) if lic.exists() else "(LICENSE file not found)"
    (dst / "SOURCES.txt").write_text(
        f"light_*.onnx: copied unchanged from the onnx Python wheel, version {onnx.__version__} "
        f"(pip install onnx=={onnx.__version__}),\n"
        f"path onnx/backend/test/data/light/ inside the installed package.\n"
        f"License: Apache-2.0 (the wheel's onnx-{onnx.__version__}.dist-info/licenses/LICENSE: "
        f"\"{lic_first}\"; METADATA: License Apache License v2.0).\n"
        f"Copyright (c) ONNX Project Contributors.\n\n"
        f"These are the real architectures of the ONNX model-zoo networks; every weight is replaced by\n"
        f"ConstantOfShape(<NAME>__SHAPE initializer) with a constant value, so the files are small.\n"
        f"Inputs are 1x3x224x224 (IR 3 files also list the weights' names as graph inputs).\n"
        f"The wheel's *_output_0.pb reference outputs are not copied. Copied by tools/onnx_fixtures.py.\n\n"
        + "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------

def main():
    import torch
    import onnxscript

    versions = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "onnxscript": onnxscript.__version__,
        "torch": torch.__version__,
        "torchvision": __import__("torchvision").__version__,
    }
    print("versions:", versions)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    print("hand-built cases")
    conv_cases()
    dense_cases()
    elementwise_cases()
    activation_cases()
    pool_cases()
    shape_cases()
    pad_resize_cases()
    constant_cases()
    chain_cases()
    print("error cases")
    error_cases()
    print("torch exports")
    torch_cases()
    print("whole architectures")
    model_cases()
    print("light models")
    copy_light()

    names = [c["name"] for c in MANIFEST]
    assert len(set(names)) == len(names)
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1) + "\n")

    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    assert total < MAX_TOTAL_BYTES, f"fixtures are {total} bytes"

    n_ok = sum(1 for c in MANIFEST if c["expect"] == "ok")
    (OUT / "SOURCES.txt").write_text(
        "Everything in this directory is generated by tools/onnx_fixtures.py (see its header), run as\n"
        "    python3 -m venv /tmp/onnxgen\n"
        "    /tmp/onnxgen/bin/pip install torch==2.13.0 torchvision==0.28.0 onnx==1.23.2 onnxruntime onnxscript numpy\n"
        "    /tmp/onnxgen/bin/python tools/onnx_fixtures.py\n\n"
        "Package versions used:\n"
        + "".join(f"    {k} {v}\n" for k, v in versions.items())
        + "\n"
        f"{len(MANIFEST)} cases ({n_ok} expected to import, {len(MANIFEST) - n_ok} expected to fail), listed in\n"
        "manifest.json. Per case: NAME.onnx (+ NAME.onnx.data for the dynamo exports), NAME.in.npy\n"
        "(float32 NCHW batch 2, standard normal (times 4 for the activation cases), seed = crc32(NAME)),\n"
        "NAME.out.npy (float32, the first\n"
        "graph output computed by onnxruntime, CPU, 1 thread). Cases not named *_legacy/*_dynamo are\n"
        "built node by node with onnx.helper and pass onnx.checker full_check; the torch exports were\n"
        "checked against torch's own output (max abs diff <= 1e-4). All inputs/weights are synthetic\n"
        "(random), written by the script: no third-party data.\n"
        "light/: copied from the onnx wheel, see light/SOURCES.txt (Apache-2.0).\n")
    print(f"{len(MANIFEST)} cases, {total} bytes in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
