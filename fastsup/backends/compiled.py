"""Compiled training steps: built once for each key, kept on disk, loaded by later processes in milliseconds.

On the CPU a compiled step is an AOTInductor package (``.pt2``): the step is
exported (``torch.export``), compiled ahead of time by inductor into one
shared library and written to ``record_dir``.  A later process loads it
through AOTInductor's C++ loader without importing dynamo or inductor, in a
few ms; inductor's own warm cache took ~6 s of a first call here (importing
dynamo and inductor, then the cache lookup; README: CPU speed).  On CUDA a
step is compiled in the process by inductor's just-in-time compiler, and
inductor's FX graph cache holds it across processes.

This module is the only place fastsup touches torch's compilers.  Where a
torch release lacks the package loader, CPU steps are compiled in the
process as on CUDA; where it lacks the private ``make_fx``/``compile_fx``,
they go through the public ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import io
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, ContextManager, Hashable, Sequence

import torch

from ..io import write_bytes_atomic

CompiledStep = Callable[..., tuple[torch.Tensor, ...]]


def _private_compilers():
    """``(make_fx, compile_fx, fake_inputs)``, or None where this torch release no longer has them.

    ``fake_inputs`` turns example tensors into static-shaped fake tensors of a
    fake mode with a shape environment: inductor's FX graph cache and AOT
    autograd's cache skip any graph compiled without one ("No shape env").
    """
    try:
        from torch._inductor.compile_fx import compile_fx
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.proxy_tensor import make_fx
        from torch.fx.experimental.symbolic_shapes import ShapeEnv
    except ImportError:
        return None

    def fake_inputs(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        mode = FakeTensorMode(shape_env=ShapeEnv())
        return [mode.from_tensor(t, static_shapes=True) for t in tensors]

    return make_fx, compile_fx, fake_inputs


def _package_loader():
    """AOTInductor's C++ package loader (what ``torch._inductor.aoti_load_package`` wraps), or None.

    It loads a package without importing dynamo or inductor; where a torch
    release lacks it, steps are compiled in the process instead.
    """
    return getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)


class _Step(torch.nn.Module):
    """``torch.export`` takes a module; the step's in-place updates of its inputs are kept as input mutations."""

    def __init__(self, fn: CompiledStep):
        super().__init__()
        self.fn = fn

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.fn(*tensors)


def compile_package(fn: CompiledStep, example_inputs: Sequence[torch.Tensor]) -> bytes | None:
    """``fn`` compiled ahead of time for inputs shaped like ``example_inputs``: the package's bytes.

    None where this torch release has no AOTInductor compiler.
    """
    try:
        from torch._inductor import aoti_compile_and_package
    except ImportError:
        return None
    example = tuple(t.clone() for t in example_inputs)  # the step updates its inputs in place while traced
    with torch.no_grad(), warnings.catch_warnings():
        # torch 2.13's export warns about its own pytree internals
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        exported = torch.export.export(_Step(fn), example, strict=False)
        package = io.BytesIO()
        aoti_compile_and_package(exported, package_path=package)
    return package.getvalue()


