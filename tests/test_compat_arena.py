"""``fastsup.compat.arena``: ARENA's toy-model exercise API, as an ARENA notebook uses it.

Written as the exercises use the classes (``ToyModelConfig``, a model,
``model.optimize()``, read ``model.W``); the tests under "ARENA's API" use only
ARENA's names and would run unchanged against ARENA's solutions file by
swapping the import line.
"""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch

import fastsup
from fastsup.compat import arena
from fastsup.compat.arena import (  # the one-line change: import these from ARENA's solutions instead
    NUM_WARMUP_STEPS,
    NeuronComputationModel,
    NeuronModel,
    PairProbabilityError,
    ToyModel,
    ToyModelConfig,
    anthropic_lr,
    calculate_loss,
    compute_dimensionality,
    generate_anticorrelated_features,
    generate_batch,
    generate_correlated_features,
    generate_uncorrelated_features,
    linear_lr,
    linear_warmup_lr,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: one thread avoids OpenMP contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CPU = "cpu"


# --- ARENA's API ---------------------------------------------------------------------
def test_config_defaults():
    cfg = ToyModelConfig(n_inst=8)
    assert (cfg.n_inst, cfg.n_features, cfg.d_hidden) == (8, 5, 2)
    assert (cfg.n_correlated_pairs, cfg.n_anticorrelated_pairs, cfg.feat_mag_distn) == (0, 0, "unif")


def test_toy_model_layout_and_broadcasting():
    cfg = ToyModelConfig(n_inst=8, n_features=5, d_hidden=2)
    importance = 0.9 ** torch.arange(cfg.n_features)
    feature_probability = 50 ** -torch.linspace(0, 1, cfg.n_inst)
    model = ToyModel(cfg, feature_probability=feature_probability[:, None], importance=importance[None, :], device=CPU)
    assert model.W.shape == (8, 2, 5)  # [inst, d_hidden, feats]: transposed vs the paper notebook
    assert model.b_final.shape == (8, 5) and torch.equal(model.b_final, torch.zeros(8, 5))
    assert model.feature_probability.shape == (8, 5) and model.importance.shape == (8, 5)
    assert torch.equal(model.feature_probability[:, 3], feature_probability)
    assert torch.equal(model.importance[2], importance)
    default = ToyModel(cfg, device=CPU)
    assert (default.feature_probability == 0.01).all() and (default.importance == 1.0).all()


def test_optimize_then_read_W():
    cfg = ToyModelConfig(n_inst=4, n_features=5, d_hidden=2)
    torch.manual_seed(0)
    model = ToyModel(cfg, feature_probability=0.1, device=CPU)
    W = model.W
    before = W.detach().clone()
    model.optimize(steps=50, batch_size=256)
    assert model.W is W and W.requires_grad and torch.isfinite(W).all()
    assert not torch.equal(W.detach(), before)
    assert compute_dimensionality(model.W).shape == (4, 5)


def test_forward_of_each_model():
    cfg = ToyModelConfig(n_inst=3, n_features=6, d_hidden=4)
    x = torch.rand(7, 3, 6)
    toy, neuron = ToyModel(cfg, device=CPU), NeuronModel(cfg, device=CPU)
    comp = NeuronComputationModel(cfg, device=CPU)
    for model in (toy, neuron, comp):
        with torch.no_grad():
            model.b_final.normal_()
    for i in range(3):
        W = toy.W[i]
        torch.testing.assert_close(toy(x)[:, i], torch.relu(x[:, i] @ W.T @ W + toy.b_final[i]))
        W = neuron.W[i]
        torch.testing.assert_close(neuron(x)[:, i], torch.relu(torch.relu(x[:, i] @ W.T) @ W + neuron.b_final[i]))
        W1, W2 = comp.W1[i], comp.W2[i]
        torch.testing.assert_close(comp(x)[:, i], torch.relu(torch.relu(x[:, i] @ W1.T) @ W2.T + comp.b_final[i]))
    assert comp.W1.shape == (3, 4, 6) and comp.W2.shape == (3, 6, 4)


def test_calculate_loss():
    cfg = ToyModelConfig(n_inst=2, n_features=3)
    importance = torch.tensor([1.0, 0.5, 0.25])
    model = ToyModel(cfg, importance=importance, device=CPU)
    out, batch = torch.rand(4, 2, 3), torch.rand(4, 2, 3)
    expected = sum((importance * (batch[:, i] - out[:, i]) ** 2).mean() for i in range(2))
    torch.testing.assert_close(model.calculate_loss(out, batch), expected)
    comp = NeuronComputationModel(cfg, importance=importance, device=CPU)
    signed = batch - 0.5
    expected = sum((importance * (signed[:, i].abs() - out[:, i]) ** 2).mean() for i in range(2))
    torch.testing.assert_close(comp.calculate_loss(out, signed), expected)


def test_generate_batch_pairs():
    cfg = ToyModelConfig(n_inst=2, n_features=7, d_hidden=2, n_correlated_pairs=1, n_anticorrelated_pairs=2)
    p = 0.3
    torch.manual_seed(0)
    batch = ToyModel(cfg, feature_probability=p, device=CPU).generate_batch(40_000)
    assert batch.shape == (40_000, 2, 7)
    present = batch > 0
    assert torch.equal(present[..., 0], present[..., 1])  # correlated pair (0, 1): together or not at all
    for a in (2, 4):  # anticorrelated pairs (2, 3), (4, 5): never together
        assert not (present[..., a] & present[..., a + 1]).any()
    density = present.float().mean(dim=(0, 1))
    torch.testing.assert_close(density, torch.full((7,), p), atol=0.01, rtol=0)
    both = (present[..., 0] & present[..., 6]).float().mean()  # different blocks: independent
    assert abs(both.item() - p * p) < 0.01
    magnitude = batch[present]
    assert 0 <= magnitude.min() and magnitude.max() <= 1 and abs(magnitude.mean().item() - 0.5) < 0.01
    signed = NeuronComputationModel(ToyModelConfig(n_inst=1, n_features=3), feature_probability=0.5, device=CPU).generate_batch(20_000)
    assert signed.min() < -0.9 and signed.max() > 0.9 and abs((signed != 0).float().mean().item() - 0.5) < 0.02


def test_compute_dimensionality_of_known_geometries():
    # ARENA layout [inst, d_hidden, feats]: features are columns.
    antipodal = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])  # features 0, 1 antipodal; 2 alone
    unused = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # feature 2 not learned: 0/0, NaN as ARENA's
    D = compute_dimensionality(torch.stack([antipodal, unused]))
    torch.testing.assert_close(D, torch.tensor([[0.5, 0.5, 1.0], [1.0, 1.0, float("nan")]]), equal_nan=True)
    angles = torch.arange(5) * 2 * torch.pi / 5
    pentagon = torch.stack([angles.cos(), angles.sin()])
    torch.testing.assert_close(compute_dimensionality(pentagon), torch.full((5,), 0.4))


