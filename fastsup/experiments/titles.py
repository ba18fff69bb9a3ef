"""Figure titles and captions generated from the specs (sizes, steps, densities, restarts), never typed."""

from __future__ import annotations

from collections.abc import Mapping

from ..config import TrainConfig
from ..sweep import Sweep
from .base import Variant

__all__ = ["density_titles", "densities", "experiment_title", "variant_title"]


def densities(config: TrainConfig) -> list[float]:
    """One density 1-S per instance: the mean of p over features (exact when uniform)."""
    return config.probability().double().mean(dim=1).tolist()


def density_titles(config: TrainConfig) -> list[str]:
    """``"1-S = 0.050"`` per instance."""
    return [f"1-S = {p:.3f}" for p in densities(config)]


def _sweep_title(sweep: Sweep) -> str:
    config = TrainConfig(**sweep.point_fields(sweep.points()[0]), n_instances=1)
    sizes = " × ".join(str(len(values)) for values in sweep.axes.values())
    axes = " × ".join(sweep.axes)
    if len(sweep.axes) == 1:
        where = f"over {sizes} values"
    else:
        where = f"on a {sizes} grid" if sweep.mode == "grid" else f"zipped, {len(sweep.points())} points"
    return (f"{config.model} {config.n_features}→{config.n_hidden}, {axes} {where}, "
            f"best of {sweep.restarts} restart{'s' if sweep.restarts != 1 else ''}, {config.steps} steps")


def variant_title(variant: Variant) -> str:
    """A short title of one variant: a TrainConfig's own title, or a sweep's sizes, grid and restarts."""
    return variant.title() if isinstance(variant, TrainConfig) else _sweep_title(variant)


def experiment_title(name: str, variants: Mapping[str, Variant]) -> str:
    """``"name: <variant title>"``, or one ``label: title`` per variant, joined by ``; `` (just the title
    when it starts with the label, as a model name does)."""
    if len(variants) == 1:
        return f"{name}: {variant_title(next(iter(variants.values())))}"

    def labelled(label, variant):
        title = variant_title(variant)
        return title if title.split(" ", 1)[0] == label else f"{label}: {title}"

    return f"{name}: " + "; ".join(labelled(label, v) for label, v in variants.items())