def write_package(package: bytes, path: Path) -> Path:
    """Where the package now lies: ``path``, written atomically (a killed write leaves none, two writers each
    leave a whole one), or a private temporary file where ``path``'s folder cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_bytes_atomic(path, package)
    except OSError:
        fallback = Path(tempfile.mkdtemp(prefix="fastsup_step_")) / path.name
        fallback.write_bytes(package)
        return fallback


def load_package(path: Path, device: torch.device) -> CompiledStep:
    """The compiled step in the package ``path``, called as ``step(*tensors) -> tuple of tensors``."""
    loader = _package_loader()(str(path), "model", False, 1, -1 if device.index is None else device.index)
    return lambda *tensors: tuple(loader.run(list(tensors)))


def compile_graph(fn: CompiledStep, example_inputs: Sequence[torch.Tensor]) -> CompiledStep:
    """``fn(*tensors) -> tuple of tensors`` compiled in this process by inductor for inputs shaped like ``example_inputs``.

    Preferred: trace ``fn`` once with ``make_fx`` and give the graph to
    ``compile_fx``, so a call runs the generated code with no dynamo guard
    evaluation (~1.5x on the intro step, see README: CPU speed).  Fallback:
    ``torch.compile(fullgraph=True, dynamic=False)``, compiled by its first call
    here.  Both trace by running ``fn``: ``example_inputs`` are cloned first, so
    in-place updates in ``fn`` never touch the caller's tensors.
    """
    example = [t.clone() for t in example_inputs]
    private = _private_compilers()
    with torch.no_grad():
        if private is None:
            compiled = torch.compile(fn, fullgraph=True, dynamic=False)
        else:
            make_fx, compile_fx, fake_inputs = private
            compiled = compile_fx(make_fx(fn)(*example), fake_inputs(example))
        compiled(*example)  # compile now (torch.compile) and warm the first call (both), not inside a timed step
    return compiled


def default_record_dir() -> Path:
    """Beside inductor's disk cache (same default as torch's), so both live and go together."""
    root = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"
    return Path(root) / "fastsup_steps"


# The fastsup modules whose code a compiled step runs (tests/test_compiled.py checks the files of
# every function a step calls against this list), and this module, which packages it.
STEP_SOURCES = ("functional.py", "data.py", "philox.py", "backends/torch_backend.py", "backends/compiled.py")


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """A digest of the step's source: a package compiled from other step code must never be loaded."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in STEP_SOURCES:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def _touch(path: Path) -> None:
    """Leave an empty marker file; a read-only cache folder only costs the compile decision an estimate."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def _packaged(device: torch.device) -> bool:
    """Whether steps on ``device`` are AOTInductor packages (the CPU, where torch has the loader)."""
    return device.type == "cpu" and _package_loader() is not None


class StepCache:
    """Compiled steps of this process by key; remembers how long compiling took, for the compile decision.

    On disk, in ``record_dir``, a key's files are named by a digest of the
    key, torch's version, the step's source, the thread count and the CPU's
    vector extensions: ``.pt2``, the step's package (CPU); no suffix, an empty
    marker saying that inductor's disk cache most likely holds a step compiled
    in the process (CUDA); ``.ran``, a note that some process ran the step.
    """

    def __init__(self, record_dir: Path | None = None):
        self._steps: dict[Hashable, CompiledStep] = {}
        self.last_compile_seconds: float | None = None
        self.record_dir = record_dir

    def __contains__(self, key: Hashable) -> bool:
        return key in self._steps

    def _record(self, key: Hashable, suffix: str = "") -> Path:
        facts = (torch.__version__, _source_digest(), torch.get_num_threads(), torch.backends.cpu.get_cpu_capability(),
                 platform.machine(), key)
        digest = hashlib.sha256(repr(facts).encode()).hexdigest()[:32]
        return (self.record_dir or default_record_dir()) / f"{digest}{suffix}"

    def note_run(self, key: Hashable) -> None:
        """Leave a note that a process ran this step (compiled or not), for ``ran_before``."""
        _touch(self._record(key, ".ran"))

    def ran_before(self, key: Hashable) -> bool:
        """Whether a process (this one or an earlier one) noted a run of this step."""
        return self._record(key, ".ran").exists()

    def on_disk(self, key: Hashable, device: torch.device) -> str | None:
        """What an earlier compile of this key left on disk: ``"package"``, ``"inductor cache"``, or None."""
        if _packaged(device) and self._record(key, ".pt2").exists():
            return "package"
        return "inductor cache" if self._record(key).exists() else None

    def get(
        self,
        key: Hashable,
        fn: CompiledStep,
        example_inputs: Sequence[torch.Tensor],
        compiling: Callable[[], ContextManager] = contextlib.nullcontext,
    ) -> CompiledStep:
        """The compiled step for ``key``: this process's, else its package on disk, else compiled (inside ``compiling()``).

        A package that no longer loads (say, one written by another build of
        the same torch version) is compiled again.
        """
        if key in self._steps:
            return self._steps[key]
        device = example_inputs[0].device
        packaged = _packaged(device)
        package_path = self._record(key, ".pt2")
        if packaged and package_path.exists():
            with contextlib.suppress(RuntimeError):
                self._steps[key] = load_package(package_path, device)
                return self._steps[key]
        with compiling():
            start = time.perf_counter()
            package = compile_package(fn, example_inputs) if packaged else None
            if package is None:
                self._steps[key] = compile_graph(fn, example_inputs)
            else:
                self._steps[key] = load_package(write_package(package, package_path), device)
            self.last_compile_seconds = time.perf_counter() - start
        if package is None:
            _touch(self._record(key))
        return self._steps[key]

    def clear(self) -> None:
        self._steps.clear()


STEPS = StepCache()