def test_compute_dimensionality_is_the_closed_form_without_autograd_state():
    # ARENA's test: random W [5, 20, 40] against the formula, here written out feature by feature.
    torch.manual_seed(0)
    W = torch.randn(5, 20, 40)
    D = compute_dimensionality(W)
    for i in range(5):
        for f in range(40):
            w = W[i, :, f]
            expected = w.dot(w) / sum((w.dot(W[i, :, g]) / w.norm()) ** 2 for g in range(40))
            torch.testing.assert_close(D[i, f], expected)
    # On a trained model's parameter, as the exercises call it: ARENA runs it under inference mode.
    model = ToyModel(ToyModelConfig(n_inst=2), device=CPU)
    D = compute_dimensionality(model.W)
    assert not D.requires_grad and D.grad_fn is None and torch.is_inference(D)


# --- fast mode is fastsup.train, in ARENA's layout ---------------------------------------
@pytest.mark.parametrize(
    "cls, fastsup_model, magnitude, cfg",
    [
        (ToyModel, "relu_output", "uniform", ToyModelConfig(n_inst=3, n_features=7, d_hidden=2, n_correlated_pairs=1, n_anticorrelated_pairs=1)),
        (ToyModel, "relu_output", "clipped_normal", ToyModelConfig(n_inst=3, n_features=7, d_hidden=2, n_correlated_pairs=1, feat_mag_distn="normal")),
        (NeuronModel, "relu_hidden", "uniform", ToyModelConfig(n_inst=3, n_features=6, d_hidden=3)),
        (NeuronComputationModel, "abs", "signed", ToyModelConfig(n_inst=2, n_features=5, d_hidden=4)),
    ],
    ids=["toy-pairs", "toy-normal", "neuron", "computation"],
)
def test_fast_mode_is_fastsup_train(cls, fastsup_model, magnitude, cfg):
    torch.manual_seed(0)
    model = cls(cfg, feature_probability=0.3, importance=0.8 ** torch.arange(cfg.n_features), device=CPU)
    names = ("W1", "W2") if cls is NeuronComputationModel else ("W",)
    start = {name: getattr(model, name).detach().transpose(1, 2).clone() for name in names}
    start["b"] = model.b_final.detach().clone()
    model.optimize(batch_size=128, steps=40, lr=3e-3, lr_scale=linear_lr, progress=False, seed=11)
    corr = [(0, 1)] if cfg.n_correlated_pairs else []
    anti = [(2, 3)] if cfg.n_anticorrelated_pairs else []
    expected = fastsup.train(
        n_features=cfg.n_features, n_hidden=cfg.d_hidden, n_instances=cfg.n_inst, model=fastsup_model,
        magnitude=magnitude, feature_probability=0.3, importance=0.8 ** torch.arange(cfg.n_features), correlated_sets=corr,
        anticorrelated_pairs=anti, steps=40, batch_size=128, lr=3e-3, optimizer="adam", weight_decay=0.0,
        schedule="linear", seed=11, init=start, progress=False,
    )
    for name in names:
        assert torch.equal(getattr(model, name).detach(), expected.params[name].transpose(1, 2))
    assert torch.equal(model.b_final.detach(), expected.b)


