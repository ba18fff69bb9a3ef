"""Drop-in replacement for the toy-model API of ARENA's superposition exercises.

Switch by changing one import::

    from fastsup.compat.arena import (ToyModelConfig, ToyModel, NeuronModel, NeuronComputationModel,
                                      DoubleDescentModel, compute_dimensionality, constant_lr, linear_lr,
                                      cosine_decay_lr, anthropic_lr)

Which ARENA
-----------
The current revision of ARENA's "toy models of superposition" exercises
(chapter 1.3.1 in 2024, 1.5.4 now): ``ToyModelConfig(n_inst, n_features=5,
d_hidden=2, n_correlated_pairs=0, n_anticorrelated_pairs=0,
feat_mag_distn="unif")``.  A model takes any config object with those six
fields (ARENA's own ``ToyModelConfig`` included), so ARENA's tests, which
build the config with ARENA's class, run against these models.
``feat_mag_distn``: ``"unif"`` (uniform magnitudes in [0, 1)) and
``"normal"`` (``clamp(0.5 + 0.2 * N(0, 1), 0, 1)``, fastsup's
``magnitude="clipped_normal"``), the two values the current revision
defines.  ``"jump"`` comes from an earlier revision (the one whose SAE config
offers the "standard" and "gated" architectures), which declares it
without defining a distribution for it; it is refused with an error that
says so.

Names, signatures and layouts are ARENA's: ``W`` is ``[inst, d_hidden,
feats]`` (transposed relative to the paper notebook and to fastsup, which
use ``[inst, feats, d_hidden]``); ``feature_probability`` and ``importance``
are broadcast to ``[inst, feats]`` at construction; batches are ``[batch,
inst, feats]`` with the correlated pairs first, then the anticorrelated
pairs, then the uncorrelated features (pair k of a block is features
``2k, 2k + 1`` of that block).  The batch generators and ``calculate_loss``
also exist as module-level functions of the model, as ARENA defines them
before attaching them to the class.

Batches, as ARENA draws them
----------------------------
Every generator draws the magnitudes first, then the presence uniforms.
``ToyModel`` and ``NeuronModel`` test presence with ``u <= p``,
``NeuronComputationModel`` with ``u < p`` (each as ARENA's own class does;
``torch.rand`` can return p itself).  A correlated pair shares one presence
draw.  An anticorrelated pair draws two uniforms (a, b): the first feature
is present if a <= p, the second if a > p and b <= p / (1 - p), so each is
present with probability p and never both; that needs p <= 0.5, which is
checked, as ARENA checks it, when a batch is drawn (a model with p > 0.5
can be built and used for anything but sampling).

Two ways to train
-----------------
``model.optimize(...)`` (fast mode) trains through ``fastsup.train`` with
ARENA's optimizer (``torch.optim.Adam``, no weight decay), lr ``lr *
lr_scale(step, steps)``, the model's own starting weights and loss, and
writes the trained weights back into the model's parameters in place
(transposing between the layouts).  Batches come from fastsup's sampler:
ARENA's distribution (the anticorrelated pair from one uniform u, first if
u < p, second if 1 - u < p: the same three outcomes with the same
probabilities), another random stream.  Its seed is one int64 drawn from
torch's default CPU generator per call (or ``seed=``), and fast mode draws
nothing else from torch's generators: see "Randomness" in
``fastsup.compat.notebook``, which applies here word for word with ARENA's
loop in place of the notebook's.  ``model.optimize(..., exact=True)`` runs
ARENA's own loop instead (``generate_batch``, autograd,
``torch.optim.Adam``), bit for bit; fast mode falls back to it, with a
warning, when ``forward``, ``calculate_loss`` or a batch generator is not
fastsup's own (a subclass override, or a function patched onto the class).

Models and their fastsup equivalents: ``ToyModel`` = ``relu_output``
(x -> ReLU(WᵀW x + b)); ``NeuronModel`` = ``relu_hidden`` (ReLU on the
hidden layer too); ``NeuronComputationModel`` = ``abs`` (untied ``W1``
``[inst, d_hidden, feats]``, ``W2`` ``[inst, feats, d_hidden]``, data
uniform in [-1, 1) where present, target |x|; like ARENA's, it draws every
feature independently, so it refuses configs with pairs or
``feat_mag_distn="normal"``, which ARENA's class would silently ignore).

``DoubleDescentModel`` = ``relu_output`` on one fixed dataset: its
``optimize(batch_size, ...)`` draws one batch of unit-norm points and trains
full-batch AdamW on it (fastsup's ``dataset_size=batch_size,
normalize_points=True``), then returns the best instance's points and ``W``.
fastsup normalizes every point with a nonzero norm (ARENA: norms of at least
1e-6; with magnitudes u/p the two differ only for points whose every active
magnitude is below 1e-6).

Not here: ARENA's SAE classes (SAE training belongs to SAE libraries;
ARENA's SAE code runs on top of this ``ToyModel``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from ._common import (
    as_tensor,
    check_importance,
    check_lr_scale,
    check_probability,
    constant_lr,
    cosine_decay_lr,
    exact_loop,
    fast_seed,
    linear_lr,
    nonnegative_int,
    not_fastsups_own,
    positive_int,
    resolve_device,
    schedule,
)

__all__ = [
    "device",
    "ToyModelConfig",
    "ToyModel",
    "NeuronModel",
    "NeuronComputationModel",
    "PairProbabilityError",
    "generate_batch",
    "generate_correlated_features",
    "generate_anticorrelated_features",
    "generate_uncorrelated_features",
    "calculate_loss",
    "compute_dimensionality",
    "constant_lr",
    "linear_lr",
    "cosine_decay_lr",
    "DoubleDescentModel",
    "NUM_WARMUP_STEPS",
    "NUM_BATCH_UPDATES",
    "WEIGHT_DECAY",
    "LEARNING_RATE",
    "linear_warmup_lr",
    "anthropic_lr",
]

# ARENA's module-level default device (fastsup runs on CUDA or the CPU).
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

CONFIG_FIELDS = ("n_inst", "n_features", "d_hidden", "n_correlated_pairs", "n_anticorrelated_pairs", "feat_mag_distn")
# feat_mag_distn values of the current ARENA revision -> fastsup's magnitude distribution
MAGNITUDES = {"unif": "uniform", "normal": "clipped_normal"}
# values other ARENA revisions declare, with what fastsup knows of them
OTHER_REVISIONS = {
    "jump": "comes from an earlier ARENA revision of these exercises (the one whose SAE config offers the "
    "'standard' and 'gated' architectures), which declares it but defines no distribution for it",
}


class PairProbabilityError(ValueError, AssertionError):
    """A batch was asked of a model whose paired features cannot be sampled with their feature_probability.

    A ``ValueError`` that is also an ``AssertionError``: ARENA checks the same
    condition with ``assert`` when a batch is drawn, so code written against
    ARENA that expects its ``AssertionError`` still catches this one.
    """


def _check_config(owner: str, cfg) -> None:
    """Refuse a config without ARENA's six fields, or with an invalid one (any class: duck typing)."""
    missing = [name for name in CONFIG_FIELDS if not hasattr(cfg, name)]
    if missing:
        raise TypeError(
            f"{owner}: cfg must have ARENA's ToyModelConfig fields {', '.join(CONFIG_FIELDS)}; "
            f"{type(cfg).__name__} lacks {', '.join(missing)}"
        )
    for name in ("n_inst", "n_features", "d_hidden"):
        positive_int(owner, f"cfg.{name}", getattr(cfg, name))
    for name in ("n_correlated_pairs", "n_anticorrelated_pairs"):
        nonnegative_int(owner, f"cfg.{name}", getattr(cfg, name))
    paired = 2 * (cfg.n_correlated_pairs + cfg.n_anticorrelated_pairs)
    if paired > cfg.n_features:
        raise ValueError(
            f"{owner}: {cfg.n_correlated_pairs} correlated + {cfg.n_anticorrelated_pairs} anticorrelated "
            f"pairs need {paired} features, but cfg.n_features={cfg.n_features}"
        )
    if cfg.feat_mag_distn not in MAGNITUDES and cfg.feat_mag_distn not in OTHER_REVISIONS:
        raise ValueError(
            f"{owner}: cfg.feat_mag_distn must be one of {', '.join(map(repr, MAGNITUDES))} (the values of "
            f"ARENA's current revision), got {cfg.feat_mag_distn!r}"
        )


