"""Fake ais_bench (Python API only: ais_bench.infer.interface) for the ascend-asr tests."""
