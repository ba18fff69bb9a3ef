"""The gallery: every registered experiment run at one scale, its figures as small PNGs, an index.

    python -m fastsup.experiments.gallery --out docs/gallery [--scale small] [--readme README.md]
    fastsup gallery --out DIR [--scale small] [--readme README.md]

writes, in ``DIR``::

    runs/<name>/            each experiment's complete outputs (run_experiment; ignored by git)
    <stem>.png              each figure, small (the thumbnails the index and the README show)
    index.md, index.html    per experiment: its figures, the command that made them, its
                            description, title and summary line (index.html links each
                            thumbnail to the full figure under runs/, so it is for the
                            local copy; the repository keeps index.md)

With ``--readme``, the part of that file between the two gallery markers is
replaced by the same list (image paths relative to the README).  Experiments
join through the registry: a new experiment module appears here without
touching this file.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import os
import sys
from pathlib import Path

from .. import io
from .base import EXPERIMENTS, SCALES, get_experiment, ordered_names
from .runner import ExperimentRun, run_experiment

__all__ = ["GalleryEntry", "build_gallery", "gallery_markdown", "replace_section", "update_readme"]

THUMBNAIL_DPI = 50
RUNS = "runs"
README_START = "<!-- gallery:start (written by python -m fastsup.experiments.gallery) -->"
README_END = "<!-- gallery:end -->"


@dataclasses.dataclass(frozen=True)
class GalleryEntry:
    """One experiment in the gallery: its thumbnails (stem → path) and what the index says about it."""

    name: str
    description: str
    command: str
    title: str
    summary: str
    thumbnails: dict[str, Path]


def _command(name: str, scale: str) -> str:
    return f"fastsup run {name} --scale {scale} --out out/{name}"


def _thumbnails(run: ExperimentRun, out_dir: Path) -> dict[str, Path]:
    """Draw the run's figures again at thumbnail resolution (the analysis is in the run: nothing retrains)."""
    experiment = EXPERIMENTS[run.name]
    paths = {}
    for stem, figure in experiment.figures(run.outcome, run.table).items():
        path = out_dir / f"{stem}.png"
        with io.atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=THUMBNAIL_DPI)
        paths[stem] = path
    return paths


def build_gallery(out_dir, *, scale: str = "small", names=None, progress: bool = False) -> list[GalleryEntry]:
    """Run every experiment (or ``names``) at ``scale`` into ``out_dir/runs/``, write the thumbnails and the
    index files, and return the entries (in the order of EXPERIMENTS.md)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known scales: {', '.join(SCALES)}")
    names = ordered_names() if names is None else [get_experiment(name).name for name in names]
    out_dir = Path(out_dir)
    runs = out_dir / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    io.write_bytes_atomic(runs / ".gitignore", b"*\n")  # the full outputs are for the user, not for the repository
    entries = []
    for name in names:
        run = run_experiment(name, runs / name, scale=scale, progress=progress)
        entries.append(GalleryEntry(name, EXPERIMENTS[name].description, _command(name, scale),
                                    _title(run), run.summary(), _thumbnails(run, out_dir)))
    io.write_bytes_atomic(out_dir / "index.md", gallery_markdown(entries, out_dir).encode())
    io.write_bytes_atomic(out_dir / "index.html", _gallery_html(entries, out_dir).encode())
    return entries


def _title(run: ExperimentRun) -> str:
    return io.read_json(run.numbers_path, f"{run.name}'s numbers")["title"]


def gallery_markdown(entries: list[GalleryEntry], relative_to: Path) -> str:
    """The gallery as Markdown, image paths relative to the folder ``relative_to``."""
    lines = []
    for entry in entries:
        lines += [f"### `{entry.name}`", "", entry.description, ""]
        lines += [f"![{stem}]({_relative(path, relative_to)})" for stem, path in entry.thumbnails.items()]
        lines += ["", f"`{entry.command}` — {entry.summary}", ""]
    return "\n".join(lines)


def _gallery_html(entries: list[GalleryEntry], out_dir: Path) -> str:
    parts = ["<!doctype html>", "<meta charset='utf-8'>", "<title>fastsup gallery</title>",
             "<style>body{font-family:sans-serif;max-width:75em;margin:auto} img{max-width:100%}</style>",
             "<h1>fastsup gallery</h1>"]
    for entry in entries:
        parts.append(f"<h2 id='{entry.name}'><code>{html.escape(entry.name)}</code></h2>")
        parts.append(f"<p>{html.escape(entry.description)}</p>")
        for stem, path in entry.thumbnails.items():
            full = _relative(out_dir / RUNS / entry.name / f"{stem}.png", out_dir)
            parts.append(f"<a href='{full}'><img src='{_relative(path, out_dir)}' alt='{html.escape(stem)}'></a>")
        parts.append(f"<p><code>{html.escape(entry.command)}</code><br>{html.escape(entry.title)}<br>"
                     f"{html.escape(entry.summary)}</p>")
    return "\n".join(parts) + "\n"


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def replace_section(path, start: str, end: str, body: str) -> None:
    """Replace what lies between the lines ``start`` and ``end`` of the file ``path`` by ``body``."""
    path = Path(path)
    text = path.read_text()
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{str(path)!r} must hold the markers {start!r} and then {end!r}, once each")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    io.write_bytes_atomic(path, f"{head}{start}\n\n{body.strip()}\n\n{end}{tail}".encode())


def update_readme(readme, entries: list[GalleryEntry]) -> None:
    """Replace the part of ``readme`` between :data:`README_START` and :data:`README_END` by the gallery."""
    replace_section(readme, README_START, README_END, gallery_markdown(entries, Path(readme).parent))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="gallery folder")
    parser.add_argument("--scale", choices=SCALES, default="small", help="scale of every run (default small)")
    parser.add_argument("--readme", default=None, metavar="FILE",
                        help="also rewrite the gallery section of this README (between its gallery markers)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these experiments")


def run_from_arguments(args) -> int:
    entries = build_gallery(args.out, scale=args.scale, names=args.only)
    if args.readme is not None:
        update_readme(args.readme, entries)
    for entry in entries:
        print(f"{entry.name}: {', '.join(str(p) for p in entry.thumbnails.values())}")
    print(f"index: {Path(args.out) / 'index.md'}, {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from ..cli import main

    sys.exit(main(["gallery", *sys.argv[1:]]))
