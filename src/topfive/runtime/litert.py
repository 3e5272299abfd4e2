"""The "litert" runtime: a TFLite file in LiteRT (`ai-edge-litert`, the TFLite runtime), CPU with XNNPACK.

Quantized outputs are dequantized with the tensor's own scale and zero point. Models saved with
batch 1 whose graph does not resize (a Reshape to [1, classes]) run one image at a time.

The interpreter holds each call's state (its input and output buffers, the batch it is allocated
for), so a lock makes resize, set, invoke and read one step: otherwise threads sharing a runtime
resize it under one another (RuntimeError) or read one another's output. Callers take turns; each
call still uses the interpreter's `threads` cores.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from topfive.runtime.base import (
    GraphRuntime,
    RuntimeMissing,
    all_cores,
    cpu_only,
    require,
    run_in_slices,
)


def interpreter_class():
    try:
        return require("ai_edge_litert.interpreter", "tflite", "TFLite models").Interpreter
    except RuntimeMissing as e:
        raise RuntimeMissing(f"{e} (or run them in OpenVINO: TOPFIVE_TFLITE_RUNTIME=openvino)") from e


class LiteRtRuntime(GraphRuntime):
    name = "litert"
    precision = "as stored"  # LiteRT runs the file's own kernels (integer for quantized models)

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
    ):
        interpreter = interpreter_class()
        cpu_only(device, "LiteRT")
        self.path, self.device = path, str(device)
        # LiteRT's own default is one thread; ONNX Runtime, OpenVINO and torch use every core unless told
        self.threads = int(threads) if threads else all_cores()
        self.interpreter = interpreter(model_path=str(path), num_threads=self.threads)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"{path}: the model has {len(inputs)} inputs; topfive feeds one image tensor")
        self.input = inputs[0]
        self.output = self.interpreter.get_output_details()[0]
        signature = self.input.get("shape_signature", self.input["shape"])
        self.input_name = self.input["name"]
        self.input_shape = [int(d) for d in signature]
        self.input_dtype = np.dtype(self.input["dtype"]).name
        self.output_names = [self.output["name"]]
        self.output_shape = [int(d) for d in self.output.get("shape_signature", self.output["shape"])]
        self.fixed_batch = None if signature[0] == -1 else int(signature[0])
        self.output_kind, self.label_offset = output_kind, label_offset
        scale, zero_point = self.output["quantization"]
        integral = np.issubdtype(self.output["dtype"], np.integer)
        if integral and not scale:
            raise ValueError(f"{path}: integer output without a scale")
        self.quantization = (scale, zero_point) if integral else None
        self.allocated_batch = int(self.input["shape"][0])
        self.lock = threading.Lock()

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            if len(batch) != self.allocated_batch:
                self.interpreter.resize_tensor_input(self.input["index"], list(batch.shape))
                self.interpreter.allocate_tensors()
                self.allocated_batch = len(batch)
            self.interpreter.set_tensor(self.input["index"], batch)
            self.interpreter.invoke()
            # a copy, taken under the lock: the output buffer is the next call's to overwrite
            return self.interpreter.get_tensor(self.output["index"]).copy()

    def raw(self, batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(self.input["dtype"], copy=False)
        return run_in_slices(self.run_batch, batch, self.fixed_batch).reshape(len(batch), -1)


def build(request) -> LiteRtRuntime:
    return LiteRtRuntime(request.entry.model_path(), **request.graph_options())
