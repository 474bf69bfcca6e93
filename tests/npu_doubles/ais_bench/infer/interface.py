"""Fake `ais_bench.infer.interface` in two generations, chosen by FAKE_AIS_BENCH_API at import:
"new" (UP/AIT 2024-25: summary(), free_resource(), static finalize(), validated list feeds,
out_array) or "old" (mid-2023: sumary(), reset_sumaryinfo(), float exec times, no
free_resource, infer without out_array). Both run on the fake aclruntime."""
import os as _os

if _os.environ.get("FAKE_AIS_BENCH_API", "new") == "old":
    from ._old import InferSession, MemorySummary
else:
    from ._up import InferSession, MemorySummary, MultiDeviceSession  # noqa: F401
