"""Model x runtime: the pairs that evaluate, bench and the study measure.

`--models A,B --runtime R1,R2` asks for every model on every runtime. A model may also be pinned
to one runtime as `NAME@RUNTIME` (`efficientnet_lite0@int8`), so that one command line can say
"these models on auto, and this one also on int8", which a plain cross product cannot. A suffix
counts as a pin only when it is a word of the runtime vocabulary, so a card path with an `@` in
its name stays a path.
"""

from __future__ import annotations

from topfive.runtime.registry import DEFAULT_RUNTIME, DEPRECATED, RUNTIMES, canonical_runtime

PIN = "@"


def split_pin(name: str) -> tuple[str, str | None]:
    """`NAME@RUNTIME` -> (NAME, runtime word); anything else -> (name, None)."""
    head, sep, tail = name.rpartition(PIN)
    if sep and head and (tail in RUNTIMES or tail in DEPRECATED):
        return head, canonical_runtime(tail)
    return name, None


def pinned(name: str, runtime: str) -> str:
    """The spelling that pins `name` to `runtime`; auto is a model's default and needs no pin."""
    return name if runtime == DEFAULT_RUNTIME else f"{name}{PIN}{runtime}"


def parse_runtimes(text: str) -> list[str]:
    """`torch,onnxruntime` -> the runtime words, in order, once each (ValueError on an unknown one)."""
    words = [canonical_runtime(part.strip()) for part in text.split(",") if part.strip()]
    if not words:
        raise ValueError("no runtime given")
    return list(dict.fromkeys(words))


def pairs(models: list[str], runtimes: list[str] | tuple[str, ...] = (DEFAULT_RUNTIME,)) -> list[tuple[str, str]]:
    """(model, runtime) for each model on each runtime, a pinned model on its pin only; in the
    order given, each pair once."""
    out: dict[tuple[str, str], None] = {}
    for name in models:
        model, pin = split_pin(name)
        for runtime in [pin] if pin else runtimes:
            out[(model, runtime)] = None
    return list(out)
