"""Parameters and multiply-accumulates counted from a model graph (ONNX, or anything OpenVINO reads).

Counted like torchvision's metadata: params = the weights and biases of convolutions and fully
connected layers (quantization scales, zero points and shape constants are not parameters); MACs =
for each convolution, output elements x (input channels / groups) x kernel area; for each matrix
product, output elements x the inner dimension. Batch-norm folded into convolutions (as in all these
deployment files) leaves nothing else to count. Batch is taken as 1.

Counting reads the whole graph (about a second), so `graph_stats` keeps its results in the cache
($TOPFIVE_CACHE/models/graphstats.json), by the file's sha256.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from topfive.files import atomic_write, cache_dir

# ONNX: op -> (weight input index, bias input index or None)
ONNX_WEIGHTS = {"Conv": (1, 2), "QLinearConv": (3, 8), "Gemm": (1, 2), "MatMul": (1, None), "QLinearMatMul": (3, None)}


def _onnx_output_shapes(model, names: list[str]) -> dict[str, tuple]:
    """Shapes of intermediate tensors, by running the graph once on zeros (batch 1) in ONNX Runtime.
    ONNX's own shape inference stops at contrib ops such as QLinearAdd."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    known = {o.name for o in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        dtype = helper.tensor_dtype_to_np_dtype(
            next(v.type.tensor_type.elem_type for v in model.graph.input if v.name == i.name)
        )
        feeds[i.name] = np.zeros(shape, dtype=dtype)
    return {name: value.shape for name, value in zip(names, session.run(names, feeds))}


def onnx_stats(path: str | Path) -> tuple[int, int]:
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    init = {t.name: tuple(t.dims) for t in graph.initializer}
    layers = [n for n in graph.node if n.op_type in ONNX_WEIGHTS and n.input[ONNX_WEIGHTS[n.op_type][0]] in init]
    shapes = _onnx_output_shapes(model, [n.output[0] for n in layers])
    params = macs = 0
    counted = set()
    for node in layers:
        w_i, b_i = ONNX_WEIGHTS[node.op_type]
        w = node.input[w_i]
        names = [w] + ([node.input[b_i]] if b_i is not None and len(node.input) > b_i and node.input[b_i] else [])
        for name in names:
            if name in init and name not in counted:
                params += math.prod(init[name])
                counted.add(name)
        out = shapes[node.output[0]]
        if node.op_type in ("Conv", "QLinearConv"):
            macs += math.prod(out) * math.prod(init[w][1:])  # (Cin/groups) x kh x kw
        else:
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            macs += math.prod(out) * init[w][1 if transposed else 0]
    # biases added after a matrix product: a 1-D initializer in an Add / QLinearAdd
    produced_by_layer = {n.output[0] for n in layers if n.op_type in ("MatMul", "QLinearMatMul")}
    for node in graph.node:
        if node.op_type in ("Add", "QLinearAdd") and produced_by_layer & set(node.input):
            for name in node.input:
                if name in init and len(init[name]) == 1 and init[name][0] > 1 and name not in counted:
                    params += init[name][0]
                    counted.add(name)
    return params, macs


def openvino_stats(path: str | Path) -> tuple[int, int]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    constant: dict[str, bool] = {}

    def is_constant(node) -> bool:  # no Parameter upstream
        key = node.get_friendly_name()
        if key not in constant:
            kind = node.get_type_name()
            constant[key] = kind == "Constant" or (
                kind != "Parameter" and all(is_constant(v.get_node()) for v in node.input_values())
            )
        return constant[key]

    params = macs = 0
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        if kind not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        weight = node.input_value(1)
        if not is_constant(weight.get_node()):
            continue
        w = [d.get_length() for d in weight.get_partial_shape()]
        out = [d.get_length() for d in node.get_output_partial_shape(0)]
        out[0] = 1
        params += math.prod(w)
        if kind == "Convolution":
            macs += math.prod(out) * math.prod(w[1:])
        elif kind == "GroupConvolution":
            macs += math.prod(out) * math.prod(w[2:])
        else:
            inner = w[-1] if node.get_attributes().get("transpose_b") else w[-2]
            macs += math.prod(out) * inner
        for target in node.output(0).get_target_inputs():
            add = target.get_node()
            if add.get_type_name() == "Add":
                other = add.input_value(1 - target.get_index())
                if is_constant(other.get_node()):
                    params += math.prod(d.get_length() for d in other.get_partial_shape())
    return params, macs


def graph_stats(fmt: str, path: str | Path, sha256: str) -> tuple[int | None, float | None, str]:
    """(params, GMACs per image, how they were counted) for the model file at `path` in format `fmt`
    ("onnx", or one OpenVINO reads); None where the graph cannot be read here."""
    memo_file = cache_dir("models", create=False) / "graphstats.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if sha256 in memo:
        return tuple(memo[sha256])
    try:
        if fmt == "onnx":
            params, macs = onnx_stats(path)
            how = "counted from the ONNX graph (conv/matmul weights and biases; MACs at batch 1)"
        else:
            params, macs = openvino_stats(path)
            how = "counted from the graph as OpenVINO reads it (conv/matmul weights and biases; MACs at batch 1)"
    except ImportError:
        return None, None, "unknown (the package that reads this graph is not installed)"
    except Exception as e:  # a graph these counters do not understand: unknown, not guessed
        return None, None, f"unknown (could not count: {type(e).__name__}: {e})"
    memo[sha256] = (params, macs / 1e9, how)
    try:
        atomic_write(memo_file, json.dumps(memo, indent=1))
    except OSError:
        pass  # a read-only cache only costs the recount
    return params, macs / 1e9, how