# --- exact mode is ARENA's own loop: the loop and its batches written here, as ARENA draws them ---------
def arena_loop(params, loss_of_batch, steps, lr, lr_scale):
    """ARENA's ``optimize``: Adam, lr set per step, zero_grad, batch, loss, backward, step."""
    opt = torch.optim.Adam(params, lr=lr)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * lr_scale(step, steps)
        opt.zero_grad()
        loss_of_batch().backward()
        opt.step()


def arena_pair_batch(batch_size, n_inst, p, n_corr, n_anti, n_uncorr):
    """ARENA's batch with pairs: per block, magnitudes first, then presence (`<=`).

    Correlated pairs share one draw; an anticorrelated pair draws (a, b), first if a <= p, second if a > p
    and b <= p / (1 - p).  ``p`` is [n_inst, 1], the same for every feature, as ARENA requires.
    """
    blocks = []
    if n_corr:
        mag = torch.rand(batch_size, n_inst, 2 * n_corr)
        present = torch.rand(batch_size, n_inst, n_corr) <= p
        blocks.append(torch.where(present.repeat_interleave(2, dim=-1), mag, 0.0))
    if n_anti:
        mag = torch.rand(batch_size, n_inst, 2 * n_anti)
        a, b = torch.rand(2, batch_size, n_inst, n_anti)
        first = a <= p
        second = (a > p) & (b <= p / (1 - p))
        present = torch.stack([first, second], dim=-1).reshape(batch_size, n_inst, 2 * n_anti)
        blocks.append(torch.where(present, mag, 0.0))
    if n_uncorr:
        mag = torch.rand(batch_size, n_inst, n_uncorr)
        blocks.append(torch.where(torch.rand(batch_size, n_inst, n_uncorr) <= p, mag, 0.0))
    return torch.cat(blocks, dim=-1)


