"""The gallery of disagreements: photos whose top-1 differs between the models with weights, small
JPEG thumbnails of them and a Grad-CAM overlay per model for its own top-1 (topfive.explain), in the
report folder (never committed: the photos are not ours), and the report section that shows them."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from topfive.files import atomic_path, atomic_write
from topfive.report.format import shown_text
from topfive.report.results import Study, display, truthy
from topfive.report.rows import split_key
from topfive.tables import markdown_table

GALLERY_SIZE = 12
THUMB_PX = 176
OVERLAY_PX = 128  # a Grad-CAM overlay's longer side: one per model and photo, in a table cell


def disagreements(study: Study) -> list[tuple[str, str, dict[str, dict]]]:
    """Photos whose top-1 differs between models with weights: (file, label, {model: row}),
    informative first (some model right, some wrong), spread over the labels."""
    real = set(study.real_models)
    per_file: dict[str, dict[str, dict]] = defaultdict(dict)
    label_of: dict[str, str] = {}
    for r in study.predictions:
        if r["model"] in real:
            per_file[r["file"]][r["model"]] = r
            label_of[r["file"]] = r["label"]
    picked: dict[str, list] = defaultdict(list)
    for file, rows in per_file.items():
        top1 = {row["top5_indices"].split()[0] for row in rows.values() if row["top5_indices"].split()}
        if len(rows) < 2 or len(top1) < 2:
            continue
        mixed = len({truthy(row["hit1"]) for row in rows.values()}) > 1
        # most telling first: some model right and some wrong, then the most different answers
        picked[label_of[file]].append(((mixed, len(top1)), file))
    for items in picked.values():
        items.sort(key=lambda item: (-item[0][0], -item[0][1], item[1]))
    # one photo per label per round; labels whose best photo tells most, and where the models
    # disagree most often, come first
    order = sorted(picked, key=lambda label: (-picked[label][0][0][0], -picked[label][0][0][1],
                                              -len(picked[label]), label))
    chosen = []
    for round_ in range(max((len(v) for v in picked.values()), default=0)):
        for label in order:
            if round_ < len(picked[label]) and len(chosen) < GALLERY_SIZE:
                file = picked[label][round_][1]
                chosen.append((file, label, per_file[file]))
    return chosen


def find_photo(file: str, roots: list[Path]) -> Path | None:
    p = Path(file)
    if p.is_absolute():
        return p if p.is_file() else None
    return next((root / p for root in roots if (root / p).is_file()), None)


def thumbnail(src: Path, dest: Path) -> str | None:
    from topfive.decode.images import ImageError, load_image

    try:
        img = load_image(src, draft_size=THUMB_PX * 2)
    except ImageError as e:
        return e.reason
    img.thumbnail((THUMB_PX, THUMB_PX))
    with atomic_path(dest) as tmp:
        img.save(tmp, "JPEG", quality=80)
    return None


def thumbnail_name(file: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", file.strip("/")).removesuffix(".jpg") + ".jpg"


def ignore_folder(folder: Path) -> None:
    """Keeps the thumbnails out of git: they are made from photos that are not redistributable."""
    atomic_write(folder / ".gitignore", "# thumbnails of the photo set: generated, not committed\n*\n")


def short_reason(error: Exception, name: str) -> str:
    """An error's first sentence, for a table cell, naming model `name` as the tables do."""
    text = shown_text(str(error).replace(name, display(name))).split(". ")[0].split("; ")[0]
    return text if len(text) <= 120 else text[:117] + "..."


