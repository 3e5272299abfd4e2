"""Copying the report into the README's marked section."""

import re

import pytest

from topfive.report import study as report

REPORT = """# Comparative study: a, b

## Conclusions

- a is best.

## Accuracy

![Accuracy vs latency](charts/accuracy_vs_latency.png)
[a link](https://example.org/x.png) and [an anchor](#method)

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
    readme.write_text(f"# topfive\n\nintro\n\n{report.REPORT_START}\nold text\n{report.REPORT_END}\n\n## Licence\n\nApache\n")
    assert report.update_readme(readme, md) is True
    text = readme.read_text()
    assert text.startswith("# topfive\n\nintro\n\n" + report.REPORT_START)
    assert text.endswith(report.REPORT_END + "\n\n## Licence\n\nApache\n")
    assert "old text" not in text
    section = text.split(report.REPORT_START)[1].split(report.REPORT_END)[0]
    # headings one level down, so the study sits under the README's title
    assert "\n## Comparative study: a, b\n" in section and "\n### Conclusions\n" in section
    # image links relative to the README, and they resolve
    link = re.search(r"!\[Accuracy vs latency\]\(([^)]+)\)", section).group(1)
    assert link == "report/charts/accuracy_vs_latency.png" and (root / link).is_file()
    assert "(https://example.org/x.png)" in section and "(#method)" in section
    # the gallery's thumbnails are not committed: the README points to REPORT.md instead
    assert "gallery/images_dog_x.jpg" not in section and "[report/REPORT.md](report/REPORT.md)" in section
    assert "### Method" in section
    # refreshing again gives the same README
    report.update_readme(readme, md)
    assert readme.read_text() == text


def test_readme_in_another_folder(tree):
    root, md = tree
    (root / "docs").mkdir()
    readme = root / "docs" / "README.md"
    readme.write_text(f"{report.REPORT_START}\n{report.REPORT_END}\n")
    report.update_readme(readme, md)
    assert "](../report/charts/accuracy_vs_latency.png)" in readme.read_text()


def test_markers_absent_appends_section(tree):
    root, md = tree
    readme = root / "README.md"
    readme.write_text("# topfive\n")
    assert report.update_readme(readme, md) is False
    text = readme.read_text()
    assert text.startswith("# topfive\n\n" + report.REPORT_START) and text.rstrip().endswith(report.REPORT_END)


def test_one_marker_only_is_an_error(tree):
    root, md = tree
    readme = root / "README.md"
    readme.write_text(f"# topfive\n{report.REPORT_START}\n")
    with pytest.raises(ValueError, match="only one of the markers"):
        report.update_readme(readme, md)
    assert readme.read_text() == f"# topfive\n{report.REPORT_START}\n"  # untouched
