"""How long a 10^6-instance config takes to build, validate, chunk, fingerprint and save (issue 8, item 1).

    python -m pytest benchmarks/test_config_scale.py --benchmark-enable

With ``--benchmark-disable`` (the default) each case runs once, at 10^4 instances, as a smoke test.
"""

from __future__ import annotations

import torch

from fastsup.config import TrainConfig
from tests.utils import synthetic_result


def _instances(benchmark) -> int:
    return 10_000 if benchmark.disabled else 1_000_000


def _config(I: int) -> TrainConfig:
    return TrainConfig(n_features=2, n_hidden=1, n_instances=I, feature_probability=torch.rand(I, 1, dtype=torch.float64),
                       importance=torch.rand(I, 2, dtype=torch.float64), lr=torch.full((I,), 1e-3, dtype=torch.float64))


def test_build_and_validate(benchmark):
    I = _instances(benchmark)
    args = dict(feature_probability=torch.rand(I, 1, dtype=torch.float64), importance=torch.rand(I, 2, dtype=torch.float64))
    benchmark(lambda: TrainConfig(n_features=2, n_hidden=1, n_instances=I, **args))


def test_chunk_into_ten(benchmark):
    config = _config(_instances(benchmark))
    step = config.n_instances // 10
    benchmark(lambda: [config.select(slice(s, s + step)) for s in range(0, config.n_instances, step)])


def test_fingerprint(benchmark):
    config = _config(_instances(benchmark))
    benchmark(config.fingerprint)


def test_save(benchmark, tmp_path):
    base = synthetic_result(0, n_instances=_instances(benchmark), n_features=2, n_hidden=1)
    result = type(base)(_config(base.config.n_instances), base.params, base.loss_history, base.loss_steps,
                        base.final_loss, base.backend)
    benchmark(result.save, tmp_path / "run")
    assert (tmp_path / "run" / "result.json").stat().st_size < 4096