class Overlays:
    """The gallery's Grad-CAM cells: per model an Explainer (loaded at first use, once), per photo
    and model a PNG overlay of the model's own top-1, or the reason there is none."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.explainers: dict[str, object] = {}  # model -> Explainer, or why there is none
        self.made: dict[tuple[str, str, int], str] = {}  # (photo, model, class) -> cell

    def explainer(self, name: str):
        if name not in self.explainers:
            from topfive.explain.gradcam import Explainer, gradient_problem

            try:
                problem = gradient_problem(name)
                self.explainers[name] = problem if problem else Explainer(name)
            except Exception as e:  # no weights here, no target layer, unknown model: said in its cell
                self.explainers[name] = f"no overlay: {short_reason(e, name)}"
        return self.explainers[name]

    def cell(self, key: str, row: dict, src: Path | None, stem: str) -> str:
        from topfive.explain.gradcam import gradient_problem
        from topfive.explain.overlay import overlay_image, save_image

        name, runtime = split_key(key)
        if runtime == "int8":
            return f"*{gradient_problem(name, runtime)}*"
        if src is None:
            return "*photo not found*"
        explainer = self.explainer(name)
        if isinstance(explainer, str):
            return f"*{explainer}*"
        if not row["top5_indices"].split():
            return "*no prediction*"
        top1 = int(row["top5_indices"].split()[0])
        if (stem, name, top1) not in self.made:
            dest = self.folder / f"{stem}.gradcam.{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.{top1}.png"
            try:
                explanation = explainer.explain(src, class_index=top1)
                save_image(overlay_image(explanation, max_side=OVERLAY_PX), dest)
                self.made[stem, name, top1] = f"![{explanation.class_name}](gallery/{dest.name})"
            except Exception as e:  # an unreadable photo: the other cells go on
                self.made[stem, name, top1] = f"*no overlay: {short_reason(e, name)}*"
        return self.made[stem, name, top1]

    def close(self) -> None:
        for explainer in self.explainers.values():
            if not isinstance(explainer, str):
                explainer.close()


def _top5_cells(row: dict, accepted: set[int], names: list[str]) -> str:
    idx = [int(i) for i in row["top5_indices"].split()]
    probs = [float(p) for p in row["top5_probs"].split()]
    labels = row["top5_names"].split("|") if row.get("top5_names") else [names[i] for i in idx]
    return "; ".join(f"{n}{' ✓' if i in accepted else ''} {p:.2f}" for i, n, p in zip(idx, labels, probs))


def section_gallery(study: Study, out_dir: Path, roots: list[Path], names: list[str]) -> list[str]:
    """The Gallery section; writes the thumbnails into out_dir/gallery (earlier ones removed).
    roots: folders the photos' relative paths are looked up in; names: ImageNet-1k class names."""
    lines = ["## Gallery of disagreements", ""]
    chosen = disagreements(study)
    if not chosen:
        return lines + ["No photo where the models with weights disagree at top-1 (or fewer than two such models).", ""]
    folder = out_dir / "gallery"
    ignore_folder(folder)
    for old in [*folder.glob("*.jpg"), *folder.glob("*.png")]:  # thumbnails and overlays of an earlier report
        old.unlink()
    sets = {k: set(v) for k, v in study.dataset.get("label_sets", {}).items()}
    lines += [
        f"Photos where the models' top-1 differ ({len(chosen)} shown), with each model's top-5; ✓ marks a class "
        "in the photo's accepted set. Grad-CAM shows where each model found its own top-1 (computed in PyTorch "
        "on the model's own input; outside its centre crop, which it never saw, the photo is dimmed). "
        "Thumbnails and overlays are made from the local photos and are not committed.", "",
    ]
    no_weights = [display(m) for m in study.models if m not in study.real_models]
    if no_weights:
        lines += [f"Without real weights here, so neither compared nor explained: {', '.join(no_weights)}.", ""]
    overlays = Overlays(folder)
    try:
        for file, label, rows in chosen:
            lines += [f"### `{file}` — label: {label}", ""]
            src = find_photo(file, roots)
            stem = thumbnail_name(file).removesuffix(".jpg")
            problem = "photo not found (give --mirror)" if src is None else thumbnail(src, folder / f"{stem}.jpg")
            lines += [f"![{label}](gallery/{stem}.jpg)" if problem is None
                      else f"*(no thumbnail: {shown_text(problem)})*", ""]
            table = [[display(m), "right" if truthy(rows[m]["hit1"]) else "wrong",
                      _top5_cells(rows[m], sets.get(label, set()), names),
                      overlays.cell(m, rows[m], src, stem)]
                     for m in study.real_models if m in rows]
            lines += markdown_table(["model", "top-1", "top-5 (probability)", "Grad-CAM (own top-1)"], table,
                                    right_from=99)
    finally:
        overlays.close()
    return lines
