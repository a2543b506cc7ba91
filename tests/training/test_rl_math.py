"""GRPO math against numbers computed by hand: advantages, KL, the clipped surrogate, the reductions, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from training.rl.advantages import normalise_step_rewards, outcome_advantages, process_advantages
from training.rl.coefficients import GRPOOutcomeCoefficient, GRPOProcessCoefficient, RFTCoefficient, SFTCoefficient
from training.rl.losses import clipped_surrogate, per_token_kl, policy_gradient_loss, reduce_loss
from training.rl.rollout import Rollout

# ---------------------------------------------------------------- advantages


def test_outcome_advantages_by_hand():
    # rewards 1,0,0,1: mean 0.5, sample std sqrt((4 * 0.25) / 3) = 0.57735
    adv = outcome_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 0.0, 1.0, 1.0]]), eps=0.0)
    s = math.sqrt(1 / 3)
    assert adv[0].tolist() == pytest.approx([0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s], abs=1e-6)
    # second group: mean 1, deviations 1,-1,0,0, std sqrt(2/3)
    s2 = math.sqrt(2 / 3)
    assert adv[1].tolist() == pytest.approx([1 / s2, -1 / s2, 0.0, 0.0], abs=1e-6)


def test_outcome_advantages_without_std_scaling_only_centre():
    adv = outcome_advantages(torch.tensor([3.0, 1.0, 2.0]), scale=False)
    assert adv.tolist() == pytest.approx([1.0, -1.0, 0.0])


@pytest.mark.parametrize("rewards", [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0], [0.1, 0.1, 0.1], [0.7]])
def test_equal_rewards_give_zero_advantage_without_nan(rewards):
    for eps in (0.0, 1e-6):
        adv = outcome_advantages(torch.tensor(rewards), eps=eps)
        assert torch.equal(adv, torch.zeros(len(rewards)))
    steps = torch.tensor([rewards])
    out = process_advantages(
        steps, torch.zeros_like(steps, dtype=torch.long), torch.ones_like(steps, dtype=torch.bool), 2, eps=0.0
    )
    assert torch.equal(out, torch.zeros(1, 2))


def test_process_advantages_by_hand():
    # output 0: steps end at tokens 1 and 3 with rewards 0.9, 0.2; output 1: one step ending at 2 with 0.4.
    # all step rewards 0.9, 0.2, 0.4: mean 0.5, sample std sqrt((0.16 + 0.09 + 0.01) / 2) = sqrt(0.13)
    rewards = torch.tensor([[0.9, 0.2], [0.4, 0.0]])
    ends = torch.tensor([[1, 3], [2, 0]])
    mask = torch.tensor([[True, True], [True, False]])
    s = math.sqrt(0.13)
    n09, n02, n04 = 0.4 / s, -0.3 / s, -0.1 / s
    norm = normalise_step_rewards(rewards, mask, eps=0.0)
    assert norm.flatten().tolist() == pytest.approx([n09, n02, n04, 0.0], abs=1e-6)
    adv = process_advantages(rewards, ends, mask, num_tokens=5, eps=0.0)
    assert adv[0].tolist() == pytest.approx([n09 + n02, n09 + n02, n02, n02, 0.0], abs=1e-6)
    assert adv[1].tolist() == pytest.approx([n04, n04, n04, 0.0, 0.0], abs=1e-6)


def test_process_supervision_with_one_step_equals_outcome_supervision():
    torch.manual_seed(0)
    rewards = torch.rand(6)
    lengths = [5, 3, 7, 7, 1, 4]
    ends = torch.tensor([[n - 1] for n in lengths])
    adv_process = process_advantages(rewards.unsqueeze(1), ends, torch.ones(6, 1, dtype=torch.bool), num_tokens=7)
    adv_outcome = outcome_advantages(rewards)
    for i, n in enumerate(lengths):
        assert adv_process[i, :n].tolist() == pytest.approx([float(adv_outcome[i])] * n, abs=1e-6)
        assert adv_process[i, n:].abs().sum() == 0


def test_process_advantages_reject_step_ends_outside_the_completion():
    with pytest.raises(ValueError):
        process_advantages(torch.ones(1, 1), torch.tensor([[4]]), torch.ones(1, 1, dtype=torch.bool), num_tokens=4)


# ---------------------------------------------------------------- KL and surrogate


def test_unbiased_kl_by_hand_and_nonnegative():
    logp = torch.log(torch.tensor([0.5, 0.25, 0.3]))
    ref = torch.log(torch.tensor([0.25, 0.25, 0.6]))
    kl = per_token_kl(logp, ref)
    # ref/pi = 0.5 -> 0.5 - ln 0.5 - 1 ; = 1 -> 0 ; = 2 -> 2 - ln 2 - 1
    assert kl.tolist() == pytest.approx([0.5 + math.log(2) - 1, 0.0, 1 - math.log(2)], abs=1e-6)
    assert bool((per_token_kl(torch.randn(100), torch.randn(100)) >= 0).all())


def test_clipped_surrogate_by_hand():
    old = torch.zeros(4)
    logp = torch.log(torch.tensor([1.5, 0.5, 0.5, 1.1])).requires_grad_(True)
    adv = torch.tensor([1.0, 1.0, -1.0, -2.0])
    loss, clipped = clipped_surrogate(logp, old, adv, clip_eps=0.2)
    # ratio 1.5, A=1: min(1.5, 1.2) -> -1.2 (clipped); ratio .5, A=1: min(.5, .8) -> -.5;
    # ratio .5, A=-1: min(-.5, -.8) -> .8 (clipped); ratio 1.1, A=-2: min(-2.2, -2.2) -> 2.2
    assert loss.tolist() == pytest.approx([-1.2, -0.5, 0.8, 2.2], abs=1e-6)
    assert clipped.tolist() == [1.0, 0.0, 1.0, 0.0]
    loss.sum().backward()
    # d(-ratio*A)/dlogp = -A * ratio where unclipped, 0 where clipped
    assert logp.grad.tolist() == pytest.approx([0.0, -0.5, 0.0, 2.2], abs=1e-6)


# ---------------------------------------------------------------- the full loss, both reductions


def _loss_inputs():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    logp = torch.log(torch.tensor([[0.5, 0.4, 0.9], [0.2, 0.5, 0.8]]))
    ref = torch.log(torch.tensor([[0.25, 0.4, 0.1], [0.4, 0.5, 0.4]]))
    adv = torch.tensor([[1.0, 1.0, 0.0], [-0.5, -0.5, -0.5]])
    return mask, logp, ref, adv


@pytest.mark.parametrize("loss_type", ["grpo", "token", "dr_grpo"])
def test_grpo_loss_and_gradient_by_hand(loss_type):
    mask, logp, ref, adv = _loss_inputs()
    beta = 0.04
    logp = logp.clone().requires_grad_(True)
    parts = policy_gradient_loss(logp, adv, mask, ref_logprobs=ref, beta=beta, loss_type=loss_type)
    # mu = 1: ratio = 1, so the per-token loss is -A + beta * KL and d/dlogp = -A + beta * (1 - ref/pi)
    pi = [[0.5, 0.4], [0.2, 0.5, 0.8]]
    pr = [[0.25, 0.4], [0.4, 0.5, 0.4]]
    a = [[1.0, 1.0], [-0.5, -0.5, -0.5]]
    tok = [
        [-a[i][t] + beta * (pr[i][t] / pi[i][t] - math.log(pr[i][t] / pi[i][t]) - 1) for t in range(len(pi[i]))]
        for i in range(2)
    ]
    dtok = [[-a[i][t] + beta * (1 - pr[i][t] / pi[i][t]) for t in range(len(pi[i]))] for i in range(2)]
    if loss_type == "grpo":  # 1/G sum_i 1/|o_i| sum_t
        want = (sum(tok[0]) / 2 + sum(tok[1]) / 3) / 2
        weights = [[1 / 4] * 2, [1 / 6] * 3]
    elif loss_type == "token":  # sum / 5 tokens
        want = (sum(tok[0]) + sum(tok[1])) / 5
        weights = [[1 / 5] * 2, [1 / 5] * 3]
    else:  # sum / (2 outputs * T=3)
        want = (sum(tok[0]) + sum(tok[1])) / 6
        weights = [[1 / 6] * 2, [1 / 6] * 3]
    assert float(parts.loss.detach()) == pytest.approx(want, abs=1e-6)
    parts.loss.backward()
    for i in range(2):
        for t in range(len(pi[i])):
            assert float(logp.grad[i, t]) == pytest.approx(weights[i][t] * dtok[i][t], abs=1e-6)
    assert float(logp.grad[0, 2]) == 0.0  # padding gets no gradient
    assert float(parts.clip_fraction) == 0.0


def test_micro_batch_losses_add_up_to_the_full_batch_loss():
    torch.manual_seed(1)
    logp, old, ref = torch.randn(6, 5) - 2, torch.randn(6, 5) - 2, torch.randn(6, 5) - 2
    adv = torch.randn(6, 5)
    mask = (torch.rand(6, 5) > 0.3).long()
    mask[:, 0] = 1
    for loss_type in ("grpo", "token", "dr_grpo"):
        full = policy_gradient_loss(logp, adv, mask, old_logprobs=old, ref_logprobs=ref, loss_type=loss_type).loss
        norm = {"num_sequences": 6, "num_tokens": int(mask.sum()), "max_length": 5}
        parts = sum(
            policy_gradient_loss(
                logp[s], adv[s], mask[s], old_logprobs=old[s], ref_logprobs=ref[s], loss_type=loss_type, **norm
            ).loss
            for s in (slice(0, 2), slice(2, 5), slice(5, 6))
        )
        assert float(parts) == pytest.approx(float(full), abs=1e-6)


def test_reduce_loss_rejects_unknown_type():
    with pytest.raises(ValueError):
        reduce_loss(torch.ones(1, 1), torch.ones(1, 1), "mean")


# ---------------------------------------------------------------- gradient coefficients (unified paradigm)


def _rollout(rewards, lengths, group):
    t = max(lengths)
    mask = torch.tensor([[1] * n + [0] * (t - n) for n in lengths])
    return Rollout(
        prompt_ids=torch.ones(len(lengths), 2, dtype=torch.long),
        prompt_mask=torch.ones(len(lengths), 2, dtype=torch.long),
        completion_ids=torch.ones(len(lengths), t, dtype=torch.long),
        completion_mask=mask,
        group=torch.tensor(group),
        rewards=torch.tensor(rewards),
    )


def test_gradient_coefficients_of_each_method():
    r = _rollout([1.0, 0.0, 0.0, 0.0, 1.0, 1.0], [2, 3, 1, 2, 2, 3], [0, 0, 0, 1, 1, 1])
    sft = SFTCoefficient()(r)
    assert torch.equal(sft.values, r.completion_mask.float()) and bool(sft.keep.all())
    rft = RFTCoefficient()(r)
    assert rft.keep.tolist() == [True, False, False, False, True, True]
    assert rft.values[0].tolist() == [1.0, 1.0, 0.0] and rft.values[1].abs().sum() == 0
    grpo = GRPOOutcomeCoefficient(eps=0.0)(r)
    # group 0: rewards 1,0,0 -> mean 1/3, std sqrt(1/3): advantages 2/3/sqrt(1/3), -1/3/sqrt(1/3)
    s = math.sqrt(1 / 3)
    assert grpo.values[0].tolist() == pytest.approx([2 / 3 / s, 2 / 3 / s, 0.0], abs=1e-6)
    assert grpo.values[2].tolist() == pytest.approx([-1 / 3 / s, 0.0, 0.0], abs=1e-6)
    assert grpo.values[3].tolist() == pytest.approx([-2 / 3 / s, -2 / 3 / s, 0.0], abs=1e-6)


def test_process_coefficient_with_one_step_per_output_equals_outcome_coefficient():
    r = _rollout([0.3, 0.9, 0.1, 0.5], [2, 3, 1, 3], [0, 0, 1, 1])
    r.step_ends = [[1], [2], [0], [2]]
    r.step_rewards = [[0.3], [0.9], [0.1], [0.5]]
    process = GRPOProcessCoefficient()(r)
    outcome = GRPOOutcomeCoefficient()(r)
    assert torch.allclose(process.values, outcome.values, atol=1e-6)
