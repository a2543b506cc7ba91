"""The math of DPO, PPO and the GRPO variants against numbers computed by hand (pure functions, no model
except the tiny one the value-head test builds from a config)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from training.rl.advantages import gae, kl_penalised_rewards, outcome_advantages, whiten
from training.rl.coefficients import GRPOOutcomeCoefficient
from training.rl.losses import (
    clipped_surrogate,
    clipped_value_loss,
    dpo_gradient_coefficient,
    dpo_loss,
    dpo_margin,
    policy_gradient_loss,
    sequence_logprob,
)
from training.rl.offline import preference_pairs
from training.rl.rollout import Rollout


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------- DPO (appendix A.1.3)


def _dpo_inputs():
    chosen = torch.tensor([[-1.0, -2.0, 0.0]], requires_grad=True)  # 2 real tokens
    rejected = torch.tensor([[-0.5, -1.5, -1.0]], requires_grad=True)  # 3 real tokens
    c_mask, r_mask = torch.tensor([[1, 1, 0]]), torch.tensor([[1, 1, 1]])
    ref_c, ref_r = torch.tensor([[-1.2, -2.2, 0.0]]), torch.tensor([[-0.6, -1.2, -0.9]])
    return chosen, rejected, c_mask, r_mask, ref_c, ref_r


def test_dpo_loss_and_gradient_coefficient_by_hand_length_normalised():
    chosen, rejected, c_mask, r_mask, ref_c, ref_r = _dpo_inputs()
    beta = 0.5
    seq_c, seq_r = sequence_logprob(chosen, c_mask), sequence_logprob(rejected, r_mask)
    assert seq_c.item() == pytest.approx(-1.5) and seq_r.item() == pytest.approx(-1.0)
    ref_seq_c, ref_seq_r = sequence_logprob(ref_c, c_mask), sequence_logprob(ref_r, r_mask)  # -1.7, -0.9
    margin = dpo_margin(seq_c, seq_r, ref_seq_c, ref_seq_r)
    assert margin.item() == pytest.approx((-1.5 + 1.7) - (-1.0 + 0.9))  # 0.3
    loss = dpo_loss(seq_c, seq_r, ref_seq_c, ref_seq_r, beta)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.15)), abs=1e-6)
    gc = dpo_gradient_coefficient(margin.detach(), beta)
    assert gc.item() == pytest.approx(_sigmoid(-0.15), abs=1e-6)
    loss.backward()
    # d(-log sigmoid(beta m)) / d lp(o+_t) = -beta * GC / |o+|;  / d lp(o-_t) = +beta * GC / |o-|
    g = _sigmoid(-0.15)
    assert chosen.grad[0].tolist() == pytest.approx([-beta * g / 2, -beta * g / 2, 0.0], abs=1e-6)
    assert rejected.grad[0].tolist() == pytest.approx([beta * g / 3] * 3, abs=1e-6)


def test_dpo_with_summed_log_probs_and_the_batch_mean():
    chosen, rejected, c_mask, r_mask, ref_c, ref_r = _dpo_inputs()
    seq_c, seq_r = sequence_logprob(chosen, c_mask, False), sequence_logprob(rejected, r_mask, False)
    assert (seq_c.item(), seq_r.item()) == pytest.approx((-3.0, -3.0))
    ref_seq_c, ref_seq_r = sequence_logprob(ref_c, c_mask, False), sequence_logprob(ref_r, r_mask, False)
    # margin = (-3 + 3.4) - (-3 + 2.7) = 0.7; a second pair with margin 0 gives log 2
    two = dpo_loss(
        torch.cat([seq_c, torch.zeros(1)]),
        torch.cat([seq_r, torch.zeros(1)]),
        torch.cat([ref_seq_c, torch.zeros(1)]),
        torch.cat([ref_seq_r, torch.zeros(1)]),
        beta=0.1,
    )
    assert two.item() == pytest.approx((math.log(1 + math.exp(-0.07)) + math.log(2)) / 2, abs=1e-6)
    # a policy equal to its reference: margin 0, GC = 1/2, loss log 2
    assert dpo_gradient_coefficient(torch.zeros(3), 0.1).tolist() == [0.5, 0.5, 0.5]


def test_dpo_coefficient_falls_as_the_pair_gets_separated():
    gc = dpo_gradient_coefficient(torch.tensor([-2.0, 0.0, 2.0, 20.0]), beta=1.0)
    assert gc.tolist() == pytest.approx([_sigmoid(2.0), 0.5, _sigmoid(-2.0), _sigmoid(-20.0)], abs=1e-7)


def test_preference_pairs_are_correct_vs_incorrect_of_one_group():
    rng = random.Random(0)
    pairs = preference_pairs([True, False, True, False], max_pairs=3, rng=rng)
    assert len(pairs) == 3 and len(set(pairs)) == 3
    assert all(c in (0, 2) and r in (1, 3) for c, r in pairs)
    assert len(preference_pairs([True, False, True, False], 10, rng)) == 4  # all combinations
    assert preference_pairs([True, True], 4, rng) == [] and preference_pairs([False] * 3, 4, rng) == []


# ---------------------------------------------------------------- PPO (section 4.1.1)


def test_kl_penalised_rewards_follow_equation_2():
    logprobs = torch.tensor([[-1.0, -2.0, -0.5], [-0.7, -1.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.8, -0.6], [-1.0, -1.0, 0.0]])  # log ratios 0.5, -0.2, 0.1 / 0.3, 0.0
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    r = kl_penalised_rewards(torch.tensor([1.0, 0.0]), logprobs, ref, mask, beta=0.1)
    assert r[0].tolist() == pytest.approx([-0.05, 0.02, 1.0 - 0.01], abs=1e-6)
    assert r[1].tolist() == pytest.approx([-0.03, 0.0, 0.0], abs=1e-6)


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.8], [0.2, 0.4, 9.0]])  # 9.0 sits on padding: ignored
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv, ret = gae(rewards[:1], values[:1], mask[:1], gamma=1.0, lam=0.5)
    # deltas 0.1, 0.2, 0.2; A2 = 0.2, A1 = 0.2 + 0.5 * 0.2, A0 = 0.1 + 0.5 * 0.3
    assert adv[0].tolist() == pytest.approx([0.25, 0.3, 0.2], abs=1e-6)
    assert ret[0].tolist() == pytest.approx([0.75, 0.9, 1.0], abs=1e-6)
    adv, ret = gae(rewards[1:], values[1:], mask[1:], gamma=0.9, lam=1.0)
    # delta1 = 1 - 0.4 = 0.6 (episode ends), delta0 = 0.9 * 0.4 - 0.2 = 0.16, A0 = 0.16 + 0.9 * 0.6
    assert adv[0].tolist() == pytest.approx([0.70, 0.6, 0.0], abs=1e-6)
    assert ret[0].tolist() == pytest.approx([0.9, 1.0, 0.0], abs=1e-6)


def test_gae_with_gamma_and_lambda_one_is_the_return_to_go_minus_the_value():
    rewards = torch.tensor([[0.1, -0.2, 0.3, 1.0]])
    values = torch.tensor([[0.4, 0.1, -0.3, 0.2]])
    adv, ret = gae(rewards, values, torch.ones(1, 4), 1.0, 1.0)
    to_go = [1.2, 1.1, 1.3, 1.0]
    assert adv[0].tolist() == pytest.approx([g - v for g, v in zip(to_go, values[0].tolist())], abs=1e-6)
    assert ret[0].tolist() == pytest.approx(to_go, abs=1e-6)


def test_clipped_value_loss_by_hand():
    values = torch.tensor([[1.5, 0.9]], requires_grad=True)
    old, returns, mask = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.5]]), torch.ones(1, 2)
    loss, clip_frac = clipped_value_loss(values, old, returns, mask, clip_eps=0.2)
    # token 0: max((1.5-2)^2, (1.2-2)^2) = 0.64 (clipped); token 1: (0.9-0.5)^2 = 0.16; per-output mean of halves
    assert loss.item() == pytest.approx((0.32 + 0.08) / 2, abs=1e-6)
    assert clip_frac.item() == pytest.approx(0.5)
    loss.backward()
    assert values.grad[0].tolist() == pytest.approx([0.0, (0.9 - 0.5) / 2], abs=1e-6)  # clipped: no gradient
    plain, _ = clipped_value_loss(values.detach(), old, returns, mask, clip_eps=0.0)
    assert plain.item() == pytest.approx((0.125 + 0.08) / 2, abs=1e-6)


def test_whiten_over_the_masked_tokens():
    x = torch.tensor([[1.0, 2.0, 99.0], [3.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    w = whiten(x, mask, eps=0.0)  # real values 1, 2, 3: mean 2, std 1
    assert w.flatten().tolist() == pytest.approx([-1.0, 0.0, 0.0, 1.0, 0.0, 0.0], abs=1e-6)


def test_value_model_is_the_policy_body_with_a_zero_head():
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.rl.ppo import ValueModel

    torch.manual_seed(0)
    policy = LlamaForCausalLM(
        LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    )
    value = ValueModel.from_policy(policy)
    body, pbody = value.model.model.state_dict(), policy.model.state_dict()
    assert all(torch.equal(body[k], pbody[k]) for k in pbody)
    rollout = Rollout(
        prompt_ids=torch.tensor([[0, 5, 6], [4, 5, 6]]),
        prompt_mask=torch.tensor([[0, 1, 1], [1, 1, 1]]),
        completion_ids=torch.tensor([[7, 8], [9, 0]]),
        completion_mask=torch.tensor([[1, 1], [1, 0]]),
        group=torch.tensor([0, 1]),
    )
    v = value.values(rollout)
    assert v.shape == (2, 2) and torch.equal(v, torch.zeros(2, 2))  # knows nothing yet: V = 0


# ---------------------------------------------------------------- GRPO variants: clip-higher, DAPO, Dr. GRPO


def test_clip_higher_widens_only_the_upper_bound():
    lp = torch.log(torch.tensor([[1.25, 0.7, 1.25]])).requires_grad_(True)
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, -1.0, -1.0]])
    sym, sym_clipped = clipped_surrogate(lp, old, adv, 0.2)
    high, high_clipped = clipped_surrogate(lp, old, adv, 0.2, clip_eps_high=0.28)
    # A > 0, ratio 1.25: symmetric clip at 1.2 (no gradient), clip-higher at 1.28 lets it through
    assert sym[0, 0].item() == pytest.approx(-1.2) and sym_clipped[0, 0] == 1
    assert high[0, 0].item() == pytest.approx(-1.25) and high_clipped[0, 0] == 0
    # the lower bound (0.8) is the same for both: A < 0, ratio 0.7 -> -min(-0.7, -0.8) = 0.8, clipped
    assert sym[0, 1].item() == pytest.approx(0.8) and high[0, 1].item() == pytest.approx(0.8)
    assert sym_clipped[0, 1] == 1 and high_clipped[0, 1] == 1
    # A < 0, ratio 1.25: the unclipped branch is the smaller one in both, loss 1.25
    assert sym[0, 2].item() == pytest.approx(1.25) and high[0, 2].item() == pytest.approx(1.25)
    high[0, 0].backward()
    assert lp.grad[0, 0].item() == pytest.approx(-1.25)  # d(-ratio * A)/d lp = -ratio * A


def test_dr_grpo_full_variant_by_hand():
    # Dr. GRPO = no std normalisation (scale_advantages false) + sum / (G * max length)
    rewards = torch.tensor([1.0, 0.0, 0.0])
    adv = outcome_advantages(rewards, scale=False)
    assert adv.tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    rollout = Rollout(
        prompt_ids=torch.ones(3, 1, dtype=torch.long),
        prompt_mask=torch.ones(3, 1, dtype=torch.long),
        completion_ids=torch.ones(3, 4, dtype=torch.long),
        completion_mask=mask,
        group=torch.zeros(3, dtype=torch.long),
        rewards=rewards,
    )
    coeff = GRPOOutcomeCoefficient(scale=False)(rollout).values
    lp = torch.zeros(3, 4, requires_grad=True)
    loss = policy_gradient_loss(lp, coeff, mask, beta=0.0, loss_type="dr_grpo", max_length=4).loss
    assert loss.item() == pytest.approx(-(3 * 2 / 3 - 1 / 3 - 1 / 3) / (3 * 4), abs=1e-6)  # -1/9
    token = policy_gradient_loss(lp, coeff, mask, beta=0.0, loss_type="token").loss  # DAPO: / 5 tokens
    assert token.item() == pytest.approx(-(2 - 2 / 3) / 5, abs=1e-6)
    per_seq = policy_gradient_loss(lp, coeff, mask, beta=0.0, loss_type="grpo").loss  # paper: mean of means
    assert per_seq.item() == pytest.approx(-(2 / 3 - 1 / 3 - 1 / 3) / 3, abs=1e-6)  # 0: lengths cancel out
