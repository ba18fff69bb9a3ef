"""benchmarks/paper_times.py: one timed run per registered experiment, written as JSON and a README table."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

from benchmarks import paper_times  # noqa: E402
from tests.utils import only_experiments, tiny_experiment  # noqa: E402


def test_times_every_registered_experiment_and_writes_them(tmp_path, monkeypatch, capsys):
    only_experiments(monkeypatch, [tiny_experiment("tiny_b", 2), tiny_experiment("tiny_a", 1)])
    assert paper_times.main(["--scale", "small", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "experiment-times-small-cpu.json").read_text())
    assert (record["scale"], record["device"]) == ("small", "cpu")
    assert [row["experiment"] for row in record["experiments"]] == ["tiny_a", "tiny_b"]
    assert all(row["seconds"] > 0 and "3 steps" in row["summary"] for row in record["experiments"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| experiment at `small` scale | CPU (s): ") and table[0].endswith("| GPU (s) |")
    seconds = {row["experiment"]: row["seconds"] for row in record["experiments"]}
    assert table[2:] == [f"| `{name}` | {seconds[name]:.0f} | not measured |" for name in ("tiny_a", "tiny_b")]


def test_only_adds_to_the_times_already_there_and_each_row_is_written_when_done(tmp_path, monkeypatch):
    only_experiments(monkeypatch, [tiny_experiment("tiny_a", 1), tiny_experiment("tiny_b", 2)])
    path = tmp_path / "experiment-times-small-cpu.json"
    assert paper_times.main(["--scale", "small", "--results", str(tmp_path), "--only", "tiny_b"]) == 0
    first_b = json.loads(path.read_text())["experiments"]
    assert [row["experiment"] for row in first_b] == ["tiny_b"]

    real_time = paper_times.time_experiment

    def killed_after_tiny_a(name, scale):
        if name == "tiny_b":
            raise KeyboardInterrupt
        return real_time(name, scale)

    monkeypatch.setattr(paper_times, "time_experiment", killed_after_tiny_a)
    try:
        paper_times.main(["--scale", "small", "--results", str(tmp_path), "--only", "tiny_a", "tiny_b"])
    except KeyboardInterrupt:
        pass
    rows = json.loads(path.read_text())["experiments"]
    # tiny_a joined (in registry order) before the run was cut; tiny_b's earlier row is kept as it was
    assert [row["experiment"] for row in rows] == ["tiny_a", "tiny_b"] and rows[1] == first_b[0]


def test_without_measurements_the_readme_table_says_not_measured(tmp_path, monkeypatch):
    only_experiments(monkeypatch, [tiny_experiment("tiny_a", 1)])
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{paper_times.README_START}\nold\n{paper_times.README_END}\ny\n")
    assert paper_times.main(["--no-run", "--results", str(tmp_path / "none"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| `tiny_a` | not measured | not measured |" in text and "old" not in text
    assert not (tmp_path / "none").exists()