def test_exact_mode_is_arenas_adam_loop_with_pairs():
    cfg = ToyModelConfig(n_inst=3, n_features=7, d_hidden=2, n_correlated_pairs=1, n_anticorrelated_pairs=1)
    p = torch.tensor([0.2, 0.35, 0.5])[:, None]  # 0.5: the largest p an anticorrelated pair allows
    torch.manual_seed(0)
    model = ToyModel(cfg, feature_probability=p, device=CPU)
    W = torch.nn.Parameter(model.W.detach().clone())
    b = torch.nn.Parameter(model.b_final.detach().clone())
    torch.manual_seed(1)
    model.optimize(batch_size=64, steps=30, lr=1e-2, lr_scale=linear_lr, exact=True, progress=False)

    def loss_of_batch():
        x = arena_pair_batch(64, 3, p, 1, 1, 3)
        out = torch.relu(torch.einsum("bih,ihf->bif", torch.einsum("bif,ihf->bih", x, W), W) + b)
        return ((x - out) ** 2).mean(dim=(0, 2)).sum()

    torch.manual_seed(1)
    arena_loop([W, b], loss_of_batch, 30, 1e-2, lambda s, S: 1 - s / S)
    assert torch.equal(model.W.detach(), W.detach()) and torch.equal(model.b_final.detach(), b.detach())


def test_neuron_computation_exact_mode_is_arenas_strict_presence_loop():
    # ARENA's NeuronComputationModel keeps a feature where u < p (not <=).  Pick p equal to a presence
    # uniform torch.rand returns in the first batch, so that the two comparisons differ on it.
    cfg = ToyModelConfig(n_inst=2, n_features=5, d_hidden=4)
    shape = (64, 2, 5)
    torch.manual_seed(1)
    torch.rand(shape)  # magnitudes
    p = torch.rand(shape)[0, 0, 0].item()
    torch.manual_seed(0)
    model = NeuronComputationModel(cfg, feature_probability=p, device=CPU)
    W1, W2, b = (torch.nn.Parameter(t.detach().clone()) for t in (model.W1, model.W2, model.b_final))
    torch.manual_seed(1)
    model.optimize(batch_size=64, steps=20, lr=1e-2, exact=True, progress=False)

    drawn = []

    def loss_of_batch():
        x_mag = 2 * torch.rand(shape) - 1
        u = torch.rand(shape)
        drawn.append(u)
        x = torch.where(u < p, x_mag, 0.0)
        h = torch.relu(torch.einsum("bif,ihf->bih", x, W1))
        out = torch.relu(torch.einsum("bih,ifh->bif", h, W2) + b)
        return ((x.abs() - out) ** 2).mean(dim=(0, 2)).sum()

    torch.manual_seed(1)
    arena_loop([W1, W2, b], loss_of_batch, 20, 1e-2, lambda s, S: 1.0)
    assert (drawn[0] == p).any()  # the case that tells `<` from `<=` did occur
    for ours, theirs in ((model.W1, W1), (model.W2, W2), (model.b_final, b)):
        assert torch.equal(ours.detach(), theirs.detach())


def test_subclass_overriding_forward_falls_back_to_exact():
    class Leaky(ToyModel):
        def forward(self, features):
            h = torch.einsum("...if,ihf->...ih", features, self.W)
            return torch.nn.functional.leaky_relu(torch.einsum("...ih,ihf->...if", h, self.W) + self.b_final)

    torch.manual_seed(0)
    model = Leaky(ToyModelConfig(n_inst=2), feature_probability=0.2, device=CPU)
    with pytest.warns(UserWarning, match="Leaky has its own forward.*falling back to exact"):
        model.optimize(batch_size=32, steps=5, progress=False)


def test_a_function_patched_onto_the_class_falls_back_to_exact(monkeypatch):
    # ARENA's exercises attach each solution to the class (`ToyModel.generate_batch = generate_batch`).
    def dense_batch(self, batch_size):
        return torch.rand(batch_size, self.cfg.n_inst, self.cfg.n_features)

    monkeypatch.setattr(ToyModel, "generate_batch", dense_batch)
    torch.manual_seed(0)
    model = NeuronModel(ToyModelConfig(n_inst=2), feature_probability=0.2, device=CPU)
    with pytest.warns(UserWarning, match="NeuronModel has its own generate_batch"):
        model.optimize(batch_size=32, steps=5, progress=False)


