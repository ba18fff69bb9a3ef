"""The trainers fastsup is timed against, each written here from its published form, on a ``cases.Case``.

Every peer trains the case's tied ReLU-output model (the notebook's), batch
of the case, AdamW with the notebook's defaults, and draws its batches as the
notebook does (two ``torch.rand`` per element); ``run(steps)`` continues
training from where the last call stopped.

* ``NotebookRunner`` — the notebook's ``optimize`` (``notebook_baseline.py``), eager.
* ``NotebookCompiledRunner`` — the same, with the model under ``torch.compile``
  (what a notebook user would try first; the optimizer and sampling stay eager).
* ``FuncRunner`` — a ``torch.func`` trainer: one model's loss, ``vmap(grad(...))``
  over the instance axis, a ``torch.optim.AdamW`` step on the stacked parameters.
* ``FastsupRunner`` — fastsup's torch backend, stepped as its train loop does.
* ``JaxRunner`` — ``jax.jit`` of a ``lax.scan`` over steps, ``vmap(grad)`` over
  instances, a hand-written AdamW; only where JAX is installed.
"""

from __future__ import annotations

import importlib.util

import torch

from benchmarks import notebook_baseline as nb
from benchmarks.cases import Case
from fastsup.backends.torch_backend import TorchTrainer

HAS_JAX = importlib.util.find_spec("jax") is not None


def _notebook_model(case: Case) -> nb.Model:
    torch.manual_seed(0)
    return nb.Model(
        nb.Config(case.n_features, case.n_hidden, case.n_instances),
        feature_probability=case.probability(case.n_instances),
        importance=case.importance(case.n_instances),
    )


class NotebookRunner:
    """The notebook trainer, ``optimize`` called for each block of steps."""

    def __init__(self, case: Case):
        self.model = _notebook_model(case)
        self.batch_size = case.batch_size

    def run(self, steps: int) -> None:
        nb.optimize(self.model, n_batch=self.batch_size, steps=steps, progress=False)


class NotebookCompiledRunner(NotebookRunner):
    """The notebook trainer with ``torch.compile(model)``: forward and backward compiled, the rest eager."""

    def __init__(self, case: Case):
        super().__init__(case)
        self.model = torch.compile(self.model)


def _func_loss(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """One model's notebook loss: x ``[B, n]``, W ``[n, m]``, b and importance ``[n]``."""
    out = torch.relu((x @ W) @ W.T + b)
    return (importance * (x - out) ** 2).mean()


class FuncRunner:
    """``torch.func``: per-model loss, ``vmap(grad)`` over instances, AdamW on the stacked parameters."""

    def __init__(self, case: Case):
        model = _notebook_model(case)
        self.W, self.b = model.W.detach().clone(), model.b_final.detach().clone()
        I, n = case.n_instances, case.n_features
        self.p = model.feature_probability.expand(I, 1).reshape(I, 1, 1)
        self.importance = model.importance.expand(I, n)
        self.batch_size = case.batch_size
        # the gradient of one model's loss is its instance's gradient of the notebook's summed loss
        self.grads = torch.func.vmap(torch.func.grad(_func_loss, argnums=(0, 1)))
        self.opt = torch.optim.AdamW([self.W, self.b], lr=1e-3)

    def run(self, steps: int) -> None:
        I, n = self.importance.shape
        for _ in range(steps):
            shape = (I, self.batch_size, n)
            x = torch.where(torch.rand(shape) <= self.p, torch.rand(shape), 0.0)
            self.W.grad, self.b.grad = self.grads(self.W, self.b, x, self.importance)
            self.opt.step()


class FastsupRunner:
    """fastsup's torch backend (compiled unless ``compile=False``), stepping the way the train loop does."""

    def __init__(self, case: Case, compile: bool = True):
        self.trainer = TorchTrainer(case.config(steps=1_000_000), "cpu", compile=compile)
        self.step = 0

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.trainer.step(self.step, 1.0)
            self.step += 1


class FastsupEagerRunner(FastsupRunner):
    """fastsup's torch backend, never compiled: what short runs get."""

    def __init__(self, case: Case):
        super().__init__(case, compile=False)


class JaxRunner:
    """JAX: ``jit`` of a ``lax.scan`` over a block of steps; ``vmap(grad)`` over instances; AdamW by hand."""

    def __init__(self, case: Case):
        import jax
        import jax.numpy as jnp

        model = _notebook_model(case)
        I, n = case.n_instances, case.n_features
        p = jnp.asarray(model.feature_probability.expand(I, 1).reshape(I, 1, 1).numpy())
        importance = jnp.asarray(model.importance.expand(I, n).numpy())
        B = case.batch_size
        lr, (beta1, beta2), eps, wd = 1e-3, (0.9, 0.999), 1e-8, 0.01

        def loss(W, b, x, imp):
            out = jax.nn.relu((x @ W) @ W.T + b)
            return jnp.mean(imp * (x - out) ** 2)

        grads = jax.vmap(jax.grad(loss, argnums=(0, 1)))

        def step(state, key):
            params, m, v, t = state
            k1, k2 = jax.random.split(key)
            x = jnp.where(jax.random.uniform(k1, (I, B, n)) <= p, jax.random.uniform(k2, (I, B, n)), 0.0)
            g = grads(*params, x, importance)
            t = t + 1
            m = tuple(beta1 * mi + (1 - beta1) * gi for mi, gi in zip(m, g))
            v = tuple(beta2 * vi + (1 - beta2) * gi * gi for vi, gi in zip(v, g))
            params = tuple(
                pi * (1 - lr * wd) - lr * (mi / (1 - beta1**t)) / (jnp.sqrt(vi / (1 - beta2**t)) + eps)
                for pi, mi, vi in zip(params, m, v)
            )
            return (params, m, v, t), None

        self._jax = jax
        self._block = jax.jit(lambda state, keys: jax.lax.scan(step, state, keys)[0])
        params = (jnp.asarray(model.W.detach().numpy()), jnp.asarray(model.b_final.detach().numpy()))
        zeros = tuple(jnp.zeros_like(x) for x in params)
        self.state = (params, zeros, zeros, jnp.asarray(0.0))
        self.key = jax.random.PRNGKey(0)

    def run(self, steps: int) -> None:
        self.key, sub = self._jax.random.split(self.key)
        self.state = self._block(self.state, self._jax.random.split(sub, steps))
        self._jax.block_until_ready(self.state)


PEERS = {
    "notebook": NotebookRunner,
    "notebook+torch.compile": NotebookCompiledRunner,
    "torch.func vmap+grad": FuncRunner,
    "fastsup torch eager": FastsupEagerRunner,
    "fastsup torch": FastsupRunner,
    **({"jax jit+scan": JaxRunner} if HAS_JAX else {}),
}
