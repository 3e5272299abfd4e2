"""Runtimes other than eager PyTorch, behind the `Backend` interface of backends.py.

One layer for every non-PyTorch model: ONNX files described by a model card, and torchvision /
EfficientNet-Lite models exported to ONNX by the fast-inference backends, run through the same
`OnnxRuntimeBackend`. Runtimes are optional extras; a missing one is a `RuntimeMissing` error
that says what to install.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from topfive.runtime.backends import Backend


class RuntimeMissing(ImportError):
    pass


def require(module: str, extra: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeMissing(
            f"{what} needs the Python package `{module}`, which is not installed: "
            f"pip install 'topfive[{extra}]'"
        ) from e


def to_probabilities(scores: np.ndarray, kind: str = "logits", label_offset: int = 0) -> torch.Tensor:
    """Model outputs -> N x 1000 probabilities in ImageNet-1k order.

    `label_offset` drops leading background classes (TF-slim models output 1001 scores, background
    first). Probabilities are renormalised after the drop so each row sums to 1.
    """
    scores = torch.from_numpy(np.asarray(scores, dtype=np.float32).reshape(len(scores), -1))
    if kind == "logits":
        scores = scores[:, label_offset:]
        return scores.softmax(dim=-1)
    if kind != "probabilities":
        raise ValueError(f"unknown output kind {kind!r}")
    probs = scores[:, label_offset:].clamp_min(0)
    return probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class RuntimeBackend(Backend):
    """A model in a runtime other than PyTorch: subclasses set `output_kind`, `label_offset` and,
    for integer outputs, `quantization` = (scale, zero point), and implement `raw` on numpy batches."""

    output_kind = "logits"
    label_offset = 0
    quantization: tuple[float, float] | None = None

    def raw(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """Real-valued outputs: raw ones, dequantized where the model outputs integers."""
        raw = self.raw(batch)
        return dequantize(raw, *self.quantization) if self.quantization else raw

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        scores = self.scores(np.ascontiguousarray(batch.cpu().numpy()))
        return to_probabilities(scores, self.output_kind, self.label_offset)


SPIN = ("always", "runs", "never")


class OnnxRuntimeBackend(RuntimeBackend):
    """An ONNX model in ONNX Runtime (CPU, or CUDA where the provider exists)."""

    name = "onnx"

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
        spin: str = "always",
    ):
        """`spin`: when idle intra-op threads busy-wait for work. "always" (ONNX Runtime's default:
        also between runs, for a while), "runs" (only during a run: they stop when it returns,
        leaving the cores to decode threads between batches), "never"."""
        if spin not in SPIN:
            raise ValueError(f"spin must be one of {', '.join(SPIN)}, not {spin!r}")
        ort = require("onnxruntime", "onnx", "ONNX models")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        if spin == "never":
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        elif spin == "runs":
            options.add_session_config_entry("session.force_spinning_stop", "1")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.spin = spin
        self.input_name = self.session.get_inputs()[0].name
        self.output_kind = output_kind
        self.label_offset = label_offset

    def raw(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def dequantize(values: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    """A quantized tensor -> real values: (q - zero_point) * scale."""
    return (np.asarray(values, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)


def run_in_slices(run, batch: np.ndarray, fixed_batch: int | None) -> np.ndarray:
    """Call `run` on the whole batch, or slice by slice where the model takes a fixed batch size."""
    if not fixed_batch or len(batch) == fixed_batch:
        return run(batch)
    if len(batch) % fixed_batch:
        raise ValueError(f"this model takes batches of exactly {fixed_batch}, got {len(batch)}")
    return np.concatenate([run(batch[i : i + fixed_batch]) for i in range(0, len(batch), fixed_batch)])


def cpu_only(device: str, what: str) -> None:
    if not device.startswith("cpu"):
        raise ValueError(f"{what} runs on the CPU here; device {device!r} is not supported for it")


def _fake_quantize_range(output) -> tuple[float, float] | None:
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


class OpenVinoBackend(RuntimeBackend):
    """An OpenVINO IR (.xml + .bin) or a TFLite file in OpenVINO (CPU).

    A model saved with a fixed batch of 1 is reshaped to a dynamic batch when the graph allows it;
    otherwise batches are run one slice at a time.
    """

    name = "openvino"

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
        weights_path: str | os.PathLike | None = None,
    ):
        ov = require("openvino", "openvino", "OpenVINO IR and TFLite models")
        cpu_only(device, "OpenVINO")
        self.core = ov.Core()
        self.config = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
        self.output_kind = output_kind
        self.label_offset = label_offset
        files = [str(path)] + ([str(weights_path)] if weights_path else [])
        read = lambda: self.core.read_model(*files)  # noqa: E731
        model = read()
        if len(model.inputs) != 1:
            raise ValueError(f"{path}: the model has {len(model.inputs)} inputs; topfive feeds one image tensor")
        out = model.outputs[0]
        self.quantization = None
        if out.get_element_type().is_integral():
            self.quantization = _fake_quantize_range(out)
            if self.quantization is None:
                raise ValueError(f"{path}: integer output without a readable scale and zero point")
        shape = model.inputs[0].get_partial_shape()
        self.input_shape = [d.get_length() if d.is_static else -1 for d in shape]
        self.input_name = model.inputs[0].get_any_name()
        self.input_dtype = np.dtype(model.inputs[0].get_element_type().to_dtype()).name
        self.output_names = sorted(out.get_names())
        self.fixed_batch = self.input_shape[0] if self.input_shape[0] > 0 else None
        if self.fixed_batch and self._make_batch_dynamic(ov, model):
            self.fixed_batch = None
        elif self.fixed_batch:
            model = read()  # undo the trial reshape with a fresh copy of the graph
        self.compiled = self.core.compile_model(model, "CPU", self.config)

    def _make_batch_dynamic(self, ov, model) -> bool:
        """Reshape the input to a dynamic batch; it worked when the output batch became dynamic too.
        (Graphs with a Reshape to [1, classes] inside keep a static output: those run in slices.
        Checked on the graph, not by a trial inference, which can crash OpenVINO on such graphs.)"""
        try:
            model.reshape({model.inputs[0]: ov.PartialShape([-1] + self.input_shape[1:])})
        except Exception:
            return False
        out = model.outputs[0].get_partial_shape()
        return out.rank.is_static and out.rank.get_length() > 0 and out[0].is_dynamic

    def raw(self, batch: np.ndarray) -> np.ndarray:
        scores = run_in_slices(lambda b: self.compiled(b)[0], batch, self.fixed_batch)
        return scores.reshape(len(batch), -1)


class LiteRtBackend(RuntimeBackend):
    """A TFLite file in LiteRT (`ai-edge-litert`, the TFLite runtime), CPU with XNNPACK.

    Quantized outputs are dequantized with the tensor's own scale and zero point. Models saved
    with batch 1 whose graph does not resize (a Reshape to [1, classes]) run one image at a time.
    """

    name = "tflite"

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
    ):
        try:
            litert = require("ai_edge_litert.interpreter", "tflite", "TFLite models")
        except RuntimeMissing as e:
            raise RuntimeMissing(f"{e} (or run them in OpenVINO: TOPFIVE_TFLITE_RUNTIME=openvino)") from e
        cpu_only(device, "LiteRT")
        # LiteRT's own default is one thread; ONNX Runtime, OpenVINO and torch use every core unless told
        if not threads:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"{path}: the model has {len(inputs)} inputs; topfive feeds one image tensor")
        self.input = inputs[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_name = self.input["name"]
        self.input_shape = [int(d) for d in self.input.get("shape_signature", self.input["shape"])]
        self.input_dtype = np.dtype(self.input["dtype"]).name
        self.output_names = [self.output["name"]]
        signature = self.input.get("shape_signature", self.input["shape"])
        self.fixed_batch = None if signature[0] == -1 else int(signature[0])
        self.output_kind = output_kind
        self.label_offset = label_offset
        scale, zero_point = self.output["quantization"]
        integral = np.issubdtype(self.output["dtype"], np.integer)
        self.quantization = (scale, zero_point) if integral and scale else None
        if integral and not scale:
            raise ValueError(f"{path}: integer output without a scale")
        self._batch = int(self.input["shape"][0])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(batch.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()

    def raw(self, batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(self.input["dtype"], copy=False)
        return run_in_slices(self._run, batch, self.fixed_batch).reshape(len(batch), -1)