@dataclasses.dataclass
class ToyModelConfig:
    """ARENA's config: ``n_inst`` models trained side by side, ``n_features`` → ``d_hidden``."""

    n_inst: int
    n_features: int = 5
    d_hidden: int = 2
    n_correlated_pairs: int = 0
    n_anticorrelated_pairs: int = 0
    feat_mag_distn: str = "unif"  # "unif" or "normal" (see the module docstring)

    def __post_init__(self):
        _check_config("ToyModelConfig", self)
        for name in ("n_inst", "n_features", "d_hidden", "n_correlated_pairs", "n_anticorrelated_pairs"):
            setattr(self, name, int(getattr(self, name)))  # numpy integers become ints


def _pairs(cfg) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The correlated and anticorrelated pairs as feature indices (ARENA's block layout)."""
    corr = [(2 * k, 2 * k + 1) for k in range(cfg.n_correlated_pairs)]
    start = 2 * cfg.n_correlated_pairs
    anti = [(start + 2 * k, start + 2 * k + 1) for k in range(cfg.n_anticorrelated_pairs)]
    return corr, anti


class ToyModel(nn.Module):
    """ARENA's tied toy model x -> ReLU(WᵀW x + b_final), ``W`` ``[inst, d_hidden, feats]``."""

    # fastsup's name for this network
    _fastsup_model = "relu_output"
    # ARENA's presence test for this class (see the module docstring)
    _is_present = staticmethod(torch.le)

    def __init__(self, cfg, feature_probability=0.01, importance=1.0, device=device):
        super().__init__()
        name = type(self).__name__
        _check_config(name, cfg)
        if cfg.feat_mag_distn in OTHER_REVISIONS:
            raise NotImplementedError(
                f"{name}: feat_mag_distn={cfg.feat_mag_distn!r} {OTHER_REVISIONS[cfg.feat_mag_distn]}; "
                f"fastsup.compat.arena implements the current revision's {', '.join(map(repr, MAGNITUDES))}"
            )
        self._check_supported(cfg)
        self.cfg = cfg
        dev = resolve_device(device, name)
        self.feature_probability = self._broadcast("feature_probability", feature_probability, dev)
        check_probability(name, self.feature_probability)
        self.importance = self._broadcast("importance", importance, dev)
        check_importance(name, self.importance)
        self._init_parameters()
        self.to(dev)

    def _check_supported(self, cfg) -> None:
        """Refuse what this class's ARENA counterpart does not define (every config, for ToyModel)."""

    def _broadcast(self, attr: str, value, dev) -> torch.Tensor:
        cfg, name = self.cfg, type(self).__name__
        tensor = as_tensor(name, attr, value).to(dev)
        try:
            return tensor.broadcast_to((cfg.n_inst, cfg.n_features))
        except RuntimeError:
            raise ValueError(
                f"{name}: {attr} has shape {list(tensor.shape)}, which does not broadcast to "
                f"[n_inst, n_features] = [{cfg.n_inst}, {cfg.n_features}]; use a number, [{cfg.n_inst}, 1] "
                f"(one per instance), [{cfg.n_features}] or [1, {cfg.n_features}] (one per feature), "
                f"or [{cfg.n_inst}, {cfg.n_features}]"
            ) from None

    def _init_parameters(self) -> None:
        # ARENA: xavier_normal_ on the 3-D CPU tensor, then moved to the device.
        cfg = self.cfg
        self.W = nn.Parameter(nn.init.xavier_normal_(torch.empty((cfg.n_inst, cfg.d_hidden, cfg.n_features))))
        self.b_final = nn.Parameter(torch.zeros((cfg.n_inst, cfg.n_features)))

    # --- the network -------------------------------------------------------
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features [..., inst, feats] -> [..., inst, feats]
        h = torch.einsum("...if,ihf->...ih", features, self.W)
        out = torch.einsum("...ih,ihf->...if", h, self.W)
        return F.relu(out + self.b_final)

    def _target(self, batch: torch.Tensor) -> torch.Tensor:
        return batch

    def calculate_loss(self, out: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error, mean over batch and features, summed over instances (a scalar)."""
        return self._loss_per_instance(out, batch).sum()

    def _loss_per_instance(self, out: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        error = self.importance * (self._target(batch) - out) ** 2
        return error.mean(dim=tuple(d for d in range(error.ndim) if d != error.ndim - 2))

    # --- data ----------------------------------------------------------------
    def _device(self) -> torch.device:
        return self.b_final.device

    def _rand_magnitude(self, shape) -> torch.Tensor:
        if self.cfg.feat_mag_distn == "normal":
            return torch.clamp(0.5 + 0.2 * torch.randn(shape, device=self._device()), 0.0, 1.0)
        return torch.rand(shape, device=self._device())

    def _check_pairs_can_be_sampled(self) -> None:
        """ARENA's checks at batch time: a pair shares one p, and an anticorrelated pair needs p <= 0.5."""
        name = type(self).__name__
        corr, anti = _pairs(self.cfg)
        for kind, pairs in (("correlated", corr), ("anticorrelated", anti)):
            for a, b in pairs:
                if not torch.equal(self.feature_probability[:, a], self.feature_probability[:, b]):
                    raise PairProbabilityError(
                        f"{name}: features {a} and {b} form a {kind} pair and share presence draws, "
                        "so they need the same feature_probability in every instance"
                    )
        for a, b in anti:
            if (self.feature_probability[:, a] > 0.5).any():
                raise PairProbabilityError(
                    f"{name}: anticorrelated pair ({a}, {b}) needs feature_probability <= 0.5 (2p <= 1, "
                    f"since the two are never present together), got up to "
                    f"{self.feature_probability[:, a].max().item():g}"
                )

    def generate_correlated_features(self, batch_size: int, n_correlated_pairs: int) -> torch.Tensor:
        """``[batch, inst, 2 * n_correlated_pairs]``: the two features of a pair are present together or not at all."""
        self._check_pairs_can_be_sampled()
        I = self.cfg.n_inst
        magnitude = self._rand_magnitude((batch_size, I, 2 * n_correlated_pairs))
        p = self.feature_probability[:, 0 : 2 * n_correlated_pairs : 2]  # [inst, pairs]
        present = self._is_present(torch.rand((batch_size, I, n_correlated_pairs), device=self._device()), p)
        return torch.where(present.repeat_interleave(2, dim=-1), magnitude, 0.0)

    def generate_anticorrelated_features(self, batch_size: int, n_anticorrelated_pairs: int) -> torch.Tensor:
        """``[batch, inst, 2 * n_anticorrelated_pairs]``: uniforms (a, b) per pair; first if a <= p, second if a > p and b <= p/(1-p)."""
        self._check_pairs_can_be_sampled()
        I, start = self.cfg.n_inst, 2 * self.cfg.n_correlated_pairs
        magnitude = self._rand_magnitude((batch_size, I, 2 * n_anticorrelated_pairs))
        p = self.feature_probability[:, start : start + 2 * n_anticorrelated_pairs : 2]
        first_u, second_u = torch.rand((2, batch_size, I, n_anticorrelated_pairs), device=self._device())
        first = self._is_present(first_u, p)
        # given the first is absent (probability 1 - p), p / (1 - p) makes the second present with probability p
        second = ~first & self._is_present(second_u, p / (1 - p))
        present = torch.stack([first, second], dim=-1).flatten(-2)
        return torch.where(present, magnitude, 0.0)

    def generate_uncorrelated_features(self, batch_size: int, n_uncorrelated: int) -> torch.Tensor:
        """``[batch, inst, n_uncorrelated]``: the last ``n_uncorrelated`` features, each present independently."""
        I = self.cfg.n_inst
        magnitude = self._rand_magnitude((batch_size, I, n_uncorrelated))
        p = self.feature_probability[:, self.cfg.n_features - n_uncorrelated :]
        present = self._is_present(torch.rand((batch_size, I, n_uncorrelated), device=self._device()), p)
        return torch.where(present, magnitude, 0.0)

    def generate_batch(self, batch_size: int) -> torch.Tensor:
        """``[batch_size, inst, feats]``: correlated pairs, then anticorrelated pairs, then uncorrelated features."""
        cfg = self.cfg
        n_uncorrelated = cfg.n_features - 2 * (cfg.n_correlated_pairs + cfg.n_anticorrelated_pairs)
        blocks = []
        if cfg.n_correlated_pairs:
            blocks.append(self.generate_correlated_features(batch_size, cfg.n_correlated_pairs))
        if cfg.n_anticorrelated_pairs:
            blocks.append(self.generate_anticorrelated_features(batch_size, cfg.n_anticorrelated_pairs))
        if n_uncorrelated:
            blocks.append(self.generate_uncorrelated_features(batch_size, n_uncorrelated))
        return torch.cat(blocks, dim=-1)

    # --- layouts: ARENA <-> fastsup --------------------------------------------
    def _to_fastsup(self) -> dict[str, torch.Tensor]:
        return {"W": self.W.detach().transpose(1, 2).float(), "b": self.b_final.detach().float()}

    def _from_fastsup(self, params: dict[str, torch.Tensor]) -> None:
        self.W.copy_(params["W"].transpose(1, 2))
        self.b_final.copy_(params["b"])

    # --- training --------------------------------------------------------------
    def optimize(
        self,
        batch_size: int = 1024,
        steps: int = 5_000,
        log_freq: int = 50,
        lr: float = 1e-3,
        lr_scale=constant_lr,
        *,
        exact: bool = False,
        backend: str = "auto",
        progress: bool = True,
        seed=None,
        compile: bool | None = None,
    ) -> None:
        """Train with ``torch.optim.Adam`` semantics (no weight decay); the result lands in the model's parameters.

        ARENA's arguments; ``log_freq`` is how often the loss is logged;
        ``lr_scale`` is any callable ``lr_scale(step, steps)``.  Keyword-only
        fastsup additions: ``exact`` (ARENA's own loop and random stream),
        ``backend``, ``progress`` (tqdm bar), ``seed`` (fast mode's data
        seed; default one int64 drawn from torch's default CPU generator),
        ``compile`` (fast mode, torch backend; None lets fastsup decide).
        """
        name = type(self).__name__
        owner = f"{name}.optimize"
        batch_size = positive_int(owner, "batch_size", batch_size)
        steps = positive_int(owner, "steps", steps)
        log_freq = positive_int(owner, "log_freq", log_freq)
        check_lr_scale(owner, lr_scale)
        if not exact:
            known = next(k for k in type(self).__mro__ if k in _FAST_METHODS)
            reason = not_fastsups_own(self, _FAST_METHODS[known])
            if reason is not None:
                warnings.warn(
                    f"{owner}: {reason}, which fast mode cannot run; falling back to exact=True "
                    "(ARENA's own loop, not faster)",
                    UserWarning,
                    stacklevel=2,
                )
                exact = True
        if exact:
            self._optimize_exact(batch_size, steps, log_freq, lr, lr_scale, progress)
        else:
            self._optimize_fast(batch_size, steps, log_freq, lr, lr_scale, progress, backend, seed, compile)

    def _optimize_exact(self, batch_size, steps, log_freq, lr, lr_scale, progress) -> None:
        def batch_loss():
            batch = self.generate_batch(batch_size)
            return self.calculate_loss(self(batch), batch), None

        optimizer = torch.optim.Adam(list(self.parameters()), lr=lr)
        exact_loop(optimizer, steps, lr, lr_scale, batch_loss, log_every=log_freq, n_instances=self.cfg.n_inst,
                   progress=progress)

    def _optimize_fast(self, batch_size, steps, log_freq, lr, lr_scale, progress, backend, seed, compile) -> None:
        from ..train import train

        self._check_pairs_can_be_sampled()  # as ARENA's first batch would
        cfg = self.cfg
        corr, anti = _pairs(cfg)
        result = train(
            n_features=cfg.n_features,
            n_hidden=cfg.d_hidden,
            n_instances=cfg.n_inst,
            model=self._fastsup_model,
            magnitude=self._magnitude(),
            feature_probability=self.feature_probability.detach().cpu().float(),
            importance=self.importance.detach().cpu().float(),
            correlated_sets=corr,
            anticorrelated_pairs=anti,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=0.0,
            optimizer="adam",
            seed=fast_seed(seed),
            log_every=log_freq,
            backend=backend,
            device=self._device(),
            progress=progress,
            compile=compile,
            init=self._to_fastsup(),
            lr_schedule=schedule(f"{type(self).__name__}.optimize", lr_scale, steps),
        )
        with torch.no_grad():
            self._from_fastsup(result.params)

    def _magnitude(self) -> str:
        return MAGNITUDES[self.cfg.feat_mag_distn]


class NeuronModel(ToyModel):
    """ARENA's ``NeuronModel``: ReLU on the hidden layer too, x -> ReLU(Wᵀ ReLU(W x) + b_final)."""

    _fastsup_model = "relu_hidden"

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = F.relu(torch.einsum("...if,ihf->...ih", features, self.W))
        out = torch.einsum("...ih,ihf->...if", h, self.W)
        return F.relu(out + self.b_final)


class NeuronComputationModel(ToyModel):
    """ARENA's ``NeuronComputationModel``: untied x -> ReLU(W2 ReLU(W1 x) + b_final), trained to output |x|.

    ``W1`` ``[inst, d_hidden, feats]``, ``W2`` ``[inst, feats, d_hidden]``
    (``kaiming_uniform_`` on the 3-D tensors, as ARENA); present features are
    uniform in [-1, 1), presence ``u < p`` (ARENA's comparison for this
    class).  ``feature_probability`` defaults to 1.0, as ARENA's.
    """

    _fastsup_model = "abs"
    _is_present = staticmethod(torch.lt)

    def __init__(self, cfg, feature_probability=1.0, importance=1.0, device=device):
        super().__init__(cfg, feature_probability=feature_probability, importance=importance, device=device)

    def _check_supported(self, cfg) -> None:
        if cfg.n_correlated_pairs or cfg.n_anticorrelated_pairs or cfg.feat_mag_distn != "unif":
            raise NotImplementedError(
                "NeuronComputationModel: ARENA's class draws every feature independently with uniform magnitudes "
                "in [-1, 1), whatever the config says; use n_correlated_pairs=0, n_anticorrelated_pairs=0 and "
                f"feat_mag_distn='unif' (got {cfg.n_correlated_pairs}, {cfg.n_anticorrelated_pairs}, "
                f"{cfg.feat_mag_distn!r})"
            )

    def _init_parameters(self) -> None:
        cfg = self.cfg
        self.W1 = nn.Parameter(nn.init.kaiming_uniform_(torch.empty((cfg.n_inst, cfg.d_hidden, cfg.n_features))))
        self.W2 = nn.Parameter(nn.init.kaiming_uniform_(torch.empty((cfg.n_inst, cfg.n_features, cfg.d_hidden))))
        self.b_final = nn.Parameter(torch.zeros((cfg.n_inst, cfg.n_features)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = F.relu(torch.einsum("...if,ihf->...ih", features, self.W1))
        out = torch.einsum("...ih,ifh->...if", h, self.W2)
        return F.relu(out + self.b_final)

    def _rand_magnitude(self, shape) -> torch.Tensor:
        return 2 * torch.rand(shape, device=self._device()) - 1

    def _target(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.abs()

    def _magnitude(self) -> str:
        return "signed"

    def _to_fastsup(self) -> dict[str, torch.Tensor]:
        # ARENA W1 [inst, d_hidden, feats] -> fastsup W1 [inst, feats, d_hidden];
        # ARENA W2 [inst, feats, d_hidden] -> fastsup W2 [inst, d_hidden, feats].
        return {
            "W1": self.W1.detach().transpose(1, 2).float(),
            "W2": self.W2.detach().transpose(1, 2).float(),
            "b": self.b_final.detach().float(),
        }

    def _from_fastsup(self, params: dict[str, torch.Tensor]) -> None:
        self.W1.copy_(params["W1"].transpose(1, 2))
        self.W2.copy_(params["W2"].transpose(1, 2))
        self.b_final.copy_(params["b"])


# --- the double-descent section ---------------------------------------------------------------
# ARENA's module constants (read when optimize is called, so they can be changed).
NUM_WARMUP_STEPS = 2500
NUM_BATCH_UPDATES = 50_000
WEIGHT_DECAY = 1e-2
LEARNING_RATE = 1e-3


def linear_warmup_lr(step, steps):
    """Rises linearly from 0 at step 0 to 1 at step ``steps``."""
    return step / steps


def anthropic_lr(step, steps):
    """The paper's double-descent schedule: linear warm-up over ``NUM_WARMUP_STEPS``, then cosine decay to 0."""
    if step < NUM_WARMUP_STEPS:
        return linear_warmup_lr(step, NUM_WARMUP_STEPS)
    return cosine_decay_lr(step - NUM_WARMUP_STEPS, steps - NUM_WARMUP_STEPS)


class DoubleDescentModel(ToyModel):
    """ARENA's ``DoubleDescentModel``: ``ToyModel`` trained full-batch on one fixed batch of unit-norm points."""

    @classmethod
    def dimensionality(cls, data: torch.Tensor) -> torch.Tensor:
        """D of each row of ``data`` ``[..., batch, d_hidden]`` → ``[..., batch]``; a zero row gives NaN, as ARENA's."""
        return torch.where((data == 0).all(dim=-1), math.nan, metrics.feature_dimensionality(data))

    def generate_batch(self, batch_size: int) -> torch.Tensor:
        """ToyModel's batch with each point scaled to unit L2 norm (points with a norm below 1e-6 as they are)."""
        batch = super().generate_batch(batch_size)
        norms = batch.norm(dim=-1, keepdim=True)
        return batch / torch.where(norms.abs() < 1e-6, torch.ones_like(norms), norms)

    def calculate_loss(self, out: torch.Tensor, batch: torch.Tensor, per_inst: bool = False) -> torch.Tensor:
        """ToyModel's loss; ``per_inst=True`` gives it per instance, ``[inst]``."""
        loss = self._loss_per_instance(out, batch)
        return loss if per_inst else loss.sum()

    def optimize(self, batch_size: int, steps: int | None = None, log_freq: int = 100, lr: float | None = None,
                 lr_scale=anthropic_lr, weight_decay: float | None = None, *, exact: bool = False,
                 backend: str = "auto", progress: bool = True, seed=None,
                 compile: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Train every instance full-batch AdamW on one batch of ``batch_size`` points; return the best one's.

        ARENA's arguments (``steps``, ``lr`` and ``weight_decay`` default to
        ``NUM_BATCH_UPDATES``, ``LEARNING_RATE`` and ``WEIGHT_DECAY``); returns
        ``(batch[:, best], W[best])``, ``[batch_size, feats]`` and ``[d_hidden,
        feats]``, best by training loss.  Keyword-only fastsup additions as in
        ``ToyModel.optimize``; fast mode's points are the dataset fastsup
        draws (``fastsup.data.dataset``), exact mode's ARENA's ``generate_batch``.
        """
        owner = "DoubleDescentModel.optimize"
        steps = positive_int(owner, "steps", NUM_BATCH_UPDATES if steps is None else steps)
        batch_size = positive_int(owner, "batch_size", batch_size)
        log_freq = positive_int(owner, "log_freq", log_freq)
        lr = LEARNING_RATE if lr is None else lr
        weight_decay = WEIGHT_DECAY if weight_decay is None else weight_decay
        check_lr_scale(owner, lr_scale)
        reason = None if exact else not_fastsups_own(self, _FAST_METHODS[DoubleDescentModel])
        if reason is not None:
            warnings.warn(f"{owner}: {reason}, which fast mode cannot run; falling back to exact=True "
                          "(ARENA's own loop, not faster)", UserWarning, stacklevel=2)
            exact = True
        if exact:
            batch = self.generate_batch(batch_size)
            optimizer = torch.optim.AdamW(list(self.parameters()), lr=lr, weight_decay=weight_decay)
            exact_loop(optimizer, steps, lr, lr_scale, lambda: (self.calculate_loss(self(batch), batch), None),
                       log_every=log_freq, n_instances=self.cfg.n_inst, progress=progress)
            with torch.inference_mode():
                per_instance = self.calculate_loss(self(batch), batch, per_inst=True)
        else:
            batch, per_instance = self._optimize_on_a_dataset(batch_size, steps, log_freq, lr, lr_scale,
                                                              weight_decay, progress, backend, seed, compile)
        best = int(per_instance.argmin())
        print(f"Best instance = #{best}, with loss {per_instance[best].item():.4e}")
        return batch[:, best], self.W[best].detach()

    def _optimize_on_a_dataset(self, batch_size, steps, log_freq, lr, lr_scale, weight_decay, progress, backend,
                               seed, compile):
        from ..data import dataset
        from ..evaluate import evaluate
        from ..train import train

        self._check_pairs_can_be_sampled()
        cfg = self.cfg
        corr, anti = _pairs(cfg)
        result = train(
            n_features=cfg.n_features, n_hidden=cfg.d_hidden, n_instances=cfg.n_inst, model="relu_output",
            magnitude=self._magnitude(), feature_probability=self.feature_probability.detach().cpu().float(),
            importance=self.importance.detach().cpu().float(), correlated_sets=corr, anticorrelated_pairs=anti,
            dataset_size=batch_size, normalize_points=True, steps=steps, lr=lr, weight_decay=weight_decay,
            optimizer="adamw", seed=fast_seed(seed), log_every=log_freq, backend=backend, device=self._device(),
            progress=progress, compile=compile, init=self._to_fastsup(),
            lr_schedule=schedule("DoubleDescentModel.optimize", lr_scale, steps),
        )
        with torch.no_grad():
            self._from_fastsup(result.params)
        points = dataset(result.config, self._device()).permute(2, 0, 1)  # [inst, feats, T] -> ARENA's [T, inst, feats]
        return points, evaluate(result, split="train", device=self._device())


# Methods that fast mode replaces by fastsup's fused equivalents, per class, as defined here (captured at
# import, so that a method a notebook patches onto the class later is seen as not fastsup's).
_FAST_METHOD_NAMES = (
    "forward",
    "calculate_loss",
    "generate_batch",
    "generate_correlated_features",
    "generate_anticorrelated_features",
    "generate_uncorrelated_features",
)
_FAST_METHODS = {
    cls: {name: getattr(cls, name) for name in _FAST_METHOD_NAMES}
    for cls in (DoubleDescentModel, NeuronComputationModel, NeuronModel, ToyModel)
}

# ARENA defines these as functions of the model before attaching them to its class; these are
# fastsup's methods as functions (they dispatch on the model's class, e.g. signed magnitudes for
# a NeuronComputationModel).
generate_batch = ToyModel.generate_batch
generate_correlated_features = ToyModel.generate_correlated_features
generate_anticorrelated_features = ToyModel.generate_anticorrelated_features
generate_uncorrelated_features = ToyModel.generate_uncorrelated_features
calculate_loss = ToyModel.calculate_loss


@torch.inference_mode()
def compute_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """Feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² for ARENA's ``W`` ``[inst, d_hidden, feats]`` → ``[inst, feats]``.

    Feature i is column ``W[..., :, i]``.  As ARENA's: computed under
    ``torch.inference_mode`` (no autograd state, the result is an inference
    tensor), and an all-zero column gives NaN (0/0).
    (``fastsup.metrics.feature_dimensionality`` takes the transposed,
    notebook layout and gives 0 there.)  A 2-D ``[d_hidden, feats]`` gives
    ``[feats]``.
    """
    if not isinstance(W, torch.Tensor):
        W = torch.as_tensor(W)
    if W.ndim not in (2, 3):
        raise ValueError(f"compute_dimensionality: W must be [inst, d_hidden, feats] or [d_hidden, feats], got shape {list(W.shape)}")
    dimensionality = metrics.feature_dimensionality(W.transpose(-1, -2))
    unlearned = (W == 0).all(dim=-2)
    return torch.where(unlearned, math.nan, dimensionality)
