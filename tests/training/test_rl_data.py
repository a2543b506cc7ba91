"""Question converters on the real benchmarks, prompts, the step rule, PRM labelling and the replay buffer."""

from __future__ import annotations

import json
import random

import pytest
import torch

from training.modeling import train_bpe_tokenizer
from training.rl.data import COT_INSTRUCTION, SkipCounter, build_prompt, load_pairs, load_questions
from training.rl.prm import (
    PRMExample,
    ReplayBuffer,
    examples_from_steps,
    parse_math_shepherd,
    step_labels_by_shared_prefix,
)
from training.rl.rollout import Rollout, completion_mask_after_eos
from training.rl.steps import TokenTexts, step_ends_from_ids, step_ends_from_texts


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["What is 3 + 4?\n3 + 4 = 7.\nThe answer is \\boxed{7}.", "Step 1: x = 2\nStep 2: y = 3\n\nDone."] * 20
    return train_bpe_tokenizer(texts, vocab_size=300)


@pytest.mark.parametrize(
    "name,fmt,bench,n",
    [
        ("gsm8k/test.jsonl.gz", "gsm8k", "gsm8k", 1319),
        ("math/MATH_test.jsonl.gz", "math", "math", 5000),
        ("cmath/test.jsonl.gz", "cmath", "cmath", 1098),
    ],
)
def test_question_converters_on_bundled_benchmarks(benchmark_dir, name, fmt, bench, n):
    skips = SkipCounter()
    auto = load_questions(str(benchmark_dir / name), "auto", skips=skips)
    explicit = load_questions(str(benchmark_dir / name), fmt)
    assert auto == explicit
    assert len(auto) + sum(skips.values()) == n
    assert len(auto) >= 0.99 * n
    assert {q.benchmark for q in auto} == {bench}
    assert all(q.question and q.gold for q in auto)


def test_gsm8k_and_math_gold_answers(benchmark_dir):
    gsm = load_questions(str(benchmark_dir / "gsm8k/test.jsonl.gz"), limit=1)[0]
    assert gsm.gold == "18" and gsm.question.startswith("Janet")
    math_q = load_questions(str(benchmark_dir / "math/MATH_test.jsonl.gz"), limit=1)[0]
    assert math_q.gold == "2" and "vertical asymptotes" in math_q.question


def test_unusable_rows_are_counted_not_lost(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"question": "What is 1 + 1?", "answer": "2"}),
                json.dumps({"question": "", "answer": "2"}),
                json.dumps({"question": "No gold"}),
                "{not json",
                json.dumps({"problem": "p", "solution": "no box here"}),
            ]
        )
        + "\n"
    )
    skips = SkipCounter()
    qs = load_questions(str(path), skips=skips)
    assert [q.gold for q in qs] == ["2"]
    assert skips.summary() == {"bad_json": 1, "no_gold_answer": 2, "no_question": 1}


def test_parquet_questions_and_chat_pairs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{"question": "Q1", "answer": "#### 5"}, {"question": "Q2", "answer": "#### 1,200"}]),
        tmp_path / "q.parquet",
    )
    assert [q.gold for q in load_questions(str(tmp_path / "q.parquet"))] == ["5", "1200"]
    (tmp_path / "p.jsonl").write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                ]
            }
        )
        + "\n"
    )
    pairs = load_pairs(str(tmp_path / "p.jsonl"))
    assert (pairs[0].prompt, pairs[0].response) == ("hi", "yo")


def test_cot_prompt_with_and_without_chat_template(tokenizer):
    assert build_prompt("What is 2?", None) == f"User: What is 2?\n{COT_INSTRUCTION}\n\nAssistant:"
    rendered = build_prompt("What is 2?", tokenizer)  # the plain template of training.modeling
    assert rendered == f"User: What is 2?\n{COT_INSTRUCTION}\n\nAssistant:"
    assert COT_INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."


def test_step_rule_on_texts():
    # two lines and a final line without newline -> 3 steps; the blank line joins the step before
    assert step_ends_from_texts(["a", " b", "\n", "c", "\n", "\n", "d"]) == [2, 4, 6]
    # trailing newline + special token (decoded ""): the last step takes the EOS
    assert step_ends_from_texts(["a", "\n", "b", ".\n", ""]) == [1, 4]
    assert step_ends_from_texts(["no newline", " at all"]) == [1]
    assert step_ends_from_texts(["\n", "\n", "x"]) == [2]
    assert step_ends_from_texts([]) == []


