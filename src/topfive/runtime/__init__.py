"""Runtimes: what turns a preprocessed batch into N x 1000 ImageNet-1k probabilities.

    make_runtime(entry, kind="auto", device="cpu", threads=None, calibration=None,
                 weights_file=None, module=None, tag=None) -> Runtime
builds any of them, for zoo models and model cards alike. The vocabulary (`RUNTIMES`: torch,
compile, onnxruntime, int8, openvino, openvino-bf16, litert, auto) is documented in the README's
"Runtimes" section; `canonical_runtime` maps the deprecated spellings (eager, onnx, tflite).

    base         Runtime, GraphRuntime, RuntimeMissing and the helpers runtimes share
    registry     make_runtime, RUNTIMES, canonical_runtime: the one place that knows every runtime
    request      RuntimeRequest, what a runtime's builder is given
    torch_eager  "torch"         compiled  "compile"
    onnxruntime  "onnxruntime"   quantize  "int8" (and the quantisation itself)
    openvino     "openvino", "openvino-bf16"               litert  "litert"
    tune         what "auto" runs a zoo model on: the fastest fp32 runtime here, measured and cached
    export       zoo models exported to ONNX, cached
    graph_check  a model card checked against the loaded graph

Names are imported on first use, so that naming the vocabulary loads no runtime package.
"""

from topfive.lazy import lazy_exports

_EXPORTS = {
    "make_runtime": "registry",
    "canonical_runtime": "registry",
    "RUNTIMES": "registry",
    "DEFAULT_RUNTIME": "registry",
    "Runtime": "base",
    "GraphRuntime": "base",
    "RuntimeMissing": "base",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports("topfive.runtime", _EXPORTS)
