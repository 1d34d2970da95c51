"""The benchmark suite of issue 17 (``python -m bench``) and the older single-operation scripts (bench_*.py)."""
