"""Packaging facts: kernels ship as ``fastsup.kernels`` only, and ``import fastsup`` needs neither triton nor CUDA."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import torch
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(d) for d in PROJECT["dependencies"]] + [
    Requirement(d) for extra in PROJECT["optional-dependencies"].values() for d in extra
]


def _pins() -> dict[str, Version]:
    """constraints.txt as name -> pinned version (option lines such as --extra-index-url skipped)."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[requirement.name.lower()] = Version(specifier.version)
    return pins


def _setup_commands() -> list[str]:
    """The bash commands of the README's "Set up" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "TRITON_INTERPRET": "0"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_pyproject_maps_the_kernels_folder_to_fastsup_kernels():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    assert "kernels" not in setuptools["packages"]
    assert "fastsup.kernels" in setuptools["packages"]
    assert setuptools["package-dir"] == {"fastsup.kernels": "kernels"}
    deps = project["project"]["dependencies"]
    assert {"torch", "numpy", "matplotlib", "safetensors", "tqdm", "pandas", "pyarrow"} == {Requirement(d).name for d in deps}
    subpackages = {f"fastsup.{p.parent.name}" for p in (ROOT / "fastsup").glob("*/__init__.py")}
    assert subpackages <= set(setuptools["packages"])  # every subpackage ships
    assert project["project"]["scripts"]["fastsup"] == "fastsup.cli:main"


def test_installed_package_has_fastsup_kernels_and_no_top_level_kernels(tmp_path):
    """Outside the repository (so the source tree is not on sys.path), as a user sees it."""
    result = _run(
        "import importlib.util, fastsup.kernels, pathlib;"
        "print(pathlib.Path(fastsup.kernels.__file__).resolve());"
        "print(importlib.util.find_spec('kernels'))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    kernels_file, top_level = result.stdout.split()
    assert Path(kernels_file) == ROOT / "kernels" / "__init__.py"
    assert top_level == "None"


def test_import_and_train_without_triton_or_cuda(tmp_path):
    result = _run(
        "import sys; sys.modules['triton'] = None;"  # makes `import triton` raise ImportError
        "import fastsup;"
        "r = fastsup.train(n_features=3, n_hidden=2, n_instances=2, steps=2, batch_size=8, progress=False);"
        "print(r.backend, tuple(r.W.shape))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["torch", "(2,", "3,", "2)"]


def test_dependencies_are_ranges_not_pins():
    """A user's own torch (and the triton it brings on CUDA) must be able to satisfy them."""
    for requirement in REQUIREMENTS:
        assert all(s.operator not in ("==", "===") for s in requirement.specifier), str(requirement)
    torch_range = next(r.specifier for r in REQUIREMENTS if r.name == "torch")
    assert Version(torch.__version__).public in torch_range  # the torch these tests run on is declared
    triton_ranges = {str(r.specifier) for r in REQUIREMENTS if r.name == "triton"}
    assert len(triton_ranges) == 1, triton_ranges  # the triton extra and the test extra declare one range


def test_constraints_pin_every_dependency_inside_its_declared_range():
    pins = _pins()
    for requirement in REQUIREMENTS:
        assert requirement.name.lower() in pins, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[requirement.name.lower()], prereleases=True), str(requirement)


def test_constraints_get_the_cpu_wheel_of_torch():
    """Plain PyPI's torch is a CUDA build: the pin names the +cpu wheel."""
    assert _pins()["torch"].local == "cpu"


def test_readme_has_two_setup_commands_through_the_constraints_and_ci_runs_the_second():
    run_main, run_tests = _setup_commands()
    assert run_main == "pip install -c constraints.txt -e . && fastsup run intro --out out/intro"
    assert run_tests == 'pip install -c constraints.txt -e ".[test]" && python -m pytest -q'
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert run_tests in ci
