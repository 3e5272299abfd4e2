"""Copying the condensed report into the README's marked section."""

import re

import pytest

from topfive.report import update_readme
from topfive.report.readme import REPORT_END, REPORT_START

REPORT = """# Comparative study: a, b

Generated 2026-01-01 00:00 UTC by `topfive report`.

## Conclusions

- a is best.

## Set-up

|  |  |
| --- | --- |
| threads | 2 |

### Photo set

| label | n | accepted ImageNet-1k classes |
| --- | ---: | --- |
| dog | 3 | 118 classes |

## Accuracy

| model | top-1 % |
| --- | ---: |
| a | 90.0 |

![Accuracy vs latency](charts/accuracy_vs_latency.png)
[a link](https://example.org/x.png) and [an anchor](#method)

### Per-label accuracy

| label | n | a | b |
| --- | ---: | ---: | ---: |
| dog | 3 | 100 / 100 | 67 / 100 |

### Pairwise McNemar tests

| model A | model B | p |
| --- | --- | ---: |
| a | b | 0.5 |

## Speed

On cpu, 2 threads.

| model | latency median (ms) |
| --- | ---: |
| a | 1.00 |

- a: wide spread (>10 %): decode_ms 24 %

![Throughput per model](charts/throughput.png)

## Memory, size and compute

| model | params (M) |
| --- | ---: |
| a | 1.00 |

## Gallery of disagreements

### `images/dog/x.jpg` — label: dog

![dog](gallery/images_dog_x.jpg)

## Method

- measured.
"""


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "report" / "charts").mkdir(parents=True)
    (tmp_path / "report" / "charts" / "accuracy_vs_latency.png").write_bytes(b"png")
    md = tmp_path / "report" / "REPORT.md"
    md.write_text(REPORT)
    return tmp_path, md


def test_replaces_marked_section_and_keeps_the_rest(tree):
    root, md = tree
    readme = root / "README.md"
    readme.write_text(f"# topfive\n\nintro\n\n{REPORT_START}\nold text\n{REPORT_END}\n\n## Licence\n\nApache\n")
    assert update_readme(readme, md) is True
    text = readme.read_text()
    assert text.startswith("# topfive\n\nintro\n\n" + REPORT_START)
    assert text.endswith(REPORT_END + "\n\n## Licence\n\nApache\n")
    assert "old text" not in text
    section = text.split(REPORT_START)[1].split(REPORT_END)[0]
    # headings one level down, so the study sits under the README's title
    assert "\n## Comparative study: a, b\n" in section and "\n### Conclusions\n" in section
    assert "Generated 2026-01-01 00:00 UTC" in section
    # image links relative to the README, and they resolve
    link = re.search(r"!\[Accuracy vs latency\]\(([^)]+)\)", section).group(1)
    assert link == "report/charts/accuracy_vs_latency.png" and (root / link).is_file()
    assert "(https://example.org/x.png)" in section and "(#method)" in section
    # the gallery's thumbnails are not committed: the README points to REPORT.md instead
    assert "gallery/images_dog_x.jpg" not in section and "[report/REPORT.md](report/REPORT.md)" in section
    # refreshing again gives the same README
    update_readme(readme, md)
    assert readme.read_text() == text


def test_section_is_condensed_and_links_the_report(tree):
    root, md = tree
    readme = root / "README.md"
    readme.write_text(f"# topfive\n\n{REPORT_START}\n{REPORT_END}\n")
    update_readme(readme, md)
    section = readme.read_text().split(REPORT_START)[1].split(REPORT_END)[0]
    # kept: conclusions, the set-up table, the accuracy table and chart, the speed table and chart
    for kept in ("### Conclusions", "- a is best.", "### Set-up", "**threads**: 2.", "### Accuracy",
                 "| a | 90.0 |", "](report/charts/accuracy_vs_latency.png)", "### Speed", "| a | 1.00 |",
                 "](report/charts/throughput.png)"):
        assert kept in section, kept
    # left out: the photo set's class list, per-label accuracy, McNemar, the spread notes, memory,
    # the gallery and the method
    for gone in ("Photo set\n", "118 classes", "Per-label accuracy\n", "100 / 100", "McNemar tests\n",
                 "wide spread", "### Memory", "Gallery of disagreements\n", "label: dog", "### Method",
                 "- measured."):
        assert gone not in section, gone
    # one line links to the report, and to each part left out by its anchor there
    pointer = [line for line in section.splitlines() if "report/REPORT.md" in line]
    assert len(pointer) == 1
    for anchor in ("photo-set", "per-label-accuracy", "pairwise-mcnemar-tests", "memory-size-and-compute",
                   "gallery-of-disagreements", "method"):
        assert f"(report/REPORT.md#{anchor})" in pointer[0], anchor


def test_readme_in_another_folder(tree):
    root, md = tree
    (root / "docs").mkdir()
    readme = root / "docs" / "README.md"
    readme.write_text(f"{REPORT_START}\n{REPORT_END}\n")
    update_readme(readme, md)
    text = readme.read_text()
    assert "](../report/charts/accuracy_vs_latency.png)" in text and "[../report/REPORT.md](../report/REPORT.md)" in text


def test_markers_absent_appends_section(tree):
    root, md = tree
    readme = root / "README.md"
    readme.write_text("# topfive\n")
    assert update_readme(readme, md) is False
    text = readme.read_text()
    assert text.startswith("# topfive\n\n" + REPORT_START) and text.rstrip().endswith(REPORT_END)


def test_one_marker_only_is_an_error(tree):
    root, md = tree
    readme = root / "README.md"
    readme.write_text(f"# topfive\n{REPORT_START}\n")
    with pytest.raises(ValueError, match="only one of the markers"):
        update_readme(readme, md)
    assert readme.read_text() == f"# topfive\n{REPORT_START}\n"  # untouched
