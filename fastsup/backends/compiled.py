"""Compiled training steps: built once per process for each key, through one entry to torch's compilers.

``compile_graph`` is the only place fastsup touches torch's private compiler
API (``make_fx`` and inductor's ``compile_fx``); where a torch release lacks
them it falls back to the public ``torch.compile``.  ``StepCache`` keeps every
compiled step of the process under the key of what it depends on, so repeated
``train`` calls, the chunks of a run, sweeps and experiments compile a shape
once.  Across processes torch's own caches take over (README: CPU speed):
inductor's FX graph cache skips code generation and the C++ compiler; it
lives in ``TORCHINDUCTOR_CACHE_DIR`` (default ``/tmp/torchinductor_$USER``),
and fastsup notes there which steps it compiled (``StepCache.compiled_before``).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, ContextManager, Hashable, Sequence

import torch

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


def compile_graph(fn: CompiledStep, example_inputs: Sequence[torch.Tensor]) -> CompiledStep:
    """``fn(*tensors) -> tuple of tensors`` compiled by inductor for inputs shaped like ``example_inputs``.

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


class StepCache:
    """Compiled steps of this process by key; remembers how long compiling took, for the compile decision.

    Every compile also leaves an empty marker file named by a digest of its key
    (and torch's version) in ``record_dir``: a later process then knows that
    inductor's disk cache most likely holds that step, and expects a warm compile.
    """

    def __init__(self, record_dir: Path | None = None):
        self._steps: dict[Hashable, CompiledStep] = {}
        self.last_compile_seconds: float | None = None
        self.record_dir = record_dir

    def __contains__(self, key: Hashable) -> bool:
        return key in self._steps

    def _marker(self, key: Hashable) -> Path:
        digest = hashlib.sha256(repr((torch.__version__, key)).encode()).hexdigest()[:32]
        return (self.record_dir or default_record_dir()) / digest

    def compiled_before(self, key: Hashable) -> bool:
        """Whether some process compiled this key with the current disk cache (per its marker)."""
        return self._marker(key).exists()

    def get(
        self,
        key: Hashable,
        fn: CompiledStep,
        example_inputs: Sequence[torch.Tensor],
        compiling: Callable[[], ContextManager] = contextlib.nullcontext,
    ) -> CompiledStep:
        """The compiled step for ``key``, compiling ``fn`` (inside ``compiling()``) the first time."""
        if key not in self._steps:
            with compiling():
                start = time.perf_counter()
                self._steps[key] = compile_graph(fn, example_inputs)
                self.last_compile_seconds = time.perf_counter() - start
            marker = self._marker(key)
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            except OSError:  # a read-only cache folder only costs a cold-compile estimate next time
                pass
        return self._steps[key]

    def clear(self) -> None:
        self._steps.clear()


STEPS = StepCache()
