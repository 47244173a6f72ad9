"""Benchmarks: ``.venv/bin/python -m bench.<name>``; output goes to bench/out/ (ignored)."""
