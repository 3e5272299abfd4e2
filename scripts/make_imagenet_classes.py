"""Regenerate src/topfive/data/imagenet_classes.tsv (index, wnid, name).

Sources:
- wnids: timm's `timm/data/_info/imagenet_synsets.txt` (Apache-2.0), the 1000 ImageNet-1k
  synsets in sorted order, which is the class order torchvision's weights use.
- names: torchvision's `torchvision.models._meta._IMAGENET_CATEGORIES` (BSD-3-Clause), the
  names torchvision shows for its weights.

Usage: pip download --no-deps timm -d /tmp/timm && unzip the wheel, then
  python scripts/make_imagenet_classes.py /path/to/imagenet_synsets.txt
"""

import sys
from pathlib import Path

from torchvision.models._meta import _IMAGENET_CATEGORIES

wnids = Path(sys.argv[1]).read_text().split()
assert len(wnids) == len(_IMAGENET_CATEGORIES) == 1000
assert wnids == sorted(wnids), "ImageNet-1k class order is the sorted wnid order"
out = Path(__file__).resolve().parents[1] / "src/topfive/data/imagenet_classes.tsv"
with out.open("w") as f:
    f.write("index\twnid\tname\n")
    for index, (wnid, name) in enumerate(zip(wnids, _IMAGENET_CATEGORIES)):
        f.write(f"{index}\t{wnid}\t{name}\n")
print(f"wrote {out}")
