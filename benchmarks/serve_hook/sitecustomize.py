"""Put on PYTHONPATH (with the repository root) of a BENCHMARK's server only: every process it starts, uvicorn's
workers included, draws each session's challenges afresh (benchmarks/draw_hook.py; verify_latency --draw
production)."""

from benchmarks.draw_hook import install

install()