def test_attaching_the_module_functions_keeps_fast_mode(monkeypatch, recwarn):
    monkeypatch.setattr(ToyModel, "generate_batch", generate_batch)
    monkeypatch.setattr(ToyModel, "calculate_loss", calculate_loss)
    ToyModel(ToyModelConfig(n_inst=2), device=CPU).optimize(batch_size=32, steps=5, progress=False, seed=0)
    assert not [w for w in recwarn if "falling back" in str(w.message)]


# --- ARENA's configs: any object with ARENA's fields ---------------------------------------
@dataclasses.dataclass
class LookAlikeConfig:
    """A config class of its own with ARENA's fields, as ARENA's tests build theirs (not fastsup's class)."""

    n_inst: int
    n_features: int = 5
    d_hidden: int = 2
    n_correlated_pairs: int = 0
    n_anticorrelated_pairs: int = 0
    feat_mag_distn: str = "unif"


@pytest.mark.parametrize("cls", [ToyModel, NeuronModel, NeuronComputationModel])
def test_models_take_any_config_with_arenas_fields(cls):
    # As ARENA's test_model / test_neuron_model: config from another class, positional sizes,
    # weights loaded from a model built with fastsup's own config, same outputs.
    cfg = LookAlikeConfig(10, 5, 2)
    model = cls(cfg, device=CPU)
    assert model.cfg is cfg
    reference = cls(ToyModelConfig(10, 5, 2), device=CPU)
    with torch.no_grad():
        reference.b_final.normal_()
    model.load_state_dict(reference.state_dict())
    batch = reference.generate_batch(100)
    torch.testing.assert_close(model(batch), reference(batch))
    torch.testing.assert_close(model.calculate_loss(model(batch), batch), reference.calculate_loss(reference(batch), batch))
    model.optimize(batch_size=32, steps=3, progress=False)
    model.optimize(batch_size=32, steps=3, progress=False, exact=True)


def test_configs_missing_or_with_invalid_fields_are_refused():
    with pytest.raises(TypeError, match="lacks n_anticorrelated_pairs, feat_mag_distn"):
        ToyModel(types.SimpleNamespace(n_inst=2, n_features=5, d_hidden=2, n_correlated_pairs=0), device=CPU)
    with pytest.raises(ValueError, match="cfg.d_hidden must be a positive integer, got 0"):
        ToyModel(LookAlikeConfig(2, 5, 0), device=CPU)
    with pytest.raises(TypeError, match="cfg.n_correlated_pairs must be a non-negative integer"):
        ToyModel(LookAlikeConfig(2, n_correlated_pairs=1.5), device=CPU)
    with pytest.raises(ValueError, match="pairs need 6 features, but cfg.n_features=5"):
        NeuronModel(LookAlikeConfig(2, n_correlated_pairs=2, n_anticorrelated_pairs=1), device=CPU)
    with pytest.raises(ValueError, match=r"feat_mag_distn must be one of 'unif', 'normal'.*got 'gauss'"):
        ToyModel(LookAlikeConfig(2, feat_mag_distn="gauss"), device=CPU)


