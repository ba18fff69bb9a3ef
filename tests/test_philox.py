"""The randomness contract (DESIGN.md section 4): Philox4x32-10 in torch and in Triton.

* known-answer vectors from Random123 for the torch ``philox4x32`` and for
  Triton's ``tl.philox``;
* ``fastsup.philox.uniform`` bit-identical to a per-element sampler written
  with Triton's own ``tl.philox`` / ``tl.uint_to_uniform_float`` and to the
  tiled kernel ``fastsup.kernels.sampling.uniform``;
* statistics and the structural properties the trainer relies on (streams,
  prefix, instance independence), checked at size in torch.

Interpreter kernels are slow (~15 ms per 1024 values), so every kernel test
here draws at most a few thousand values.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import HAS_TRITON, KERNEL_DEVICE, requires_triton

from fastsup import philox
from fastsup.philox import EVAL_STEP, MASK32, Stream, philox4x32, seed_tensor, split_seed, uint32_to_uniform, uniform

if HAS_TRITON:
    import triton
    import triton.language as tl

    from fastsup.kernels import sampling

# Random123 kat_vectors, philox4x32 10 rounds: (counter c0..c3, key k0 k1, output).
KNOWN_ANSWERS = {
    "zeros": ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    "ones": (
        (MASK32, MASK32, MASK32, MASK32),
        (MASK32, MASK32),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    "pi": (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
}

# (seed, instance ids, step, n_rows, n_columns, stream): odd sizes, every word near its limit.
BIT_CASES = {
    "7x5_seed0": (0, [0, 1, 2], 0, 7, 5, Stream.DATA),
    "big_seed_big_ids": (2**64 - 1, [2**32 - 1, 2**31], 2**32 - 2, 5, 3, Stream.MAGNITUDE_NORMAL),
    "seed_2^32+17_eval_step": (2**32 + 17, [2**31 + 5], EVAL_STEP, 9, 2, Stream.INIT_W2_PAIR),
    "seed_2^63_step_2^31": (2**63, [7, 0], 2**31, 6, 1, Stream.MAGNITUDE),
    "one_element_step1_stream255": (0x299F31D0A4093822, [1], 1, 1, 1, 255),
    "several_row_and_column_blocks": (12345, [3], 17, 261, 9, Stream.INIT_W),
}


def _seed(key: tuple[int, int]) -> int:
    return key[0] | (key[1] << 32)


# ---------------------------------------------------------------------------
# known answers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", KNOWN_ANSWERS)
def test_torch_philox_known_answer(name):
    counter, key, expected = KNOWN_ANSWERS[name]
    words = philox4x32(*(torch.tensor([c], dtype=torch.int64) for c in counter), *key)
    assert [int(w) for w in words] == list(expected)


def test_split_seed_is_lo_hi():
    assert philox.split_seed(0x299F31D0A4093822) == (0xA4093822, 0x299F31D0)
    assert philox.split_seed(2**64 - 1) == (MASK32, MASK32)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.0, True, "0"])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        philox.split_seed(seed)


if HAS_TRITON:

    @triton.jit(do_not_specialize=["seed"])
    def _philox_words_kernel(
        out_ptr,  # int64 [4, N]: the four output words of each call
        counters_ptr,  # int64 [4, N]: counter words c0..c3 of each call
        seed,  # scalar int < 2**64: key (seed mod 2**32, seed >> 32), as tl.philox splits it
        N: tl.constexpr,  # calls, power of two
    ):
        idx = tl.arange(0, N)
        c0 = tl.load(counters_ptr + idx).to(tl.uint32)
        c1 = tl.load(counters_ptr + N + idx).to(tl.uint32)
        c2 = tl.load(counters_ptr + 2 * N + idx).to(tl.uint32)
        c3 = tl.load(counters_ptr + 3 * N + idx).to(tl.uint32)
        r0, r1, r2, r3 = tl.philox(seed, c0, c1, c2, c3)
        tl.store(out_ptr + idx, r0.to(tl.int64))
        tl.store(out_ptr + N + idx, r1.to(tl.int64))
        tl.store(out_ptr + 2 * N + idx, r2.to(tl.int64))
        tl.store(out_ptr + 3 * N + idx, r3.to(tl.int64))

    @triton.jit(do_not_specialize=["seed", "step"])
    def _triton_reference_uniform_kernel(
        out_ptr,  # fp32 [I, n_columns, n_rows], contiguous
        instance_ids_ptr,  # int64 [I]
        seed,  # scalar int < 2**64, split into the key by tl.philox itself
        step,  # scalar int < 2**32
        n_rows,  # scalar int
        n_columns,  # scalar int
        STREAM: tl.constexpr,  # stream < 256
        BLOCK: tl.constexpr,  # rows per iteration, power of two
    ):
        """Grid (I, n_columns).  One Philox call per element, lane picked with tl.where:
        deliberately unlike the tiled kernel, so the two check each other."""
        pid_instance = tl.program_id(0)
        column = tl.program_id(1)
        instance = tl.load(instance_ids_ptr + pid_instance).to(tl.uint32)
        for start in range(0, n_rows, BLOCK):
            rows = start + tl.arange(0, BLOCK)
            zero = tl.zeros([BLOCK], dtype=tl.uint32)
            c0 = (rows // 4).to(tl.uint32)
            c1 = zero + (column.to(tl.uint32) | (STREAM << 24))
            c2 = zero + step.to(tl.uint32)
            c3 = zero + instance
            r0, r1, r2, r3 = tl.philox(seed, c0, c1, c2, c3)
            lane = rows % 4
            word = tl.where(lane == 0, r0, tl.where(lane == 1, r1, tl.where(lane == 2, r2, r3)))
            offsets = (pid_instance * n_columns + column).to(tl.int64) * n_rows + rows
            tl.store(out_ptr + offsets, tl.uint_to_uniform_float(word), mask=rows < n_rows)


def _triton_reference_uniform(seed, instance_ids, step, n_rows, n_columns, stream):
    instance_ids = instance_ids.to(KERNEL_DEVICE)
    out = torch.full((len(instance_ids), n_columns, n_rows), float("nan"), device=KERNEL_DEVICE)
    grid = (len(instance_ids), n_columns)
    _triton_reference_uniform_kernel[grid](
        out, instance_ids, seed, int(step), n_rows, n_columns, STREAM=int(stream), BLOCK=64
    )
    return out.cpu()


@requires_triton
@pytest.mark.parametrize("name", KNOWN_ANSWERS)
def test_triton_philox_known_answer(name):
    counter, key, expected = KNOWN_ANSWERS[name]
    counters = torch.tensor(counter, dtype=torch.int64, device=KERNEL_DEVICE).view(4, 1).repeat(1, 2)
    out = torch.full((4, 2), -1, dtype=torch.int64, device=KERNEL_DEVICE)
    _philox_words_kernel[(1,)](out, counters, _seed(key), N=2)
    assert out[:, 0].tolist() == list(expected)
    assert out[:, 1].tolist() == list(expected)


# ---------------------------------------------------------------------------
# bit identity: torch contract == Triton's own philox == the tiled kernel
# ---------------------------------------------------------------------------


@requires_triton
@pytest.mark.parametrize("name", BIT_CASES)
def test_torch_uniform_equals_triton_philox(name):
    seed, ids, step, n_rows, n_columns, stream = BIT_CASES[name]
    ids = torch.tensor(ids, dtype=torch.int64)
    expected = _triton_reference_uniform(seed, ids, step, n_rows, n_columns, stream)
    got = uniform(seed, ids, step, n_rows, n_columns, stream)
    assert got.dtype == torch.float32 and got.shape == (len(ids), n_columns, n_rows)
    assert torch.equal(got, expected)


@requires_triton
@pytest.mark.parametrize("name", BIT_CASES)
def test_kernel_uniform_equals_torch_uniform(name):
    seed, ids, step, n_rows, n_columns, stream = BIT_CASES[name]
    ids = torch.tensor(ids, dtype=torch.int64)
    expected = uniform(seed, ids, step, n_rows, n_columns, stream)
    got = sampling.uniform(seed, ids.to(KERNEL_DEVICE), step, n_rows, n_columns, stream).cpu()
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.equal(got, expected)


@requires_triton
def test_kernel_uniform_takes_a_tensor_step():
    ids = torch.tensor([4, 2])
    step = torch.tensor(2**32 - 2)
    assert torch.equal(
        sampling.uniform(99, ids.to(KERNEL_DEVICE), step, 6, 3, Stream.DATA).cpu(),
        uniform(99, ids, step, 6, 3, Stream.DATA),
    )


@requires_triton
@pytest.mark.parametrize("shape", [(0, 3), (5, 0)], ids=["no_rows", "no_columns"])
def test_kernel_uniform_empty(shape):
    out = sampling.uniform(0, torch.tensor([0, 1], device=KERNEL_DEVICE), 0, *shape, Stream.DATA)
    assert out.shape == (2, shape[1], shape[0])


@requires_triton
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(seed=2**64), "seed"),
        (dict(step=2**32), "step"),
        (dict(step=-1), "step"),
        (dict(stream=256), "stream"),
        (dict(n_columns=2**24 + 1), "n_columns"),
    ],
    ids=["seed", "step_too_big", "step_negative", "stream", "n_columns"],
)
def test_kernel_uniform_refuses_out_of_contract(kwargs, name):
    ids = torch.tensor([0], device=KERNEL_DEVICE)
    args = dict(seed=0, instance_ids=ids, step=0, n_rows=4, n_columns=2, stream=Stream.DATA)
    with pytest.raises(ValueError, match=name):
        sampling.uniform(**{**args, **kwargs})


# ---------------------------------------------------------------------------
# the word -> float conversion
# ---------------------------------------------------------------------------


def test_uint32_to_uniform_extremes():
    words = torch.tensor([0, 1, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1], dtype=torch.int64)
    u = uint32_to_uniform(words)
    assert u.dtype == torch.float32
    # negatives (as int32) fold onto non-negatives: w and ~w give the same float
    assert u[0] == u[5] == 0.0 and u[1] == u[4] and u[2] == u[3]
    assert u[2] < 1.0
    assert u[2] == torch.tensor(2**31 - 1, dtype=torch.float32) * torch.tensor(4.6566127342e-10, dtype=torch.float32)


# ---------------------------------------------------------------------------
# statistics (torch, at size)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_draw():
    """4 instances x 64 columns x 4096 rows = 2**20 uniforms."""
    return uniform(2024, torch.arange(4), 3, 4096, 64, Stream.DATA)


def test_uniform_range(big_draw):
    assert big_draw.min() >= 0.0 and big_draw.max() < 1.0


def test_uniform_mean_and_variance(big_draw):
    u = big_draw.double().flatten()
    n = u.numel()
    # standard errors of the mean and of the sample variance of U(0, 1)
    assert abs(u.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var().item() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / n)


def test_uniform_histogram_is_flat(big_draw):
    n_bins = 32
    counts = torch.histc(big_draw, bins=n_bins, min=0.0, max=1.0).double()
    expected = big_draw.numel() / n_bins
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 31 + 6 * math.sqrt(2 * 31)  # chi-squared, 31 degrees of freedom, ~6 sd


@pytest.mark.parametrize("lane", range(4))
def test_each_lane_is_uniform(big_draw, lane):
    # lane = row % 4 picks one of the four Philox outputs
    u = big_draw[:, :, lane::4].double().flatten()
    assert abs(u.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / u.numel())


@pytest.mark.parametrize("axis", [1, 2], ids=["neighbouring_columns", "neighbouring_rows"])
def test_neighbours_are_uncorrelated(big_draw, axis):
    u = big_draw.double() - 0.5
    a, b = u.narrow(axis, 0, u.shape[axis] - 1), u.narrow(axis, 1, u.shape[axis] - 1)
    corr = (a * b).mean() / (1 / 12)
    assert abs(corr.item()) < 5 / math.sqrt(a.numel())


def test_normal_mean_and_variance():
    z = philox.normal(7, torch.arange(2), 0, 4096, 16, Stream.INIT_W).double().flatten()
    n = z.numel()
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert abs(z.var().item() - 1.0) < 5 * math.sqrt(2 / n)


# ---------------------------------------------------------------------------
# structure: what differs, what does not
# ---------------------------------------------------------------------------

BASE = dict(seed=11, instance_ids=torch.tensor([0, 5]), step=7, n_rows=512, n_columns=8, stream=Stream.DATA)

VARIATIONS = {
    "stream": dict(stream=Stream.MAGNITUDE),
    "last_stream": dict(stream=255),
    "step": dict(step=8),
    "eval_step": dict(step=EVAL_STEP),
    "instance": dict(instance_ids=torch.tensor([1, 6])),
    "seed_lo": dict(seed=12),
    "seed_hi": dict(seed=11 + 2**32),
}


@pytest.mark.parametrize("name", VARIATIONS)
def test_changing_one_index_changes_the_numbers(name):
    a = uniform(**BASE)
    b = uniform(**{**BASE, **VARIATIONS[name]})
    # independent draws coincide with probability ~2**-31 per element
    assert (a == b).double().mean().item() < 1e-3


def test_columns_and_rows_differ():
    u = uniform(**BASE)
    assert (u[:, 0] == u[:, 1]).double().mean().item() < 1e-3
    assert (u[:, :, 0::4] == u[:, :, 1::4]).double().mean().item() < 1e-3


def test_same_indices_same_numbers():
    assert torch.equal(uniform(**BASE), uniform(**BASE))
    assert torch.equal(uniform(**BASE), uniform(**{**BASE, "step": torch.tensor(7)}))


@pytest.mark.parametrize("small_rows", [1, 3, 4, 7, 257])
def test_row_prefix(small_rows):
    big = uniform(**{**BASE, "n_rows": 1000})
    small = uniform(**{**BASE, "n_rows": small_rows})
    assert torch.equal(small, big[:, :, :small_rows])


def test_column_prefix():
    big = uniform(**{**BASE, "n_columns": 20})
    small = uniform(**{**BASE, "n_columns": 3})
    assert torch.equal(small, big[:, :3])


def test_instance_does_not_depend_on_its_companions():
    together = uniform(**{**BASE, "instance_ids": torch.tensor([9, 2**31 + 1, 0, 4])})
    for position, instance in enumerate([9, 2**31 + 1, 0, 4]):
        alone = uniform(**{**BASE, "instance_ids": torch.tensor([instance])})
        assert torch.equal(alone[0], together[position])
    reversed_order = uniform(**{**BASE, "instance_ids": torch.tensor([4, 0, 2**31 + 1, 9])})
    assert torch.equal(reversed_order, together.flip(0))


@requires_triton
def test_kernel_prefix_and_instance_independence():
    args = dict(seed=5, step=3, stream=Stream.DATA)
    both = sampling.uniform(instance_ids=torch.tensor([8, 2], device=KERNEL_DEVICE), n_rows=11, n_columns=3, **args)
    alone = sampling.uniform(instance_ids=torch.tensor([2], device=KERNEL_DEVICE), n_rows=6, n_columns=2, **args)
    assert torch.equal(alone[0], both[1, :2, :6])


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**63 + 12345, 2**64 - 1])
def test_a_seed_tensor_has_the_key_words_of_its_seed(seed):
    """The compiled step takes the seed as a 0-d int64 tensor (negative from 2**63 on)."""
    low, high = split_seed(seed_tensor(seed))
    assert (int(low), int(high)) == split_seed(seed)
