"""Compiled training steps: built once per process for each key, through one entry to torch's compilers.

``compile_graph`` is the only place fastsup touches torch's private compiler
API (``make_fx`` and inductor's ``compile_fx``); where a torch release lacks
them it falls back to the public ``torch.compile``.  ``StepCache`` keeps every
compiled step of the process under the key of what it depends on, so repeated
``train`` calls, the chunks of a run, sweeps and experiments compile a shape
once.  Across processes torch's own caches take over (README: CPU speed):
inductor's FX graph cache skips code generation and the C++ compiler; it
lives in ``TORCHINDUCTOR_CACHE_DIR`` (default ``/tmp/torchinductor_$USER``).
"""

from __future__ import annotations

import contextlib
import time
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


class StepCache:
    """Compiled steps of this process by key; remembers how long compiling took, for the compile decision."""

    def __init__(self):
        self._steps: dict[Hashable, CompiledStep] = {}
        self.last_compile_seconds: float | None = None

    def __contains__(self, key: Hashable) -> bool:
        return key in self._steps

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
        return self._steps[key]

    def clear(self) -> None:
        self._steps.clear()


STEPS = StepCache()
