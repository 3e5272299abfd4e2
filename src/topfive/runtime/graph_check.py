"""A model card checked against the graph a runtime loaded: input name, dtype, layout and size;
output name and size. Every graph runtime (base.GraphRuntime) reports the same attributes, so one
check serves ONNX Runtime, OpenVINO and LiteRT alike.

The output size is what keeps labels honest: a card claiming 1001 classes (background first) for
a 1000-class model would shift every label by one without any error. Where the graph's output
shape is static it is checked at load; where it is dynamic, the runtime checks the first output
(and every later one) against the card and raises the same CardError."""

from __future__ import annotations

from functools import partial

from topfive.models.cards import Card, CardError
from topfive.runtime.base import GraphRuntime


def output_size_error(card: Card, got: int) -> CardError:
    return CardError(
        card.path,
        "output.num_classes",
        f"{card.num_classes} (label_offset {card.label_offset}), but the model outputs {got} scores per image",
    )


def check_graph(card: Card, runtime: GraphRuntime) -> None:
    """Raise CardError (naming the card and the field) where the card and the graph disagree."""
    name, shape, dtype = runtime.input_name, runtime.input_shape, runtime.input_dtype
    outputs = runtime.output_names
    if card.input_name and card.input_name != name:
        raise CardError(card.path, "input.name", f"{card.input_name!r}, but the model's input is {name!r}")
    if dtype != card.dtype:
        raise CardError(card.path, "input.dtype", f"{card.dtype}, but the model's input is {dtype}")
    size = card.preprocess.size
    expected = [size, size] if card.layout == "NCHW" else [size, size, 3]
    got = shape[2:] if card.layout == "NCHW" else shape[1:]
    if (
        len(shape) != 4
        or (card.layout == "NCHW" and shape[1] not in (3, -1))
        or any(g not in (e, -1) for g, e in zip(got, expected))
    ):
        raise CardError(
            card.path, "input.layout", f"{card.layout} {size}x{size}, but the model's input shape is {shape}"
        )
    if card.output_name and card.output_name not in outputs:
        raise CardError(card.path, "output.name", f"{card.output_name!r}, but the model's output is {outputs}")
    if runtime.output_size is not None and runtime.output_size != card.num_classes:
        raise output_size_error(card, runtime.output_size)
    runtime.size_error = partial(output_size_error, card)
