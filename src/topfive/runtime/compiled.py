"""The "compile" runtime: torch.compile (inductor), channels_last.

The first batch of each new shape compiles (tens of seconds on a small CPU); later batches reuse
the compiled code. On CUDA the forward runs under autocast at `amp`, fp16 by default rather than
bf16: on an H200, EfficientNet-Lite0 in bf16 kept the fp32 top-1 on 98.2 % of the photo set
(under the 99 % bar), in fp16 on 100 %, and eager ResNet-50 ran 7 % faster in fp16 than in bf16
(docs/performance.md). On the CPU it runs fp32.
"""

from __future__ import annotations

import torch

from topfive.runtime.export import prepare_for_export
from topfive.runtime.torch_eager import TorchRuntime


class CompiledRuntime(TorchRuntime):
    name = "compile"
    precision = "fp32"  # on the CPU; on CUDA "fp16 autocast" by default (set in __init__ from `amp`)

    def __init__(
        self,
        module: torch.nn.Module,
        device: str = "cpu",
        threads: int | None = None,
        mode: str | None = None,
        amp: torch.dtype | None = torch.float16,
    ):
        device_type = torch.device(device).type
        # the MemoryEfficientSwish swap: inductor cannot trace through that custom autograd Function
        super().__init__(
            prepare_for_export(module), device=device, threads=threads, channels_last=True,
            amp=amp if device_type == "cuda" else None,
        )
        self.compiled = torch.compile(self.module, mode=mode, dynamic=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compiled(x)


def build(request) -> CompiledRuntime:
    return CompiledRuntime(request.torch_module(), device=request.device, threads=request.threads, **request.options)
