"""The "onnxruntime" and "int8" runtimes: an ONNX file in ONNX Runtime (CPU, or CUDA where the
provider exists) -- an ONNX model card, a zoo model's export (export.py) or its int8 quantisation
(quantize.py).

Safe to share between threads as it is: ONNX Runtime documents `InferenceSession.run` as
thread-safe (each call has its own buffers), so no lock would serialise the callers.
"""

from __future__ import annotations

import os

import numpy as np

from topfive.runtime.base import GraphRuntime, require

SPIN = ("always", "runs", "never")

ONNX_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


class OnnxRuntime(GraphRuntime):
    """`spin`: when idle intra-op threads busy-wait for work. "always" (ONNX Runtime's default:
    also between runs, for a while), "runs" (only during a run: they stop when it returns, leaving
    the cores to decode threads between batches), "never"."""

    name = "onnxruntime"
    precision = "fp32"  # set per file by build(): "int8" for the quantised export, "as stored" for a card

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
        spin: str = "always",
        name: str = "onnxruntime",
        precision: str = "fp32",
    ):
        if spin not in SPIN:
            raise ValueError(f"spin must be one of {', '.join(SPIN)}, not {spin!r}")
        ort = require("onnxruntime", "onnx", "ONNX models")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        if spin == "never":
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        elif spin == "runs":
            options.add_session_config_entry("session.force_spinning_stop", "1")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.path, self.spin, self.device = path, spin, str(device)
        self.name, self.precision = name, precision
        self.output_kind, self.label_offset = output_kind, label_offset
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape = [d if isinstance(d, int) else -1 for d in first.shape]
        self.input_dtype = ONNX_DTYPES.get(first.type, first.type)
        first_output = self.session.get_outputs()[0]  # the one topfive reads
        self.output_names = [first_output.name]
        self.output_shape = [d if isinstance(d, int) else -1 for d in first_output.shape]

    @property
    def threads(self) -> int:
        """The intra-op threads the session was given (0: ONNX Runtime's default, all cores)."""
        return self.session.get_session_options().intra_op_num_threads

    def raw(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def build(request) -> OnnxRuntime:
    """An ONNX card's file, or a zoo model's export (made once; cached)."""
    require("onnxruntime", "onnx", "the onnxruntime runtime")
    if request.is_card:  # the graph's own types: a quantized card runs in int8
        return OnnxRuntime(request.entry.model_path(), precision="as stored", **request.graph_options())
    return OnnxRuntime(request.onnx_export(), **request.graph_options())
