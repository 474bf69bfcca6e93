"""ascend_asr.tensor_files: raw .bin tensors, info lines, JSON lines, atomic writes."""
import os

import numpy as np
import pytest

from ascend_asr.errors import TensorFileError
from ascend_asr.tensor_files import (JsonlAppender, atomic_path, format_shape, natural_key,
                                     parse_info_line, read_bin, read_jsonl, write_bin)


def test_bin_is_raw_little_endian(tmp_path):
    arr = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 7.25) / 3
    path = str(tmp_path / "x.bin")
    write_bin(path, arr, "float32")
    with open(path, "rb") as f:
        assert f.read() == arr.astype("<f4").tobytes()
    back = read_bin(path, "float32", (2, 3, 4))
    assert back.shape == (2, 3, 4) and back.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(back, arr.astype(np.float32))


def test_bin_int64_round_trip(tmp_path):
    arr = np.array([[1, -2, 2 ** 40]], dtype=np.int64)
    path = str(tmp_path / "len.bin")
    write_bin(path, arr, "int64")
    with open(path, "rb") as f:
        assert f.read() == arr.astype("<i8").tobytes()
    np.testing.assert_array_equal(read_bin(path, "int64", (1, 3)), arr)


def test_read_bin_wrong_size(tmp_path):
    path = str(tmp_path / "short.bin")
    with open(path, "wb") as f:
        f.write(b"\0" * 40)
    with pytest.raises(TensorFileError) as info:
        read_bin(path, "float32", (1, 64))
    msg = str(info.value)
    assert path in msg and "40" in msg and "256" in msg


@pytest.mark.parametrize("line, expected", [
    ("0 prep/feats/000000000000.bin (1,64,4000)", (0, "prep/feats/000000000000.bin", (1, 64, 4000))),
    ("3 a/b.bin (1,)", (3, "a/b.bin", (1,))),
])
def test_parse_info_line(line, expected):
    assert parse_info_line(line, "info.txt:1") == expected


@pytest.mark.parametrize("line", ["0 x.bin __import__('os')", "0 x.bin (1;2)"])
def test_parse_info_line_rejects(line):
    with pytest.raises(TensorFileError) as info:
        parse_info_line(line, "info.txt:7")
    assert "info.txt:7" in str(info.value)


def test_format_shape():
    assert format_shape((1, 64, 4000)) == "(1,64,4000)"
    assert format_shape((1,)) == "(1,)"
    assert parse_info_line("5 p.bin " + format_shape((2, 3)), "s")[2] == (2, 3)


def test_natural_key_orders_numbers():
    names = ["data10", "data2", "data1", "data21"]
    assert sorted(names, key=natural_key) == ["data1", "data2", "data10", "data21"]


def test_read_jsonl_ignores_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"', encoding="utf-8")
    assert read_jsonl(str(path)) == [{"a": 1}, {"a": 2}]


def test_appender_drops_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"', encoding="utf-8")
    with JsonlAppender(str(path)) as out:
        out.write({"a": 4})
    assert read_jsonl(str(path)) == [{"a": 1}, {"a": 2}, {"a": 4}]
    assert path.read_text(encoding="utf-8").endswith('{"a": 4}\n')


def test_read_jsonl_malformed_middle_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n', encoding="utf-8")
    with pytest.raises(TensorFileError) as info:
        read_jsonl(str(path))
    assert str(path) in str(info.value)


def test_atomic_path_commits_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(str(target)) as tmp:
        assert tmp != str(target) and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "w") as f:
            f.write("new")
        assert not target.exists()
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_failure_leaves_existing_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_failure_creates_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("new")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("line", ["0 x.bin (,)", "0 x.bin (1,,2)", "0 x.bin ()", "0 x.bin (1, 2)"])
def test_info_shapes_with_empty_or_spaced_dims_are_refused(line):
    with pytest.raises(TensorFileError):
        parse_info_line(line, "x.info")


def test_atomic_writes_get_the_umask_mode_not_0600(tmp_path):
    path = tmp_path / "a.bin"
    write_bin(str(path), np.zeros(2), "float32")
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
