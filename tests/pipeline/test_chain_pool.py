"""The pools of ``benchmarks.chain``: every page distinct, split over files as asked."""
from warcio.archiveiterator import ArchiveIterator

from benchmarks.chain import build_pool, pool_files


def _records(path):
    with open(path, "rb") as fh:
        return [(r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
                for r in ArchiveIterator(fh) if r.rec_type == "response"]


def test_pool_split_over_files_holds_every_page_once(shared_data, tmp_path):
    path = tmp_path / "pool-600.warc.gz"
    distinct = build_pool(600, path, files=4)
    files = pool_files(path, 4)
    assert not path.exists() and all(f.exists() for f in files)
    per_file = [_records(f) for f in files]
    assert [len(r) for r in per_file] == [150, 150, 150, 150]
    records = [r for rs in per_file for r in rs]
    assert len({url for url, _ in records}) == 600  # distinct URLs: URL dedup keeps them all
    # Distinct payloads, so the exact-duplicate pass keeps the copies, except the few shared pages
    # that are one payload under two URLs (the module docstring says so).
    assert 0.97 * 600 <= len({body for _, body in records}) < 600
    assert 100 < distinct < 600  # so the copies repeat real pages (near-duplicates for dedup)


def test_one_file_pool_is_the_path_itself(shared_data, tmp_path):
    path = tmp_path / "pool-50.warc.gz"
    build_pool(50, path)
    assert pool_files(path, 1) == [path] and len(_records(path)) == 50
