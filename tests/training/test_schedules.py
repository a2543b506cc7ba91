"""The learning-rate schedules against hand-computed values."""
import math

import pytest
import torch

from training.schedules import cosine_factor, lr_factor, make_scheduler, multistep_factor, warmup_factor


def test_multistep_matches_paper_at_key_steps():
    # 1000 steps, 100 warm-up: step 0 -> 1/100; last warm-up step 99 -> 1.0; 80% (step 800) -> 0.316;
    # 90% (step 900) -> 0.1; just before each milestone still the previous value.
    total, warm = 1000, 100
    assert multistep_factor(0, total, warm) == pytest.approx(0.01)
    assert multistep_factor(49, total, warm) == pytest.approx(0.5)
    assert multistep_factor(99, total, warm) == pytest.approx(1.0)
    assert multistep_factor(100, total, warm) == pytest.approx(1.0)
    assert multistep_factor(799, total, warm) == pytest.approx(1.0)
    assert multistep_factor(800, total, warm) == pytest.approx(0.316)
    assert multistep_factor(899, total, warm) == pytest.approx(0.316)
    assert multistep_factor(900, total, warm) == pytest.approx(0.1)
    assert multistep_factor(999, total, warm) == pytest.approx(0.1)


def test_paper_numbers_in_absolute_learning_rates():
    # The 1.3B runs: peak 5.3e-4, 2,000 warm-up steps, 150B tokens / 4M-token batches = 37,500 steps.
    peak, total, warm = 5.3e-4, 37_500, 2_000
    assert peak * lr_factor("multistep", 0, total, warm) == pytest.approx(2.65e-7)
    assert peak * lr_factor("multistep", 1_999, total, warm) == pytest.approx(5.3e-4)
    assert peak * lr_factor("multistep", 30_000, total, warm) == pytest.approx(1.67480e-4)
    assert peak * lr_factor("multistep", 33_750, total, warm) == pytest.approx(5.3e-5)


def test_cosine_and_constant():
    assert cosine_factor(10, 110, 10, min_ratio=0.1) == pytest.approx(1.0)
    # Half-way through the decay: 0.1 + 0.9 * 0.5 * (1 + cos(pi/2)) = 0.55.
    assert cosine_factor(60, 111, 10, min_ratio=0.1) == pytest.approx(0.55)
    assert cosine_factor(110, 111, 10, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor("constant", 3, 100, 4) == pytest.approx(1.0)
    assert lr_factor("constant", 0, 100, 4) == pytest.approx(0.25)
    assert warmup_factor(5, 0) == 1.0
    assert math.isclose(lr_factor("cosine", 0, 100, 0), 1.0)


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("linear", 0, 10, 1)


def test_torch_scheduler_follows_the_pure_function():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=2.0)
    sched = make_scheduler(opt, "multistep", total_steps=20, warmup_steps=4)
    seen = []
    for _ in range(20):
        seen.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    expected = [2.0 * multistep_factor(s, 20, 4) for s in range(20)]
    assert seen == pytest.approx(expected)
    assert seen[0] == pytest.approx(0.5) and seen[16] == pytest.approx(0.632) and seen[18] == pytest.approx(0.2)
