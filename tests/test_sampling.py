"""Label-balanced batches, and property tests of the sampler and the loss."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_dallmi.loss import DALLMiLoss, draw_mixup_partners
from sklearn_dallmi.sampling import LabelBalancedSampler, balanced_batches, n_positive_slots

# ------------------------------------------------------------------ helpers


def disjoint_positives(n_rows=45, n_labels=9, n_with_pos=7):
    """Row i is the only-label positive of ``i % n_labels`` if that is below
    ``n_with_pos``; labels ``n_with_pos..n_labels-1`` have no positive, and so
    have rows whose ``i % n_labels`` is one of them. Every drawn row thus
    tells which label it was drawn for."""
    positives = np.zeros((n_rows, n_labels), dtype=bool)
    label_of = np.full(n_rows, -1)
    for i in range(n_rows):
        if i % n_labels < n_with_pos:
            positives[i, i % n_labels] = True
            label_of[i] = i % n_labels
    return positives, label_of


def parts(batches, k):
    """Split each batch into its uniform rows and its ``k`` drawn rows."""
    uniform = [b[: len(b) - k] for b in batches]
    drawn = [b[len(b) - k:] for b in batches]
    return uniform, drawn


# ------------------------------------------------------------ n_positive_slots


@pytest.mark.parametrize(
    "batch_size, rho, expected",
    [(8, 0.25, 2), (10, 0.25, 3), (16, 0.1, 2), (4, 0.0, 0), (2, 0.9, 1), (5, 0.99, 4)],
)
def test_n_positive_slots(batch_size, rho, expected):
    # ceil(rho * B), but at least one uniform slot is always left.
    assert n_positive_slots(batch_size, rho) == expected


# ----------------------------------------------------------- balanced_batches

B, RHO = 8, 0.25
K = math.ceil(RHO * B)  # 2 label-balanced slots
L_POS = 7


def test_every_label_with_positives_appears_within_first_batches():
    positives, label_of = disjoint_positives()
    batches, _ = balanced_batches(positives, B, RHO, np.random.default_rng(0))
    _, drawn = parts(batches, K)
    first = math.ceil(L_POS / K)
    labels = {int(label_of[r]) for d in drawn[:first] for r in d}
    assert labels == set(range(L_POS))


@pytest.mark.parametrize("seed", range(5))
def test_each_full_cycle_covers_every_label_exactly_once(seed):
    positives, label_of = disjoint_positives()
    batches, cycle = balanced_batches(positives, B, RHO, np.random.default_rng(seed))
    _, drawn = parts(batches, K)
    sequence = [int(label_of[r]) for d in drawn for r in d]
    assert -1 not in sequence  # every drawn row is an observed positive
    n_full = len(sequence) // L_POS
    assert n_full >= 2
    for c in range(n_full):
        assert sorted(sequence[c * L_POS:(c + 1) * L_POS]) == list(range(L_POS))
    # The unfinished cycle: no repetition, and what is left waits in `cycle`.
    rest = sequence[n_full * L_POS:]
    assert len(set(rest)) == len(rest)
    assert sorted(rest + list(cycle)) == list(range(L_POS))


def test_uniform_parts_are_a_permutation_of_all_rows():
    positives, _ = disjoint_positives()
    n = positives.shape[0]
    batches, _ = balanced_batches(positives, B, RHO, np.random.default_rng(0))
    uniform, drawn = parts(batches, K)
    assert sorted(np.concatenate(uniform).tolist()) == list(range(n))
    # Full batches hold B rows; the number of batches is ceil(n / (B - K)).
    assert len(batches) == math.ceil(n / (B - K))
    assert all(len(b) == B for b in batches[:-1])
    assert all(len(d) == K for d in drawn)
    # Rows without any positive are visited too (the published sampler never
    # drew them).
    no_pos = np.flatnonzero(~positives.any(axis=1))
    assert set(no_pos) <= set(np.concatenate(uniform).tolist())


def test_same_seed_same_batches_different_seed_differs():
    positives, _ = disjoint_positives()
    a, ca = balanced_batches(positives, B, RHO, np.random.default_rng(7))
    b, cb = balanced_batches(positives, B, RHO, np.random.default_rng(7))
    c, _ = balanced_batches(positives, B, RHO, np.random.default_rng(8))
    assert len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert ca == cb
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_rho_zero_gives_plain_shuffled_batches():
    positives, _ = disjoint_positives()
    n = positives.shape[0]
    batches, cycle = balanced_batches(positives, B, 0.0, np.random.default_rng(0))
    assert [len(b) for b in batches] == [B] * (n // B) + ([n % B] if n % B else [])
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(n))
    assert not np.array_equal(order, np.arange(n))  # shuffled
    assert cycle == []


def test_labels_without_positive_never_enter_the_cycle():
    positives, label_of = disjoint_positives()
    rng = np.random.default_rng(0)
    cycle = None
    seen = set()
    for _ in range(4):  # several epochs
        batches, cycle = balanced_batches(positives, B, RHO, rng, cycle)
        assert set(cycle) <= set(range(L_POS))
        _, drawn = parts(batches, K)
        seen |= {int(label_of[r]) for d in drawn for r in d}
    assert seen == set(range(L_POS))  # labels 7 and 8 never drawn


def test_no_positive_at_all_still_yields_plain_batches():
    positives = np.zeros((10, 3), dtype=bool)
    batches, cycle = balanced_batches(positives, 4, 0.5, np.random.default_rng(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert cycle == []
    sampler = LabelBalancedSampler(positives, 4, 0.5, random_state=0)
    assert len(sampler) == 3 == len(list(sampler))


def test_cycle_carries_over_between_calls():
    positives, label_of = disjoint_positives()
    rng = np.random.default_rng(3)
    b1, c1 = balanced_batches(positives, B, RHO, rng)
    # 45 rows / 6 uniform per batch = 8 batches * 2 slots = 16 draws
    # = 2 cycles of 7 + 2 draws of a third one: 5 labels still wait.
    assert len(b1) == 8
    assert len(c1) == 5
    waiting = list(c1)
    b2, _ = balanced_batches(positives, B, RHO, rng, cycle=c1)
    _, drawn = parts(b2, K)
    sequence = [int(label_of[r]) for d in drawn for r in d]
    assert sequence[: len(waiting)] == waiting


def test_sampler_cycle_carries_over_between_epochs():
    positives, label_of = disjoint_positives()
    sampler = LabelBalancedSampler(positives, B, RHO, random_state=11)
    epochs = [list(sampler), list(sampler), list(sampler)]
    sequence = []
    for batches in epochs:
        assert len(batches) == len(sampler)
        _, drawn = parts(batches, K)
        sequence += [int(label_of[r]) for d in drawn for r in d]
    # 48 draws; 16 per epoch is not a multiple of 7, so cycles straddle the
    # epoch boundaries: each full cycle still covers every label once.
    for c in range(len(sequence) // L_POS):
        assert sorted(sequence[c * L_POS:(c + 1) * L_POS]) == list(range(L_POS))
    # Each epoch's uniform rows are a fresh permutation.
    uniforms = [np.concatenate(parts(b, K)[0]) for b in epochs]
    for u in uniforms:
        assert sorted(u.tolist()) == list(range(positives.shape[0]))
    assert not np.array_equal(uniforms[0], uniforms[1])


@pytest.mark.parametrize(
    "n_rows, batch_size, rho", [(45, 8, 0.25), (10, 4, 0.5), (3, 4, 0.25), (100, 32, 0.1),
                                (7, 2, 0.9), (64, 16, 0.0)]
)
def test_len_of_sampler_is_number_of_batches(n_rows, batch_size, rho):
    positives, _ = disjoint_positives(n_rows=n_rows)
    sampler = LabelBalancedSampler(positives, batch_size, rho, random_state=0)
    assert len(sampler) == len(list(sampler)) == len(list(sampler))


def test_sampler_same_seed_identical_different_seed_differs():
    positives, _ = disjoint_positives()
    a = [list(LabelBalancedSampler(positives, B, RHO, random_state=5)) for _ in range(2)]
    b = list(LabelBalancedSampler(positives, B, RHO, random_state=6))
    assert all(np.array_equal(x, y) for x, y in zip(a[0], a[1]))
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], b))


# ------------------------------------------------------------- properties

label_matrices = st.tuples(st.integers(1, 25), st.integers(1, 6)).flatmap(
    lambda shape: arrays(np.int8, shape, elements=st.sampled_from([-1, 0, 1]))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    Y=label_matrices,
    batch_size=st.integers(2, 10),
    rho=st.one_of(st.just(0.0), st.floats(0.01, 0.95)),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampler_guarantees_hold_for_random_label_matrices(Y, batch_size, rho, seed):
    positives = Y == 1
    n_rows = Y.shape[0]
    with_pos = set(np.flatnonzero(positives.any(axis=0)).tolist())
    k = n_positive_slots(batch_size, rho) if with_pos else 0
    assert 0 <= k <= batch_size - 1
    sampler = LabelBalancedSampler(positives, batch_size, rho, random_state=seed)

    drawn_all = []
    n_batches_seen = 0
    # Enough epochs for ceil(L_pos / k) batches, whatever the epoch length.
    n_epochs = 1 + (math.ceil(len(with_pos) / k) if k else 0)
    for _ in range(n_epochs):
        batches = list(sampler)
        assert len(batches) == len(sampler) == math.ceil(n_rows / (batch_size - k))
        uniform, drawn = parts(batches, k)
        assert sorted(np.concatenate(uniform).tolist()) == list(range(n_rows))
        assert all(len(b) <= batch_size for b in batches)
        for d in drawn:
            assert len(d) == k
            for r in d:
                assert positives[r].any()  # a drawn row is an observed positive
        drawn_all += [list(d) for d in drawn]
        n_batches_seen += len(batches)

    if k:
        first = math.ceil(len(with_pos) / k)
        assert n_batches_seen >= first
        rows = [r for d in drawn_all[:first] for r in d]
        for label in with_pos:
            assert positives[rows, label].any(), f"label {label} missed"
        # Aligned cycles of L_pos draws: each has a positive of every label.
        flat = [r for d in drawn_all for r in d]
        for c in range(len(flat) // len(with_pos)):
            chunk = flat[c * len(with_pos):(c + 1) * len(with_pos)]
            for label in with_pos:
                assert positives[chunk, label].any()


logit_values = st.one_of(
    st.floats(-20, 20, allow_nan=False),
    st.sampled_from([-1e4, -100.0, 100.0, 1e4, 0.0]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    Y=label_matrices,
    data=st.data(),
    lam=st.sampled_from([0.0, 0.1, 1.0]),
    objective=st.sampled_from(["dallmi", "published"]),
    alpha=st.sampled_from([0.05, 0.3, 2.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_dallmi_loss_never_nan_or_inf(Y, data, lam, objective, alpha, seed):
    n, n_labels = Y.shape
    z = data.draw(arrays(np.float32, (n, n_labels), elements=logit_values))
    z_mix = data.draw(arrays(np.float32, (n, n_labels), elements=logit_values))
    pu = (Y == -1).any(axis=0)
    crit = DALLMiLoss(n_labels, mixup_weight=lam, objective=objective)
    crit.set_pu_labels(pu)
    partner, gamma = draw_mixup_partners(Y, pu, alpha, np.random.default_rng(seed))
    logits = torch.tensor(z, requires_grad=True)
    y = torch.tensor(Y, dtype=torch.float32)
    if partner is None:
        total, terms = crit(logits, y)
        mix = None
    else:
        mix = torch.tensor(z_mix, requires_grad=True)
        total, terms = crit(logits, y, mix, torch.from_numpy(partner),
                            torch.from_numpy(gamma).float())
    assert torch.isfinite(total)
    for value in terms.values():
        assert torch.isfinite(value)
    total.backward()
    assert torch.isfinite(logits.grad).all()
    if mix is not None and mix.grad is not None:
        assert torch.isfinite(mix.grad).all()


def test_sampler_draws_random_positives_in_shuffled_label_orders():
    # Label l's positives are rows l, l + L, l + 2L, ...: a drawn row tells
    # its label (row % L) and which of the label's positives it is.
    n_labels, n_rows = 6, 60
    positives = np.zeros((n_rows, n_labels), dtype=bool)
    positives[np.arange(n_rows), np.arange(n_rows) % n_labels] = True
    sampler = LabelBalancedSampler(positives, 8, 0.25, random_state=3)
    k = n_positive_slots(8, 0.25)
    drawn = [row for _ in range(3) for batch in sampler for row in batch[-k:]]
    cycles = [tuple(r % n_labels for r in drawn[i:i + n_labels])
              for i in range(0, len(drawn) - n_labels + 1, n_labels)]
    assert all(sorted(c) == list(range(n_labels)) for c in cycles)
    # Labels come in shuffled orders, not 0..L-1 nor one fixed order.
    assert len(set(cycles)) > 1 and any(c != tuple(range(n_labels)) for c in cycles)
    # Each label's draw is a random one of its positives, not always the first.
    for label in range(n_labels):
        assert len({r for r in drawn if r % n_labels == label}) > 2