def test_step_rule_on_real_tokens(tokenizer):
    text = "3 + 4 = 7.\nThe answer is \\boxed{7}."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ends = step_ends_from_ids(ids, TokenTexts(tokenizer))
    assert len(ends) == 2 and ends[-1] == len(ids) - 1
    assert tokenizer.decode(ids[: ends[0] + 1]).endswith("\n")


def test_examples_from_steps_end_exactly_at_each_step(tokenizer):
    ex = examples_from_steps(tokenizer, "Q:", ["Step 1: x = 2", "Step 2: y = 3"], ["+", "-"])
    assert ex.labels == (1.0, 0.0)
    assert ex.step_ends[-1] == len(ex.completion_ids) - 1
    assert tokenizer.decode(list(ex.completion_ids[: ex.step_ends[0] + 1])) == " Step 1: x = 2\n"


def test_math_shepherd_row():
    row = {
        "input": "What is 2+3? Step 1: 2+3=5 ки\nStep 2: The answer is 5 ки",
        "label": "What is 2+3? Step 1: 2+3=5 +\nStep 2: The answer is 5 -",
    }
    q, steps, labels = parse_math_shepherd(row)
    assert q == "What is 2+3?" and steps == ["Step 1: 2+3=5", "Step 2: The answer is 5"] and labels == ["+", "-"]


def test_outcome_step_labels_by_shared_prefix():
    comps = [[1, 2, 3, 4], [1, 2, 5, 6], [7, 8]]
    ends = [[1, 3], [1, 3], [1]]
    labels = step_labels_by_shared_prefix(comps, ends, [True, False, False])
    # sample 2 shares the first step (tokens 1, 2) with the correct sample 1, then leaves it
    assert labels == [[1.0, 1.0], [1.0, 0.0], [0.0]]


def test_replay_buffer_mixes_ten_percent_of_history():
    buf = ReplayBuffer(fraction=0.1, capacity=1000, seed=0)
    ex = [PRMExample((1,), (i,), (0,), (1.0,)) for i in range(200)]
    assert buf.mix(ex[:100]) == ex[:100]  # no history yet
    buf.add(ex[:100])
    mixed = buf.mix(ex[100:150])
    assert len(mixed) == 50 + 10 and all(m in ex[:100] for m in mixed[50:])
    small = ReplayBuffer(fraction=0.1, capacity=20, seed=0)
    small.add(ex)
    assert len(small.items) == 20 and small.seen == 200 and len(small.mix([])) == 20


def test_completion_mask_stops_after_first_eos():
    ids = torch.tensor([[5, 6, 0, 7, 0], [5, 6, 7, 8, 9]])
    assert completion_mask_after_eos(ids, [0]).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_rollout_select_and_concat_keep_rows_intact():
    rng = random.Random(0)
    prompts = [[rng.randrange(3, 50) for _ in range(rng.randrange(1, 6))] for _ in range(4)]
    comps = [[rng.randrange(3, 50) for _ in range(rng.randrange(1, 6))] for _ in range(4)]
    from training.rl.rollout import left_pad, right_pad

    p, pm = left_pad(prompts, 0)
    c, cm = right_pad(comps, 0)
    r = Rollout(p, pm, c, cm, group=torch.tensor([0, 0, 1, 1]), rewards=torch.tensor([1.0, 0.0, 0.5, 0.2]))
    sub = r.select([3, 1])
    assert sub.completion_ids[0][sub.completion_mask[0].bool()].tolist() == comps[3]
    assert sub.prompt_ids[1][sub.prompt_mask[1].bool()].tolist() == prompts[1]
    both = Rollout.concat([r.select([0, 1]), r.select([2, 3])], pad_id=0)
    assert both.group.tolist() == [0, 0, 1, 1] and both.rewards.tolist() == r.rewards.tolist()
    for i in range(4):
        assert both.completion_ids[i][both.completion_mask[i].bool()].tolist() == comps[i]
