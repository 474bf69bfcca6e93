"""Test doubles of Ascend's NPU runtimes (see README.md). Tests use `control`; the doubles
themselves are imported as top-level modules once this folder is on sys.path."""
