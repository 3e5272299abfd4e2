"""The "openvino" runtime: OpenVINO on the CPU, for an IR card (.xml + .bin), a TFLite card, or a
zoo model's ONNX export (OpenVINO reads .onnx).

Precision is set to f32 explicitly: on CPUs with avx512_bf16 / AMX, OpenVINO otherwise runs
floating-point layers in bf16 without saying so, and answers differ from machine to machine.
Quantized layers of an int8 graph still run in int8. "openvino-bf16" asks for bf16 under its own
name (zoo models' exports), only on CPUs that run it natively (avx512_bf16 or AMX): elsewhere it
is refused with a clear error, as it is when OpenVINO reads back another precision after compiling,
so that a row named bf16 was run in bf16.

A model saved with a fixed batch of 1 is reshaped to a dynamic batch when the graph allows it;
otherwise batches are run one slice at a time.

Each thread runs its own infer request (`compiled.create_infer_request()`, made on its first call):
a request holds its input and output tensors, and the compiled model's own `__call__` reuses one
request for every caller, so threads sharing it would fail or read one another's output. Requests
share the compiled graph and weights; each adds its own activation buffers.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from topfive.machine import cpu_name, isa_flags
from topfive.runtime.base import GraphRuntime, cpu_only, require, run_in_slices

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # the CPU features with native bf16 arithmetic
PRECISIONS = {"f32": "fp32", "bf16": "bf16"}  # OpenVINO's hint -> the runtime's `precision`


class Bf16Unsupported(ValueError):
    """openvino-bf16 on a CPU without native bf16 (avx512_bf16 or AMX)."""


def check_bf16(read_back: str | None = None) -> None:
    """Refuse bf16 where the CPU lacks it, or where OpenVINO compiled the model in another precision."""
    if not set(BF16_FLAGS) & set(isa_flags()):
        raise Bf16Unsupported(
            f"openvino-bf16 needs a CPU with native bf16 ({' or '.join(BF16_FLAGS)}); {cpu_name()} has "
            "neither: use the openvino runtime (fp32)"
        )
    if read_back is not None and read_back != "bf16":
        raise Bf16Unsupported(f"openvino-bf16: OpenVINO compiled the model in {read_back}, not bf16, on this CPU")


def fake_quantize_range(output) -> tuple[float, float] | None:
    """OpenVINO keeps a quantized output as float -> FakeQuantize -> Convert(u8/i8): (scale, zero point)."""
    node = output.get_node()
    while node.get_type_name() in ("Result", "Convert", "Reshape", "Squeeze"):
        node = node.input_value(0).get_node()
    if node.get_type_name() != "FakeQuantize":
        return None
    lo, hi, out_lo, out_hi = (float(node.input_value(i).get_node().get_data().reshape(-1)[0]) for i in range(1, 5))
    levels = node.get_attributes()["levels"]
    if abs((out_hi - out_lo) - (levels - 1)) > 1e-6:
        return None
    scale = (hi - lo) / (levels - 1)
    return scale, out_lo - lo / scale  # integer out_lo maps to real lo


class OpenVinoRuntime(GraphRuntime):
    """`precision`: OpenVINO's INFERENCE_PRECISION_HINT, "f32" (the "openvino" runtime) or "bf16"
    ("openvino-bf16"), set explicitly either way and checked against what OpenVINO compiled."""

    name = "openvino"
    precision = "fp32"

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
        weights_path: str | os.PathLike | None = None,
        precision: str = "f32",
    ):
        ov = require("openvino", "openvino", "OpenVINO IR and TFLite models")
        cpu_only(device, "OpenVINO")
        if precision not in PRECISIONS:
            raise ValueError(f"OpenVINO precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        if precision == "bf16":
            check_bf16()  # before reading and compiling: those take seconds
            self.name = "openvino-bf16"
        self.precision = PRECISIONS[precision]
        self.path, self.device = path, str(device)
        self.core = ov.Core()
        self.config = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.output_kind, self.label_offset = output_kind, label_offset
        files = [str(path)] + ([str(weights_path)] if weights_path else [])
        read = lambda: self.core.read_model(*files)
        model = read()
        if len(model.inputs) != 1:
            raise ValueError(f"{path}: the model has {len(model.inputs)} inputs; topfive feeds one image tensor")
        out = model.outputs[0]
        self.quantization = None
        if out.get_element_type().is_integral():
            self.quantization = fake_quantize_range(out)
            if self.quantization is None:
                raise ValueError(f"{path}: integer output without a readable scale and zero point")
        shape = model.inputs[0].get_partial_shape()
        self.input_shape = [d.get_length() if d.is_static else -1 for d in shape]
        self.input_name = model.inputs[0].get_any_name()
        self.input_dtype = np.dtype(model.inputs[0].get_element_type().to_dtype()).name
        self.output_names = sorted(out.get_names())
        self.fixed_batch = self.input_shape[0] if self.input_shape[0] > 0 else None
        if self.fixed_batch and self.make_batch_dynamic(ov, model):
            self.fixed_batch = None
        elif self.fixed_batch:
            model = read()  # undo the trial reshape with a fresh copy of the graph
        out_shape = model.outputs[0].get_partial_shape()
        self.output_shape = (
            [d.get_length() if d.is_static else -1 for d in out_shape] if out_shape.rank.is_static else []
        )
        self.compiled = self.core.compile_model(model, "CPU", self.config)
        if precision == "bf16":
            check_bf16(self.inference_precision)
        self.requests = threading.local()

    def make_batch_dynamic(self, ov, model) -> bool:
        """Reshape the input to a dynamic batch; it worked when the output batch became dynamic too.
        (Graphs with a Reshape to [1, classes] inside keep a static output: those run in slices.
        Checked on the graph, not by a trial inference, which can crash OpenVINO on such graphs.)"""
        try:
            model.reshape({model.inputs[0]: ov.PartialShape([-1] + self.input_shape[1:])})
        except Exception:
            return False
        out = model.outputs[0].get_partial_shape()
        return out.rank.is_static and out.rank.get_length() > 0 and out[0].is_dynamic

    @property
    def threads(self) -> int:
        """The inference threads the compiled model uses."""
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    @property
    def inference_precision(self) -> str:
        """The precision the compiled model runs floating-point layers in, as OpenVINO reports it ("f32", "bf16")."""
        return self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()

    def request(self):
        """This thread's infer request, made on its first call."""
        request = getattr(self.requests, "request", None)
        if request is None:
            request = self.requests.request = self.compiled.create_infer_request()
        return request

    def infer(self, batch: np.ndarray) -> np.ndarray:
        # the outputs are copied out of the request (share_outputs=False): its next run overwrites them
        return self.request().infer({0: batch}, share_inputs=True, share_outputs=False)[0]

    def raw(self, batch: np.ndarray) -> np.ndarray:
        return run_in_slices(self.infer, batch, self.fixed_batch).reshape(len(batch), -1)


def build(request) -> OpenVinoRuntime:
    """An IR card (.xml + .bin), a TFLite card, or a zoo model's ONNX export; "openvino-bf16": the export in bf16."""
    require("openvino", "openvino", f"the {request.kind} runtime")
    if request.kind == "openvino-bf16":
        check_bf16()  # before the export, which takes seconds
        return OpenVinoRuntime(request.onnx_export(), precision="bf16", **request.graph_options())
    if not request.is_card:
        return OpenVinoRuntime(request.onnx_export(), **request.graph_options())
    entry = request.entry
    return OpenVinoRuntime(entry.model_path(), weights_path=entry.weights_path(), **request.graph_options())