# --- feat_mag_distn: the values of each ARENA revision -------------------------------------
def test_normal_magnitudes_are_the_clipped_normal():
    # clamp(0.5 + 0.2 N, 0, 1): CDF Phi((x - 0.5) / 0.2) on (0, 1), and an atom of Phi(-2.5) at each end.
    # 100 000 draws: the empirical CDF's sd is <= 0.0016, so 0.006 is ~4 sd.
    torch.manual_seed(0)
    model = ToyModel(LookAlikeConfig(n_inst=4, n_features=5, feat_mag_distn="normal"), feature_probability=1.0, device=CPU)
    x = model.generate_batch(5_000).flatten()
    normal = torch.distributions.Normal(0.5, 0.2)
    assert x.min() == 0 and x.max() == 1
    for edge in (0.0, 1.0):
        assert abs((x == edge).float().mean().item() - normal.cdf(torch.tensor(0.0)).item()) < 0.002
    for q in (0.2, 0.4, 0.5, 0.6, 0.8):
        assert abs((x <= q).float().mean().item() - normal.cdf(torch.tensor(q)).item()) < 0.006
    sparse = ToyModel(LookAlikeConfig(n_inst=1, n_features=4, feat_mag_distn="normal"), feature_probability=0.25, device=CPU)
    assert abs((sparse.generate_batch(20_000) != 0).float().mean().item() - 0.25 * (1 - 0.0062)) < 0.01


def test_jump_names_the_revision_it_comes_from():
    with pytest.raises(NotImplementedError, match="feat_mag_distn='jump' comes from an earlier ARENA revision.*'unif', 'normal'"):
        ToyModel(LookAlikeConfig(2, feat_mag_distn="jump"), device=CPU)
    with pytest.raises(NotImplementedError, match="earlier ARENA revision"):
        ToyModel(ToyModelConfig(2, feat_mag_distn="jump"), device=CPU)


def test_neuron_computation_model_refuses_what_arenas_class_ignores():
    for cfg in (LookAlikeConfig(2, n_correlated_pairs=1), LookAlikeConfig(2, feat_mag_distn="normal")):
        with pytest.raises(NotImplementedError, match="draws every feature independently"):
            NeuronComputationModel(cfg, device=CPU)


# --- anticorrelated pairs with p > 0.5: refused when sampled, as ARENA -----------------------
def test_anticorrelated_model_with_p_above_half_builds_and_refuses_only_sampling():
    cfg = LookAlikeConfig(n_inst=2, n_features=4, n_anticorrelated_pairs=1)
    model = ToyModel(cfg, feature_probability=torch.tensor([0.3, 0.7])[:, None], device=CPU)  # no error here
    x = torch.rand(8, 2, 4)
    assert model.calculate_loss(model(x), x).shape == ()
    assert compute_dimensionality(model.W).shape == (2, 4)
    for sample in (lambda: model.generate_batch(8), lambda: model.generate_anticorrelated_features(8, 1),
                   lambda: model.optimize(steps=2, progress=False), lambda: model.optimize(steps=2, progress=False, exact=True)):
        with pytest.raises(PairProbabilityError, match=r"anticorrelated pair \(0, 1\) needs feature_probability <= 0.5.*got up to 0.7"):
            sample()
    with pytest.raises(AssertionError):  # what ARENA's own check raises
        model.generate_batch(8)


def test_pairs_with_different_probabilities_are_refused_when_sampled():
    p = torch.tensor([0.1, 0.2, 0.1, 0.1, 0.1])
    model = ToyModel(LookAlikeConfig(n_inst=1, n_correlated_pairs=1), feature_probability=p, device=CPU)
    with pytest.raises(PairProbabilityError, match="features 0 and 1 form a correlated pair"):
        model.generate_batch(4)


# --- module-level functions and the double-descent schedules --------------------------------
def test_module_level_functions_are_the_models_methods():
    cfg = ToyModelConfig(n_inst=3, n_features=7, n_correlated_pairs=1, n_anticorrelated_pairs=1)
    model = ToyModel(cfg, feature_probability=0.3, importance=0.9 ** torch.arange(7), device=CPU)
    for function, method, args in [
        (generate_batch, model.generate_batch, (50,)),
        (generate_correlated_features, model.generate_correlated_features, (50, 1)),
        (generate_anticorrelated_features, model.generate_anticorrelated_features, (50, 1)),
        (generate_uncorrelated_features, model.generate_uncorrelated_features, (50, 3)),
    ]:
        torch.manual_seed(4)
        expected = method(*args)
        torch.manual_seed(4)
        assert torch.equal(function(model, *args), expected)
    x = model.generate_batch(16)
    torch.testing.assert_close(calculate_loss(model, model(x), x), (model.importance * (x - model(x)) ** 2).mean(dim=(0, 2)).sum())


