"""Allocations of the fake pyACL: real host addresses (ctypes buffers) tagged device or host.

Device memory is ordinary process memory here, so nothing stops a caller from touching it
directly; the double instead refuses device addresses wherever pyACL/hardware would fail
(host-side copies, ptr_to_bytes/ptr_to_numpy, H2D/D2H kinds).
"""
from __future__ import annotations

import bisect
import ctypes
import threading

from . import _codes as C

FILL = 0xCD  # fresh memory is not zeroed on hardware (the docs advise acl.rt.memset)


class Allocation:
    def __init__(self, size: int, kind: str, device: int | None):
        self.buf = (ctypes.c_char * size)()
        ctypes.memset(self.buf, FILL, size)
        self.addr = ctypes.addressof(self.buf)
        self.size = size
        self.kind = kind  # "device" or "host"
        self.device = device


class MemoryRegistry:
    def __init__(self):
        self._lock = threading.Lock()
        self._starts: list[int] = []
        self._allocs: dict[int, Allocation] = {}

    def allocate(self, size: int, kind: str, device: int | None) -> Allocation:
        a = Allocation(size, kind, device)
        with self._lock:
            bisect.insort(self._starts, a.addr)
            self._allocs[a.addr] = a
        return a

    def release(self, addr: int, kind: str) -> bool:
        """Only the exact start of an allocation of this kind may be freed."""
        with self._lock:
            a = self._allocs.get(addr)
            if a is None or a.kind != kind:
                return False
            del self._allocs[addr]
            self._starts.remove(addr)
            return True

    def find(self, addr: int):
        """-> (allocation, bytes remaining from addr) or (None, 0)."""
        with self._lock:
            i = bisect.bisect_right(self._starts, addr) - 1
            if i >= 0:
                a = self._allocs[self._starts[i]]
                if addr < a.addr + a.size:
                    return a, a.addr + a.size - addr
        return None, 0

    def is_device(self, addr: int) -> bool:
        a, _ = self.find(addr)
        return a is not None and a.kind == "device"

    def total(self, kind: str) -> int:
        with self._lock:
            return sum(a.size for a in self._allocs.values() if a.kind == kind)

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for a in self._allocs.values() if a.kind == kind)


_EXPECTED = {C.H2H: (False, False), C.H2D: (False, True), C.D2H: (True, False),
             C.D2D: (True, True)}


def check_copy(reg: MemoryRegistry, dst, dest_max, src, count, kind) -> tuple[int, str]:
    """Validate a memcpy like the runtime does -> (code, reason). Rules: count <= dest_max <=
    bytes left in dst's allocation; the direction must match `kind` (device = acl.rt.malloc
    memory; anything else is host); dst of H2D/D2D must be device memory; a source inside a
    known allocation must hold `count` bytes."""
    if not all(isinstance(v, int) for v in (dst, dest_max, src, count, kind)):
        return C.INVALID_PARAM, "memcpy arguments must be ints"
    if not dst or not src:
        return C.INVALID_PARAM, "memcpy with a null pointer"
    if count < 0 or dest_max < 0 or count > dest_max:
        return C.INVALID_PARAM, f"memcpy count {count} > dest_max {dest_max}"
    d, d_left = reg.find(dst)
    s, s_left = reg.find(src)
    d_dev = d is not None and d.kind == "device"
    s_dev = s is not None and s.kind == "device"
    if kind == C.DEFAULT:
        kind = {v: k for k, v in _EXPECTED.items()}[(s_dev, d_dev)]
    if kind not in _EXPECTED:
        return C.INVALID_PARAM, f"memcpy kind {kind} is not an aclrtMemcpyKind"
    if (s_dev, d_dev) != _EXPECTED[kind]:
        names = {False: "host", True: "device"}
        return C.INVALID_PARAM, (f"memcpy kind {kind} does not match a copy from "
                                 f"{names[s_dev]} to {names[d_dev]} memory")
    if d is not None and dest_max > d_left:
        return C.INVALID_PARAM, f"memcpy dest_max {dest_max} > {d_left} bytes left in dst"
    if s is not None and count > s_left:
        return C.INVALID_PARAM, f"memcpy count {count} > {s_left} bytes left in src"
    return C.SUCCESS, ""


def copy(dst: int, src: int, count: int) -> None:
    if count:
        ctypes.memmove(dst, src, count)
