"""fastsup.experiments.gallery: every registered experiment, its thumbnails, the index and the README section."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fastsup.cli import main  # noqa: E402
from fastsup.experiments import gallery  # noqa: E402
from tests.utils import only_experiments, tiny_experiment  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def only_tiny_experiments(monkeypatch):
    """The registry holds just two tiny experiments, registered out of order."""
    only_experiments(monkeypatch, [tiny_experiment("tiny_b", 2), tiny_experiment("tiny_a", 1)])


def test_every_registered_experiment_joins_in_paper_order(tmp_path, only_tiny_experiments):
    entries = gallery.build_gallery(tmp_path)
    assert [entry.name for entry in entries] == ["tiny_a", "tiny_b"]
    for entry in entries:
        assert set(entry.thumbnails) == {entry.name, f"{entry.name}-represented"}
        for path in entry.thumbnails.values():
            assert path.parent == tmp_path and path.read_bytes()[:8] == PNG_MAGIC
            assert path.stat().st_size < (tmp_path / "runs" / entry.name / path.name).stat().st_size  # smaller
        assert (tmp_path / "runs" / entry.name / f"{entry.name}.json").exists()
        assert entry.command == f"fastsup run {entry.name} --scale small --out out/{entry.name}"
    index = (tmp_path / "index.md").read_text()
    assert index.index("### `tiny_a`") < index.index("### `tiny_b`")
    assert "![tiny_a](tiny_a.png)" in index and "![tiny_a-represented](tiny_a-represented.png)" in index
    assert "fastsup run tiny_b --scale small" in index and "tiny_b: small scale" in index
    page = (tmp_path / "index.html").read_text()
    assert "<img src='tiny_a.png'" in page and "href='runs/tiny_a/tiny_a.png'" in page
    assert (tmp_path / "runs" / ".gitignore").read_text() == "*\n"


def test_the_readme_section_between_the_markers_is_replaced(tmp_path, only_tiny_experiments):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{gallery.README_START}\nold text\n{gallery.README_END}\nafter\n")
    assert main(["gallery", "--out", str(tmp_path / "docs" / "gallery"), "--readme", str(readme),
                 "--only", "tiny_b"]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"\n\n{gallery.README_END}\nafter\n")
    assert "old text" not in text and "tiny_a" not in text
    assert "![tiny_b](docs/gallery/tiny_b.png)" in text


def test_a_readme_without_markers_and_an_unknown_name_are_clear_errors(tmp_path, only_tiny_experiments, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="must hold the markers"):
        gallery.update_readme(readme, [])
    assert main(["gallery", "--out", str(tmp_path / "g"), "--only", "nope"]) == 2
    assert "unknown experiment 'nope'; known experiments: tiny_a, tiny_b" in capsys.readouterr().err
