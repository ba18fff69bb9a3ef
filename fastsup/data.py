"""Synthetic sparse features, drawn from the randomness contract (``fastsup.philox``).

One uniform u per element decides presence and magnitude together:
``x = u * (1/p) if u < p else 0`` — given u < p, u/p is uniform on [0, 1), so
this is the notebook's distribution with half the random numbers.  The
reciprocal is computed once on the host so that every backend multiplies by
the same fp32 number (a GPU may lower ``/`` to an approximate divide).

Magnitudes: ``uniform`` [0, 1), ``signed`` [-1, 1) as ``(u/p) * 2 - 1``
(the doubling is exact, so a fused multiply-add rounds identically), and
``clipped_normal`` ``clamp(0.5 + 0.2 N, 0, 1)`` from its own streams.
Features in a correlated set share the presence draw of the set's first
member; an anticorrelated pair (a, b) uses a's draw u, a fires if u < p and b
if 1 - u < p (p <= 0.5, so never both).  Grouped features take their
magnitude from the ``MAGNITUDE`` stream, since their presence draw is shared.
``normalize_points`` scales each point to unit L2 norm.  A fixed dataset
(``dataset_size`` T) is the batch of ``philox.DATASET_STEP``: every training
step draws those same T points (``sampling_step``).
"""

from __future__ import annotations

import dataclasses

import torch

from .config import TrainConfig
from .philox import DATASET_STEP, Stream, normal, uniform


@dataclasses.dataclass
class DataSpec:
    """The per-run constants of the sampler, as tensors on the training device.

    ``p``/``inv_p``: fp32 ``[I, n]``; ``presence_column``: int64 ``[n]`` (the
    column whose draw decides presence); ``flip``/``grouped``: bool ``[n, 1]``.
    """

    seed: int | torch.Tensor  # a tensor (``philox.seed_tensor``) inside the compiled step
    instance_ids: torch.Tensor
    p: torch.Tensor
    inv_p: torch.Tensor
    magnitude: str
    presence_column: torch.Tensor | None
    flip: torch.Tensor | None
    grouped: torch.Tensor | None
    normalize: bool = False

    def instances(self, part: slice) -> "DataSpec":
        """The spec of a contiguous subset of the instances (data are keyed by instance id: unchanged)."""
        return dataclasses.replace(self, instance_ids=self.instance_ids[part], p=self.p[part], inv_p=self.inv_p[part])

    @classmethod
    def from_config(cls, config: TrainConfig, device) -> "DataSpec":
        p = config.probability()
        inv_p = torch.where(p > 0, 1.0 / torch.where(p > 0, p, 1.0), 0.0)
        presence_column = flip = grouped = None
        if config.correlated_sets or config.anticorrelated_pairs:
            n = config.n_features
            presence_column = torch.arange(n)
            flip = torch.zeros(n, dtype=torch.bool)
            grouped = torch.zeros(n, dtype=torch.bool)
            for group in config.correlated_sets:
                presence_column[list(group)] = group[0]
                grouped[list(group)] = True
            for first, second in config.anticorrelated_pairs:
                presence_column[second] = first
                flip[second] = True
                grouped[[first, second]] = True
            presence_column = presence_column.to(device)
            flip, grouped = flip.view(n, 1).to(device), grouped.view(n, 1).to(device)
        return cls(
            seed=config.seed,
            instance_ids=config.instance_id_tensor().to(device),
            p=p.to(device),
            inv_p=inv_p.to(device),
            magnitude=config.magnitude,
            presence_column=presence_column,
            flip=flip,
            grouped=grouped,
            normalize=config.normalize_points,
        )


# fp32's largest value below 1.  u < p does not make fl(u * fl(1/p)) < 1 (fl(1/p)
# may round up: ~6% of fp32 p, ~6e-8 of elements), so present magnitudes are
# clamped here; a min is exact, so every backend stays bit-identical.
BELOW_ONE = 1.0 - 2.0**-24


def _scaled(u: torch.Tensor, inv_p: torch.Tensor) -> torch.Tensor:
    """u / p as a multiply by the host reciprocal, kept in [0, 1)."""
    return torch.clamp(u * inv_p.unsqueeze(-1), max=BELOW_ONE)


def sample_batch(spec: DataSpec, step, batch_size: int, first_row: int = 0) -> torch.Tensor:
    """The batch of one training step, feature-major: fp32 ``[I, n, batch_size]``.

    ``step`` is an int or a 0-d int64 tensor; ``philox.EVAL_STEP`` gives the
    evaluation batch.  ``first_row`` (a multiple of 4): rows ``first_row …``
    of that step's draw, for batches sampled in pieces.
    """
    n = spec.p.shape[1]
    u = uniform(spec.seed, spec.instance_ids, step, batch_size, n, Stream.DATA, first_row)
    p = spec.p.unsqueeze(-1)
    if spec.presence_column is None:
        presence_u = u
        magnitude = _scaled(u, spec.inv_p)
    else:
        presence_u = u.index_select(1, spec.presence_column)
        presence_u = torch.where(spec.flip, 1.0 - presence_u, presence_u)
        independent = uniform(spec.seed, spec.instance_ids, step, batch_size, n, Stream.MAGNITUDE, first_row)
        magnitude = torch.where(spec.grouped, independent, _scaled(u, spec.inv_p))
    if spec.magnitude == "clipped_normal":
        z = normal(spec.seed, spec.instance_ids, step, batch_size, n, Stream.MAGNITUDE, first_row)
        magnitude = torch.clamp(0.5 + 0.2 * z, 0.0, 1.0)
    # Absent elements by a multiply with the presence mask: eager, torch.where
    # cost 4x as much (5.7 against 1.3 ns per element, 1 thread, 2-core AMD EPYC
    # VM).  Magnitudes are still in [0, 1) here, so an absent element is +0.0.
    present = presence_u < p
    x = magnitude * present
    if spec.magnitude == "signed":
        x = x * 2.0 - present.to(x.dtype)  # 2 m - 1 where present (the doubling is exact), +0.0 where absent
    if spec.normalize:
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        x = x / torch.where(norm > 0, norm, 1.0)
    return x


def sampling_step(config: TrainConfig, step):
    """The data step of training step ``step``: itself, or ``DATASET_STEP`` for a fixed dataset."""
    return step if config.dataset_size is None else DATASET_STEP


def dataset(config: TrainConfig, device="cpu") -> torch.Tensor:
    """A fixed-dataset config's T training points, fp32 ``[I, n, T]`` (feature-major, like a batch)."""
    if config.dataset_size is None:
        raise ValueError("dataset() needs a config with dataset_size (a fixed dataset); this one samples "
                         "fresh data at every step")
    return sample_batch(DataSpec.from_config(config, device), DATASET_STEP, config.dataset_size)


def target_of(x: torch.Tensor, model: str) -> torch.Tensor:
    """What the model must reproduce: x itself, or |x| for the abs (computation) model."""
    return x.abs() if model == "abs" else x
