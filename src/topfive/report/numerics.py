"""Which results depend on the CPU they were measured on, and the words the report flags them with.

Integer kernels pick their instructions by CPU: without VNNI (avx512_vnni, avx_vnni) ONNX Runtime's
u8 x s8 kernels add pairs of products in 16 bits, which saturates, so the same int8 file scores
differently on another x86 CPU. bf16 keeps 8 significant bits of every product (and
OpenVINO's CPU plugin would switch to it by itself where avx512_bf16 or AMX is present, which is why
the openvino runtime sets f32). fp32 probabilities differ between CPUs only in their last digits, so
fp32 results are not flagged.
"""

from __future__ import annotations

from topfive.report.results import (
    RUNTIME_NAMES,
    Published,
    Study,
    display,
    num,
)

VNNI = ("avx512_vnni", "avx_vnni")
MARK = "†"


def x86(fp: dict) -> bool:
    """VNNI is an x86 extension: on another architecture its absence says nothing about int8."""
    where = fp.get("os")
    return not where or any(arch in str(where) for arch in ("x86_64", "AMD64", "i386", "i686"))


def isa_text(fp: dict | None) -> str:
    """This run's ISA features as the report names them."""
    if not fp:
        return "not recorded"
    isa = fp.get("isa") or []
    return ", ".join(isa) if isa else "none of avx2, avx512f, VNNI, bf16 or AMX"


def lacks(fp: dict, flags: tuple[str, ...]) -> bool:
    return not set(fp.get("isa") or ()) & set(flags)


def precision_of(row: dict) -> str:
    return str(row.get("precision") or "").lower()


def is_quantised(row: dict, published: Published) -> bool:
    """An int8 result: run on the `int8` runtime (or a runtime reporting int8 precision), or a model
    card whose file is integer (results.quantised_card states the rule)."""
    runtime = str(row.get("runtime") or "")
    return runtime in ("int8", RUNTIME_NAMES["int8"]) or "int8" in precision_of(row) or published.quantised


def caveat(row: dict, published: Published, fp: dict | None) -> str:
    """Why this result (a summary or bench row of one model) may differ on another CPU; "" if it
    should not. fp: the fingerprint of the machine that measured it, None when none was recorded."""
    precision = precision_of(row)
    if is_quantised(row, published):
        if fp is None:
            return "int8; the CPU's ISA features were not recorded"
        return "int8 on a CPU without VNNI" if x86(fp) and lacks(fp, VNNI) else ""
    runtime = str(row.get("runtime") or "").lower()
    if any(word in text for text in (precision, runtime) for word in ("bf16", "bfloat16")):
        return "computed in bf16"
    return ""  # fp32, OpenVINO's included: topfive sets its precision to f32 rather than let the CPU choose


def accuracy_caveats(study: Study) -> dict[str, str]:
    """{model: caveat} for the models whose measured accuracy depends on the CPU evaluate ran on."""
    fp = study.fingerprints.get("evaluate")
    out = {}
    for m in study.real_models:
        reason = caveat(study.summary[m], study.published.get(m) or Published(), fp)
        if reason:
            out[m] = reason
    return out


def grouped(flagged: dict[str, str]) -> str:
    """The flagged models, one group per reason: "a, b (why); c (why else)"."""
    by: dict[str, list[str]] = {}
    for model, why in flagged.items():
        by.setdefault(why, []).append(display(model))
    return "; ".join(f"{', '.join(models)} ({why})" for why, models in by.items())


def _cpu(fp: dict | None) -> str:
    if not fp:
        return "a CPU whose ISA features were not recorded (an older topfive wrote these results)"
    vnni = "no VNNI" if lacks(fp, VNNI) else "VNNI"
    return f"{fp.get('cpu', '?')} (ISA features: {isa_text(fp)}; {vnni})"


def accuracy_note(study: Study) -> list[str]:
    """The line under the accuracy table naming the flagged results and this CPU's features."""
    flagged = accuracy_caveats(study)
    if not flagged:
        return []
    fp = study.fingerprints.get("evaluate")
    return [
        f"{MARK} Depends on the CPU: {grouped(flagged)}"
        + (f". Evaluate ran on {_cpu(fp)}" if fp else "")  # else each reason already says it is unknown
        + ". Integer and bf16 kernels differ between CPUs (without VNNI, ONNX "
        "Runtime's u8×s8 int8 kernels can saturate), so these figures can differ by several points on another "
        "machine; see Method.", "",
    ]


def method_note(study: Study) -> str:
    """The Method section's bullet on numerics that depend on the machine, with this run's figures."""
    fp = study.fingerprints.get("evaluate")
    quantised = [m for m in study.real_models
                 if is_quantised(study.summary[m], study.published.get(m) or Published())]
    figures = ", ".join(f"{display(m)} {num(study.summary[m]['top1']):.1f} %" for m in quantised)
    flagged = accuracy_caveats(study)
    return (
        "- **Numerics that depend on the machine**: quantised (int8) accuracy can differ between CPUs. Integer "
        "kernels pick their instructions by CPU: without VNNI (avx512_vnni or avx_vnni) ONNX Runtime's u8×s8 "
        "kernels add pairs of products in 16 bits, which saturates, so the same int8 file can score several "
        "points differently on another CPU. OpenVINO's CPU plugin would compute in bf16 by itself where "
        "avx512_bf16 or AMX is present, so the `openvino` runtime sets f32 and bf16 results (`openvino-bf16`, "
        "torch's bf16 autocast) are marked as such. fp32 probabilities differ between CPUs only in their last "
        "digits. A result counts "
        "as int8 when it ran on the `int8` runtime or its model card's file is integer (uint8 input pixels, or "
        "int8, uint8, quant or QLinear in its name or architecture). "
        + ("This run: no accuracy results." if not study.real_models else
           "This run: evaluate ran on " + _cpu(fp) + (f"; its int8 top-1: {figures}" if figures else "; no int8 result")
           + (f", marked {MARK} in the accuracy table where they depend on it." if flagged else "."))
    )