def test_double_descent_schedules():
    steps = 10_000
    assert [linear_warmup_lr(s, 100) for s in (0, 25, 100)] == [0.0, 0.25, 1.0]
    assert NUM_WARMUP_STEPS == 2500
    assert anthropic_lr(0, steps) == 0.0
    assert anthropic_lr(1250, steps) == pytest.approx(0.5)
    assert anthropic_lr(2500, steps) == pytest.approx(1.0)  # cosine decay starts at its peak
    middle = 2500 + (steps - 2500 - 1) / 2
    assert anthropic_lr(middle, steps) == pytest.approx(math.cos(math.pi / 4))
    assert anthropic_lr(steps - 1, steps) == pytest.approx(0.0, abs=1e-12)


def test_anthropic_lr_reads_the_warmup_length_when_called(monkeypatch):
    monkeypatch.setattr(arena, "NUM_WARMUP_STEPS", 10)
    assert anthropic_lr(5, 100) == 0.5 and anthropic_lr(10, 100) == pytest.approx(1.0)


def test_fast_mode_draws_one_int64_from_torchs_generator_and_nothing_else():
    model = NeuronModel(ToyModelConfig(n_inst=2), feature_probability=0.2, device=CPU)
    torch.manual_seed(5)
    model.optimize(batch_size=32, steps=5, progress=False)
    after_fast = torch.random.get_rng_state()
    torch.manual_seed(5)
    torch.randint(0, 2**62, (), dtype=torch.int64)
    assert torch.equal(after_fast, torch.random.get_rng_state())
    before = torch.random.get_rng_state()
    model.optimize(batch_size=32, steps=5, progress=False, seed=2)
    assert torch.equal(before, torch.random.get_rng_state())


# --- bad input ---------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="n_inst must be a positive integer"):
        ToyModelConfig(n_inst=0)
    with pytest.raises(ValueError, match="pairs need 6 features, but cfg.n_features=5"):
        ToyModelConfig(n_inst=2, n_correlated_pairs=2, n_anticorrelated_pairs=1)
    with pytest.raises(ValueError, match="feat_mag_distn must be one of"):
        ToyModelConfig(n_inst=2, feat_mag_distn="gauss")
    cfg = ToyModelConfig(n_inst=3, n_features=5)
    with pytest.raises(ValueError, match=r"feature_probability has shape \[3\].*\[3, 1\]"):
        ToyModel(cfg, feature_probability=torch.full((3,), 0.1), device=CPU)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        ToyModel(cfg, feature_probability=2.0, device=CPU)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ToyModel(cfg, device=CPU).optimize(steps=0, progress=False)
    with pytest.raises(TypeError, match="lr_scale must be a callable"):
        ToyModel(cfg, device=CPU).optimize(steps=2, lr_scale=0.5, progress=False)


# --- science: ARENA's correlated / anticorrelated experiment, fast and exact -----------
# One correlated and one anticorrelated pair in 2 dimensions at densities 10^-0.5 .. 10^-0.75.
# Measured over 4 seeds each, fast and exact mode alike: the anticorrelated pair is antipodal
# (cos = -1.000, norms 1.00) and the correlated pair collapses onto one direction (cos >= 0.998,
# norms 0.69-0.73, i.e. about 1/sqrt(2) each: the pair's principal component), every instance.
@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
def test_anticorrelated_pair_goes_antipodal_and_correlated_pair_collapses(exact):
    cfg = ToyModelConfig(n_inst=3, n_features=4, d_hidden=2, n_correlated_pairs=1, n_anticorrelated_pairs=1)
    feature_probability = 10 ** -torch.linspace(0.5, 0.75, cfg.n_inst)
    torch.manual_seed(0)
    model = ToyModel(cfg, feature_probability=feature_probability[:, None], device=CPU)
    model.optimize(steps=1000, lr=1e-2, progress=False, exact=exact)
    W = model.W.detach()
    norms = W.norm(dim=1)  # [inst, feats]
    unit = W / norms[:, None, :]
    cos_correlated = (unit[:, :, 0] * unit[:, :, 1]).sum(-1)
    cos_anticorrelated = (unit[:, :, 2] * unit[:, :, 3]).sum(-1)
    assert (cos_anticorrelated < -0.99).all(), cos_anticorrelated
    assert (norms[:, 2:] - 1).abs().max() < 0.05, norms
    assert (cos_correlated > 0.99).all(), cos_correlated
    assert (norms[:, :2] - 2**-0.5).abs().max() < 0.05, norms


