"""TrainConfig validation, broadcasting and serialisation.

Every refusal must name the argument that was wrong (``pytest.raises(match=...)``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch

from fastsup.config import TrainConfig, broadcast_per_instance_feature

I, N = 4, 5  # instances, features of the configs below
BASE = dict(n_instances=I, n_features=N)


def make(**kwargs) -> TrainConfig:
    return TrainConfig(**{**BASE, **kwargs})


# ---------------------------------------------------------------------------
# refusals: (kwargs, text the message must contain)
# ---------------------------------------------------------------------------

BAD = {
    # sizes
    "n_features_0": (dict(n_features=0), "n_features"),
    "n_hidden_negative": (dict(n_hidden=-2), "n_hidden"),
    "n_instances_0": (dict(n_instances=0), "n_instances"),
    "n_features_float": (dict(n_features=2.5), "n_features"),
    "n_hidden_str": (dict(n_hidden="3"), "n_hidden"),
    "n_instances_bool": (dict(n_instances=True), "n_instances"),
    "steps_0": (dict(steps=0), "steps"),
    "steps_negative": (dict(steps=-10), "steps"),
    "steps_float": (dict(steps=100.0), "steps"),
    "steps_past_eval_step": (dict(steps=2**32 - 1), "steps"),
    "steps_reaching_the_dataset_step": (dict(steps=2**31), "steps"),
    "batch_size_0": (dict(batch_size=0), "batch_size"),
    "batch_size_negative": (dict(batch_size=-1), "batch_size"),
    "batch_size_bool": (dict(batch_size=True), "batch_size"),
    "eval_batch_size_0": (dict(eval_batch_size=0), "eval_batch_size"),
    "log_every_0": (dict(log_every=0), "log_every"),
    # feature probability and importance
    "p_above_1": (dict(feature_probability=1.5), "feature_probability"),
    "p_negative": (dict(feature_probability=-0.1), "feature_probability"),
    "p_nan": (dict(feature_probability=math.nan), "feature_probability"),
    "p_nan_in_tensor": (dict(feature_probability=torch.tensor([0.1, math.nan, 0.2, 0.3, 0.4])), "feature_probability"),
    "p_inf": (dict(feature_probability=math.inf), "feature_probability"),
    "importance_negative": (dict(importance=[1.0, -0.5, 1.0, 1.0, 1.0]), "importance"),
    "importance_nan": (dict(importance=math.nan), "importance"),
    "importance_inf": (dict(importance=math.inf), "importance"),
    # shapes that do not broadcast to [I, n] = [4, 5]
    "p_length_3": (dict(feature_probability=[0.1, 0.2, 0.3]), "feature_probability"),
    "p_3d": (dict(feature_probability=torch.full((4, 5, 6), 0.5)), "feature_probability"),
    "p_transposed": (dict(feature_probability=torch.full((5, 4), 0.5)), "feature_probability"),
    "p_ragged": (dict(feature_probability=[[0.1, 0.2], [0.3]]), "feature_probability"),
    "importance_2x5": (dict(importance=torch.ones(2, 5)), "importance"),
    "importance_4x2": (dict(importance=torch.ones(4, 2)), "importance"),
    "ambiguous_p_I_equals_n": (dict(n_instances=5, feature_probability=[0.1] * 5), "ambiguous"),
    "ambiguous_importance_I_equals_n": (dict(n_instances=5, importance=[1.0] * 5), "importance"),
    # names
    "model": (dict(model="mlp"), "model"),
    "optimizer": (dict(optimizer="sgd"), "optimizer"),
    "schedule": (dict(schedule="exponential"), "schedule"),
    "activation": (dict(activation="gelu"), "activation"),
    "activation_on_linear": (dict(model="linear", activation="exrelu"), "activation"),
    "magnitude": (dict(magnitude="gaussian"), "magnitude"),
    # optimizer hyperparameters
    "lr_0": (dict(lr=0.0), "lr"),
    "lr_negative": (dict(lr=-1e-3), "lr"),
    "lr_nan": (dict(lr=math.nan), "lr"),
    "lr_inf": (dict(lr=math.inf), "lr"),
    "lr_per_instance_too_short": (dict(lr=[1e-3, 2e-3]), "lr"),
    "lr_per_instance_too_long": (dict(lr=[1e-3] * (I + 1)), "lr"),
    "lr_per_feature": (dict(lr=torch.full((I, N), 1e-3)), "lr"),
    "lr_one_bad_instance": (dict(lr=[1e-3, 1e-3, 0.0, 1e-3]), "lr"),
    "weight_decay_negative": (dict(weight_decay=-0.01), "weight_decay"),
    "weight_decay_nan": (dict(weight_decay=math.nan), "weight_decay"),
    "weight_decay_wrong_length": (dict(weight_decay=[0.0] * 3), "weight_decay"),
    "betas_one": (dict(betas=(0.9,)), "betas"),
    "betas_1": (dict(betas=(0.9, 1.0)), "betas"),
    "eps_0": (dict(eps=0.0), "eps"),
    "eps_nan": (dict(eps=math.nan), "eps"),
    # schedule
    "warmup_cosine_no_warmup": (dict(schedule="warmup_cosine", steps=100), "warmup_steps"),
    "warmup_cosine_warmup_equals_steps": (dict(schedule="warmup_cosine", steps=100, warmup_steps=100), "warmup_steps"),
    "warmup_cosine_warmup_past_steps": (dict(schedule="warmup_cosine", steps=100, warmup_steps=500), "warmup_steps"),
    "warmup_negative": (dict(warmup_steps=-1), "warmup_steps"),
    "warmup_bool": (dict(warmup_steps=True), "warmup_steps"),
    # seed and instance ids
    "seed_negative": (dict(seed=-1), "seed"),
    "seed_2^64": (dict(seed=2**64), "seed"),
    "seed_float": (dict(seed=1.0), "seed"),
    "seed_bool": (dict(seed=True), "seed"),
    "instance_ids_duplicate": (dict(instance_ids=[0, 1, 1, 2]), "instance_ids"),
    "instance_ids_wrong_length": (dict(instance_ids=[0, 1, 2]), "instance_ids"),
    "instance_ids_negative": (dict(instance_ids=[0, 1, 2, -3]), "instance_ids"),
    "instance_ids_2^32": (dict(instance_ids=[0, 1, 2, 2**32]), "instance_ids"),
    # correlated sets and anticorrelated pairs
    "anticorrelated_p_above_half": (
        dict(feature_probability=0.6, anticorrelated_pairs=[(0, 1)]),
        "feature_probability",
    ),
    "anticorrelated_triple": (dict(feature_probability=0.3, anticorrelated_pairs=[(0, 1, 2)]), "anticorrelated_pairs"),
    "anticorrelated_out_of_range": (
        dict(feature_probability=0.3, anticorrelated_pairs=[(0, 5)]),
        "anticorrelated_pairs",
    ),
    "correlated_single": (dict(correlated_sets=[(2,)]), "correlated_sets"),
    "correlated_out_of_range": (dict(correlated_sets=[(0, 9)]), "correlated_sets"),
    "correlated_unequal_p": (
        dict(feature_probability=[0.1, 0.2, 0.3, 0.4, 0.5], correlated_sets=[(0, 1)]),
        "feature_probability",
    ),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_refused_naming_the_argument(name):
    kwargs, argument = BAD[name]
    with pytest.raises((ValueError, TypeError), match=rf"\b{re.escape(argument)}\b"):
        make(**kwargs)


# Refusals raised by nested values (a str inside a list, an index inside a group).
BAD_NESTED = {
    "p_str": (dict(feature_probability="0.5"), "feature_probability"),
    "lr_bool": (dict(lr=True), "lr"),
    "importance_none": (dict(importance=None), "importance"),
    "warmup_float": (dict(schedule="warmup_cosine", steps=10, warmup_steps=2.5), "warmup_steps"),
    "instance_ids_float": (dict(instance_ids=[0, 1, 2.5, 3]), "instance_ids"),
    "correlated_float_index": (dict(correlated_sets=[(0, 1.5)]), "correlated_sets"),
    "overlapping_sets": (dict(correlated_sets=[(0, 1), (1, 2)]), "correlated_sets"),
    "set_overlaps_pair": (
        dict(feature_probability=0.3, correlated_sets=[(0, 1)], anticorrelated_pairs=[(1, 2)]),
        "anticorrelated_pairs",
    ),
}


@pytest.mark.parametrize("name", BAD_NESTED)
def test_bad_nested_input_message_names_the_argument(name):
    kwargs, argument = BAD_NESTED[name]
    with pytest.raises((ValueError, TypeError), match=rf"\b{re.escape(argument)}\b"):
        make(**kwargs)


@pytest.mark.parametrize(
    "groups",
    [dict(correlated_sets=[(0, 1), (1, 2)]), dict(correlated_sets=[(0, 1)], anticorrelated_pairs=[(1, 2)])],
    ids=["two_sets", "set_and_pair"],
)
def test_overlapping_groups_are_refused(groups):
    with pytest.raises(ValueError, match="at most one set or pair"):
        make(feature_probability=0.3, **groups)


def test_ambiguous_message_says_how_to_fix():
    with pytest.raises(ValueError, match=r"\[5, 1\].*\[1, 5\]"):
        make(n_instances=5, feature_probability=[0.1] * 5)


# ---------------------------------------------------------------------------
# accepted values
# ---------------------------------------------------------------------------

P_FULL = torch.arange(I * N, dtype=torch.float32).view(I, N) / 40  # distinct values in [0, 0.5)


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.25, torch.full((I, N), 0.25)),
        (torch.tensor(0.25), torch.full((I, N), 0.25)),
        ([0.1, 0.2, 0.3, 0.4, 0.5], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]).expand(I, N)),
        ([0.1, 0.2, 0.3, 0.4], torch.tensor([0.1, 0.2, 0.3, 0.4]).view(I, 1).expand(I, N)),
        ([[0.1], [0.2], [0.3], [0.4]], torch.tensor([0.1, 0.2, 0.3, 0.4]).view(I, 1).expand(I, N)),
        ([[0.1, 0.2, 0.3, 0.4, 0.5]], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]).expand(I, N)),
        (P_FULL, P_FULL),
        (P_FULL.double().numpy(), P_FULL),
        (np.float64(0.25), torch.full((I, N), 0.25)),
    ],
    ids=[
        "scalar", "0d_tensor", "per_feature_n", "per_instance_I", "I_by_1", "1_by_n", "I_by_n",
        "numpy_I_by_n", "numpy_scalar",
    ],
)
@pytest.mark.parametrize("argument", ["feature_probability", "importance"])
def test_accepted_broadcasts(argument, value, expected):
    config = make(**{argument: value})
    got = config.probability() if argument == "feature_probability" else config.importance_tensor()
    assert got.dtype == torch.float32 and got.shape == (I, N)
    assert torch.equal(got, expected.to(torch.float32))


def test_ambiguity_only_when_lengths_match():
    # I == n == 1 is not ambiguous, and a [1, n] / [I, 1] value resolves I == n
    assert make(n_instances=1, n_features=1, feature_probability=[0.3]).probability().shape == (1, 1)
    p = make(n_instances=5, feature_probability=[[0.1, 0.2, 0.3, 0.4, 0.5]]).probability()
    assert torch.equal(p[3], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    p = make(n_instances=5, feature_probability=[[0.1], [0.2], [0.3], [0.4], [0.5]]).probability()
    assert torch.equal(p[:, 3], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))


def test_broadcast_helper_directly():
    out = broadcast_per_instance_feature("x", [1.0, 2.0], 2, 3)
    assert torch.equal(out, torch.tensor([[1.0] * 3, [2.0] * 3]))
    with pytest.raises(ValueError, match="x has shape"):
        broadcast_per_instance_feature("x", [1.0, 2.0], 3, 4)


def test_sparsity_is_one_minus_probability():
    config = make(feature_probability=P_FULL)
    assert torch.equal(config.sparsity, 1.0 - config.probability())
    assert torch.equal(make(feature_probability=0.0).sparsity, torch.ones(I, N))


@pytest.mark.parametrize(
    "lr, expected",
    [
        (1e-2, [1e-2] * I),
        ([1e-3, 2e-3, 3e-3, 4e-3], [1e-3, 2e-3, 3e-3, 4e-3]),
        ([[1e-3], [2e-3], [3e-3], [4e-3]], [1e-3, 2e-3, 3e-3, 4e-3]),
    ],
    ids=["scalar", "per_instance", "I_by_1"],
)
def test_lr_per_instance(lr, expected):
    assert torch.equal(make(lr=lr).lr_tensor(), torch.tensor(expected, dtype=torch.float32))


def test_defaults():
    config = TrainConfig()
    assert config.magnitude == "uniform" and config.eval_batch_size == config.batch_size
    assert torch.equal(config.weight_decay_tensor(), torch.full((config.n_instances,), 0.01))
    assert torch.equal(make(optimizer="adam").weight_decay_tensor(), torch.zeros(I))
    assert make(model="abs").magnitude == "signed"
    assert config.instance_ids.tolist() == list(range(config.n_instances))


def test_valid_groups_and_warmup_are_accepted():
    config = make(
        feature_probability=0.3,
        correlated_sets=[[0, 1]],
        anticorrelated_pairs=[[2, 3]],
        schedule="warmup_cosine",
        steps=100,
        warmup_steps=10,
        seed=2**64 - 1,
        instance_ids=[2**32 - 1, 0, 7, 2**31],
    )
    assert config.correlated_sets == ((0, 1),) and config.anticorrelated_pairs == ((2, 3),)


# ---------------------------------------------------------------------------
# serialisation and selection
# ---------------------------------------------------------------------------


def rich_config() -> TrainConfig:
    p = P_FULL[:, [0, 0, 2, 2, 4]]  # equal p within the set (0, 1) and the pair (2, 3)
    return make(
        feature_probability=p,
        importance=torch.tensor([1.0, 0.9, 0.81, 0.729, 0.6561]),
        lr=torch.tensor([1e-3, 2e-3, 3e-3, 4e-3]),
        weight_decay=np.array([0.0, 0.01, 0.02, 0.03]),
        correlated_sets=[(0, 1)],
        anticorrelated_pairs=[(2, 3)],
        model="abs",
        activation="exrelu",
        activation_threshold=0.1,
        schedule="warmup_cosine",
        steps=50,
        warmup_steps=5,
        seed=2**40 + 3,
        instance_ids=torch.tensor([10, 20, 30, 40]),
        betas=(0.8, 0.99),
    )


def test_to_dict_is_json_and_round_trips():
    config = rich_config()
    data = config.to_dict()
    text = json.dumps(data)
    back = TrainConfig.from_dict(json.loads(text))
    assert back.to_dict() == data
    assert back == config
    assert torch.equal(back.probability(), config.probability())
    assert torch.equal(back.importance_tensor(), config.importance_tensor())
    assert torch.equal(back.lr_tensor(), config.lr_tensor())
    assert torch.equal(back.weight_decay_tensor(), config.weight_decay_tensor())
    assert back.instance_ids.tolist() == [10, 20, 30, 40] and back.betas == (0.8, 0.99)


def test_tensor_inputs_keep_their_fp32_values():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.45])  # not exactly representable
    config = make(feature_probability=p)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert torch.equal(again.probability()[0], p)


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="unknown TrainConfig fields.*n_feature"):
        TrainConfig.from_dict({"n_feature": 5})


@pytest.mark.parametrize("index", [slice(1, 3), slice(0, 1), slice(2, None), slice(None, None, 2)], ids=str)
def test_select_keeps_per_instance_values(index):
    config = rich_config()
    part = config.select(index)
    ids = config.instance_ids[index]
    assert part.n_instances == len(ids) and part.instance_ids.tolist() == ids.tolist()
    assert torch.equal(part.probability(), config.probability()[index])
    assert torch.equal(part.sparsity, config.sparsity[index])
    assert torch.equal(part.importance_tensor(), config.importance_tensor()[index])
    assert torch.equal(part.lr_tensor(), config.lr_tensor()[index])
    assert torch.equal(part.weight_decay_tensor(), config.weight_decay_tensor()[index])
    assert part.correlated_sets == config.correlated_sets and part.seed == config.seed
    json.dumps(part.to_dict())


def test_select_to_as_many_instances_as_features_is_not_ambiguous():
    config = make(n_instances=10, feature_probability=[0.1, 0.2, 0.3, 0.4, 0.5])
    part = config.select(slice(0, N))  # I == n afterwards; values are stored [I, n], so no ambiguity
    assert torch.equal(part.probability(), config.probability()[:N])


# --- configs that scale (issue 8, item 1) -----------------------------------------------------------
def test_config_is_immutable():
    config = TrainConfig(n_instances=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 5


def test_per_instance_values_are_tensors_and_scalars_stay_scalars():
    config = TrainConfig(n_features=3, n_instances=4, feature_probability=[0.1, 0.2, 0.3, 0.4], lr=2e-3)
    assert isinstance(config.lr, float) and config.lr == 2e-3
    assert config.feature_probability.dtype == torch.float64 and config.feature_probability.tolist() == [0.1, 0.2, 0.3, 0.4]
    assert config.instance_ids.dtype == torch.int64 and config.instance_ids.tolist() == [0, 1, 2, 3]


def test_fingerprint_is_a_content_hash_stable_across_processes():
    import subprocess
    import sys
    code = ("from fastsup.config import TrainConfig; print(TrainConfig(n_features=3, n_instances=4, "
            "feature_probability=[0.1, 0.2, 0.3, 0.4], seed=7).fingerprint())")
    config = TrainConfig(n_features=3, n_instances=4, feature_probability=[0.1, 0.2, 0.3, 0.4], seed=7)
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert config.fingerprint() == other and len(other) == 64
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert dataclasses.replace(config, seed=8).fingerprint() != config.fingerprint()
    assert dataclasses.replace(config, feature_probability=[0.1, 0.2, 0.3, 0.5]) != config
    assert len({config, TrainConfig.from_dict(config.to_dict())}) == 1


def test_a_saved_result_keeps_per_instance_values_out_of_its_json(tmp_path):
    from tests.utils import synthetic_result
    import fastsup
    base = synthetic_result(0, n_instances=100_000, n_features=2, n_hidden=1)
    config = dataclasses.replace(base.config, feature_probability=torch.rand(100_000, 1, dtype=torch.float64))
    result = dataclasses.replace(base, config=config)
    path = result.save(tmp_path / "run")
    assert (path / "result.json").stat().st_size < 4096
    assert fastsup.load(path).config == config


@pytest.mark.parametrize("ids,error,match", [
    pytest.param([0, 1, 1], ValueError, "distinct", id="repeated"),
    pytest.param([0.0, 1.0, 2.0], TypeError, "integers", id="floats"),
    pytest.param([[0, 1, 2]], TypeError, "1-D", id="2-d"),
    pytest.param([0, 1, 2**32], ValueError, r"\[0, 2\*\*32\)", id="too-large"),
    pytest.param([2, 1, -1], ValueError, r"\[0, 2\*\*32\)", id="negative"),
])
def test_instance_ids_are_checked_as_a_tensor(ids, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(n_instances=3, instance_ids=ids)
