"""Pre-training data: reading, packing, mixing, partitioning and resuming, on the bundled seed corpus."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.paths import SEED_DIR
from training.data.loader import DataConfig, RankBatches, SourceConfig, resolve_sources, summarise_streams
from training.data.mixture import pick_source
from training.data.packing import SequencePacker, document_targets_mask, pack_documents
from training.data.readers import DocumentReader, SourceExhaustedError
from training.data.stream import TextTokenizer
from training.modeling import load_model, tiny_llama_config, train_bpe_tokenizer

SEED_FILE = SEED_DIR / "math_seed.jsonl.gz"


@pytest.fixture(scope="module")
def seed_rows() -> list[dict]:
    with gzip.open(SEED_FILE, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def tokenizer(seed_rows):
    return train_bpe_tokenizer([r["text"] for r in seed_rows[:300]], vocab_size=384)


@pytest.fixture(scope="module")
def parquet_sources(tmp_path_factory, seed_rows):
    """The seed corpus as two Parquet sources (MATH and GSM8K), several files of 50-row row groups."""
    root = tmp_path_factory.mktemp("parquet")
    for name, prefix in (("math", "MATH"), ("gsm8k", "gsm8k")):
        rows = [r for r in seed_rows if r["source"].startswith(prefix)]
        (root / name).mkdir()
        for part in range(3):
            chunk = rows[part::3]
            table = pa.table({"id": [r["source"] for r in chunk], "text": [r["text"] for r in chunk]})
            pq.write_table(table, root / name / f"part-{part}.parquet", row_group_size=50)
    return root


def _texts_of(reader: DocumentReader, n: int) -> list[str]:
    return [reader.next_text() for _ in range(n)]


def test_packing_keeps_every_token_exactly_once(seed_rows, tokenizer):
    docs = [tokenizer(r["text"], add_special_tokens=False)["input_ids"] for r in seed_rows[:200]]
    eos = tokenizer.eos_token_id
    seqs = list(pack_documents(docs, seq_len=128, eos_id=eos, keep_last_partial=True))
    stream = np.concatenate([np.asarray(d + [eos]) for d in docs])
    packed = np.concatenate([s.input_ids for s in seqs])
    assert np.array_equal(packed, stream)
    assert all(len(s.input_ids) == 128 for s in seqs[:-1]) and 0 < len(seqs[-1].input_ids) <= 128
    assert sum(sum(s.source_tokens.values()) for s in seqs) == stream.size
    # Position ids restart after every EOS (and at each sequence start), and nowhere else.
    for s in seqs:
        starts = set(np.flatnonzero(s.position_ids == 0).tolist())
        expected = {0} | {i + 1 for i in np.flatnonzero(s.input_ids == eos).tolist() if i + 1 < len(s.input_ids)}
        assert starts == expected


def test_document_targets_mask_drops_only_first_tokens_of_documents():
    packer = SequencePacker(seq_len=8)
    packer.add(0, [5, 6, 1])
    packer.add(1, [7, 8, 9, 1])
    packer.add(0, [4, 4, 1])
    seq = packer.pop()
    assert seq.input_ids.tolist() == [5, 6, 1, 7, 8, 9, 1, 4]
    assert seq.position_ids.tolist() == [0, 1, 2, 0, 1, 2, 3, 0]
    assert seq.source_tokens == {0: 4, 1: 4}
    # Targets are input_ids[1:]; the targets 7 (index 3) and 4 (index 7) start new documents.
    assert document_targets_mask(seq.position_ids).tolist() == [True, True, False, True, True, True, False]
    rest = packer.state_dict()
    assert rest["pieces"] == [(0, [4, 1], False)]


def test_document_masking_isolates_documents_in_the_model(tokenizer):
    """With restarting position ids, a document's logits do not depend on the document before it."""
    model = load_model(tiny_llama_config(len(tokenizer), hidden_size=32, num_heads=2, max_position_embeddings=64),
                       tokenizer=tokenizer, seed=0).eval()
    first = tokenizer("The sum of 2 and 3 is 5.", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    second = tokenizer("Let x = 4; then x^2 = 16.", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([first + second])
    positions = torch.tensor([list(range(len(first))) + list(range(len(second)))])
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, len(first):]
        alone = model(input_ids=torch.tensor([second]), use_cache=False).logits[0]
        unmasked = model(input_ids=ids, use_cache=False).logits[0, len(first):]
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(unmasked, alone, atol=1e-3)


def test_streams_partition_each_pass_exactly(parquet_sources):
    """Two streams together read every document of a pass once; each reads only its own row groups."""
    files = sorted(str(p) for p in (parquet_sources / "math").glob("*.parquet"))
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    readers = [DocumentReader("math", files, stream=s, num_streams=2, seed=3) for s in range(2)]
    seen = []
    for reader in readers:
        while reader.state_dict()["epoch"] == 0:
            seen.append(reader.next_text())
        seen.pop()  # the first document of the second pass
    all_texts = [t for f in files for t in pq.read_table(f).column("text").to_pylist()]
    assert len(seen) == total and sorted(seen) == sorted(all_texts)


def test_reader_resumes_mid_shard_exactly(parquet_sources, tmp_path, seed_rows):
    files = sorted(str(p) for p in (parquet_sources / "gsm8k").glob("*.parquet"))
    reference = DocumentReader("gsm8k", files, seed=1)
    expected = _texts_of(reference, 1700)  # runs past the end of the first pass
    reader = DocumentReader("gsm8k", files, seed=1)
    head = _texts_of(reader, 777)
    state = json.loads(json.dumps(reader.state_dict()))  # must survive a plain-data round trip
    resumed = DocumentReader("gsm8k", files, seed=1)
    resumed.load_state_dict(state)
    assert head + _texts_of(resumed, 1700 - 777) == expected
    assert resumed.state_dict()["epoch"] == 1
    # JSONL(.gz), resumed inside a 100-line block.
    ref = DocumentReader("seed", [str(SEED_FILE)], seed=2, block_lines=100)
    expected = _texts_of(ref, 450)
    first = DocumentReader("seed", [str(SEED_FILE)], seed=2, block_lines=100)
    head = _texts_of(first, 233)
    second = DocumentReader("seed", [str(SEED_FILE)], seed=2, block_lines=100)
    second.load_state_dict(first.state_dict())
    assert head + _texts_of(second, 217) == expected
    assert set(expected) <= {r["text"] for r in seed_rows}


def test_bad_rows_and_files_are_skipped_and_counted(tmp_path, seed_rows):
    good = [r["text"] for r in seed_rows[:5]]
    pq.write_table(pa.table({"text": [good[0], None, "", good[1], "   "]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"body": ["no text column"]}), tmp_path / "b.parquet")
    (tmp_path / "c.parquet").write_bytes(b"not a parquet file")
    lines = [json.dumps({"text": good[2]}), "{broken", json.dumps({"other": 1}), json.dumps({"text": 7}), "",
             json.dumps({"text": good[3]})]
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    files = sorted(str(p) for p in tmp_path.iterdir())
    reader = DocumentReader("mixed", files, shuffle_rows=False)
    texts = []
    while reader.state_dict()["epoch"] == 0:
        texts.append(reader.next_text())
    assert sorted(texts[:-1]) == sorted(good[:4])
    assert reader.skipped == {"empty_text": 3, "missing_text_field": 2, "unreadable_file": 1, "bad_json": 1,
                              "text_not_a_string": 1, "blank_line": 1}


def test_a_small_source_is_split_by_rows_and_forcing_chunks_is_a_clear_error(tmp_path, seed_rows):
    texts = [r["text"] for r in seed_rows[:11]]
    pq.write_table(pa.table({"text": texts}), tmp_path / "one.parquet")  # one row group
    files = [str(tmp_path / "one.parquet")]
    readers = [DocumentReader("tiny", files, stream=s, num_streams=2) for s in range(2)]
    assert [r.split for r in readers] == ["rows", "rows"]
    got = [[r.next_text() for _ in range(n)] for r, n in zip(readers, (6, 5))]
    assert sorted(got[0] + got[1]) == sorted(texts)
    assert all(r.state_dict()["epoch"] == 0 for r in readers)
    reader = DocumentReader("tiny", files, stream=1, num_streams=2, split="chunks")
    with pytest.raises(SourceExhaustedError, match="no document in a whole pass"):
        reader.next_text()


def test_pick_source_follows_token_deficit():
    assert pick_source([0, 0], [0.7, 0.3]) == 0
    assert pick_source([70, 20], [0.7, 0.3]) == 1
    assert pick_source([70, 30], [0.7, 0.3]) == 0  # tie -> the earlier source


def test_realised_mixture_matches_weights(parquet_sources, tokenizer):
    sources = resolve_sources([
        SourceConfig(name="math", path=str(parquet_sources / "math"), weight=0.7),
        SourceConfig(name="gsm8k", path=str(parquet_sources / "gsm8k" / "*.parquet"), weight=0.3),
    ])
    cfg = DataConfig(seq_len=128, num_streams=2, prefetch=0)
    batches = RankBatches(sources, tokenizer, cfg, batch_sequences=8)
    for _ in range(40):
        batches.next_batch()
    summary = summarise_streams(batches.state_dict())
    total = sum(summary["tokens"])
    assert total == 40 * 8 * 128
    shares = [t / total for t in summary["tokens"]]
    assert shares == pytest.approx([0.7, 0.3], abs=0.01)
    for stream in batches.state_dict()["streams"].values():  # each stream keeps the mixture too
        emitted = stream["tokens_emitted"]
        assert emitted[0] / sum(emitted) == pytest.approx(0.7, abs=0.02)


def test_rank_batches_resume_and_do_not_depend_on_world_size(parquet_sources, tokenizer):
    sources = resolve_sources([SourceConfig(name="math", path=str(parquet_sources / "math"))])
    cfg = DataConfig(seq_len=64, num_streams=2, prefetch=0, doc_masking=True)
    single = RankBatches(sources, tokenizer, cfg, batch_sequences=4)
    ranks = [RankBatches(sources, tokenizer, cfg, batch_sequences=4, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        whole = single.next_batch()
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(whole.input_ids, torch.cat([p.input_ids for p in parts]))
        assert torch.equal(whole.target_mask, torch.cat([p.target_mask for p in parts]))
    state = single.state_dict()
    expected = [single.next_batch().input_ids for _ in range(3)]
    resumed = RankBatches(sources, tokenizer, cfg, batch_sequences=4)
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed.next_batch().input_ids, e) for e in expected)


def test_missing_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches"):
        resolve_sources([SourceConfig(name="x", path=str(tmp_path / "*.parquet"))])
    kept = resolve_sources([SourceConfig(name="seed", path=str(SEED_FILE)),
                            SourceConfig(name="x", path=str(tmp_path / "*.parquet"), optional=True)])
    assert [s.name for s in kept] == ["seed"]


def test_text_tokenizer_appends_eos(tokenizer):
    tok = TextTokenizer(tokenizer)
    (ids,) = tok(["1 + 1 = 2"])
    assert ids[-1] == tokenizer.eos_token_id
    assert ids[:-1].tolist() == tokenizer("1 + 1 = 2", add_special_tokens=False)["input_ids"]