# --- the double-descent model ---------------------------------------------------------------
def _double_descent_model(seed: int = 0) -> arena.DoubleDescentModel:
    torch.manual_seed(seed)
    return arena.DoubleDescentModel(ToyModelConfig(n_inst=3, n_features=40, d_hidden=2), feature_probability=0.05)


def test_double_descent_dimensionality_is_arenas_formula():
    data = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])  # two equal rows, one alone, one zero
    got = arena.DoubleDescentModel.dimensionality(data)
    torch.testing.assert_close(got[:3], torch.tensor([0.5, 0.5, 1.0]))  # k equal rows share 1/k each
    assert math.isnan(got[3])
    assert arena.DoubleDescentModel.dimensionality(data.expand(5, 4, 2)).shape == (5, 4)


def test_double_descent_batches_are_unit_norm_and_the_loss_can_be_per_instance():
    model = _double_descent_model()
    batch = model.generate_batch(64)
    norms = batch.norm(dim=-1)
    assert ((norms - 1).abs() < 1e-5).logical_or(norms == 0).all() and (norms > 0).any()
    out = model(batch)
    per_instance = model.calculate_loss(out, batch, per_inst=True)
    assert per_instance.shape == (3,)
    torch.testing.assert_close(per_instance.sum(), model.calculate_loss(out, batch))


def test_double_descent_fast_mode_is_arenas_loop_on_its_fixed_dataset():
    """Oracle: ARENA's loop (full-batch torch AdamW, anthropic_lr) run here on the dataset fast mode trained on."""
    fast = _double_descent_model()
    start = {k: v.detach().clone() for k, v in fast.named_parameters()}
    points, losses = fast._optimize_on_a_dataset(12, 60, 10, 1e-2, anthropic_lr, 1e-2, False, "torch", 5, False)
    assert points.shape == (12, 3, 40)
    W, b = (torch.nn.Parameter(start[k].clone()) for k in ("W", "b_final"))
    optimizer = torch.optim.AdamW([W, b], lr=1e-2, weight_decay=1e-2)
    for step in range(60):
        for group in optimizer.param_groups:
            group["lr"] = 1e-2 * anthropic_lr(step, 60)
        h = torch.einsum("tif,ihf->tih", points, W)
        loss = (torch.relu(torch.einsum("tih,ihf->tif", h, W) + b) - points).pow(2).mean(dim=(0, 2))
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    torch.testing.assert_close(fast.W.detach(), W.detach(), rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(losses, fast.calculate_loss(fast(points), points, per_inst=True), rtol=1e-5, atol=1e-8)


def test_double_descent_optimize_returns_the_best_instances_points_and_weights(capsys):
    for exact in (False, True):
        model = _double_descent_model()
        points, W = model.optimize(batch_size=10, steps=30, lr=1e-2, exact=exact, progress=False, seed=3)
        best = int(capsys.readouterr().out.split("#")[1].split(",")[0])
        assert points.shape == (10, 40) and torch.equal(W, model.W[best].detach())
        norms = points.norm(dim=-1)
        assert ((norms - 1).abs() < 1e-5).logical_or(norms == 0).all()


def test_double_descent_module_constants_are_arenas():
    assert (arena.NUM_BATCH_UPDATES, arena.WEIGHT_DECAY, arena.LEARNING_RATE) == (50_000, 1e-2, 1e-3)
