"""Reading `text` columns from Parquet/JSONL and the two-pass uniform sampler, on the bundled seed."""
import gzip
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from classifiers.text_sources import ReadStats, SourceError, count_rows, expand_sources, iter_texts, sample_texts

SEED = "data/seed/math_seed.jsonl.gz"


@pytest.fixture(scope="module")
def seed_texts(seed_dir):
    with gzip.open(seed_dir / "math_seed.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def test_reads_jsonl_gz_and_parquet_folders_alike(tmp_path, seed_dir, seed_texts):
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"text": seed_texts[:10] + [None, "  "], "other": list(range(12))}), folder / "a.parquet")
    (folder / "_SUCCESS").write_text("{}")
    files = expand_sources([str(folder), str(seed_dir / "math_seed.jsonl.gz")])
    assert [f.rsplit("/", 1)[-1] for f in files] == ["a.parquet", "math_seed.jsonl.gz"]
    assert count_rows(files) == 12 + len(seed_texts)
    stats = ReadStats()
    texts = list(iter_texts(files, stats))
    assert texts == seed_texts[:10] + seed_texts
    assert stats.skipped == {"missing_text": 2} and stats.used == 10 + len(seed_texts) and stats.files == 2


def test_bad_json_lines_are_counted_not_fatal(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a b c"}\nnot json\n\n{"no_text": 1}\n{"text": "d"}\n')
    stats = ReadStats()
    assert list(iter_texts([str(path)], stats)) == ["a b c", "d"]
    assert stats.skipped == {"bad_json": 1, "missing_text": 1} and stats.rows == 4


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(SourceError):
        expand_sources(str(tmp_path / "nothing-*.parquet"))


def test_sample_is_exact_size_uniform_and_reproducible(seed_dir, seed_texts):
    files = expand_sources(str(seed_dir / "math_seed.jsonl.gz"))
    first = list(sample_texts(files, 500, seed=1))
    assert len(first) == 500 and len(set(first)) == 500  # the seed rows are distinct: drawn without replacement
    assert first == list(sample_texts(files, 500, seed=1))
    assert first != list(sample_texts(files, 500, seed=2))
    assert list(sample_texts(files, None)) == seed_texts and list(sample_texts(files, 10**9)) == seed_texts
    assert list(sample_texts(files, 0)) == []
    # Uniformity: the sampled rows' positions spread over the file like a uniform draw; the
    # seed file is MATH then GSM8K rows (1500 each), so about half of the sample is from each.
    index = {t: i for i, t in enumerate(seed_texts)}
    halves = Counter(index[t] < len(seed_texts) // 2 for t in first)
    assert 200 <= halves[True] <= 300, halves
