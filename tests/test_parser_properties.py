"""Property tests: every parser of outside data gives a result or a project error (AscendAsrError),
never another exception, whatever bytes or values it is given (issue 12)."""
import json
import os
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ascend_asr.datasets import BadEntry, Utterance, read_manifest
from ascend_asr.errors import AscendAsrError
from ascend_asr.language_model import parse_arpa, ArpaLM
from ascend_asr.profiles import profile_from_dict
from ascend_asr.tensor_files import HYPS_FIELDS, META_FIELDS, check_row, parse_info_line, read_info, read_jsonl

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12)
keys = st.sampled_from(["audio_filepath", "path", "audio", "wav", "text", "transcript", "duration", "id", "files",
                        "fname", "speed", "original_duration", "wav_path", "transcript_path", "root_path",
                        "samples", "stem", "frames", "padded_frames", "hyp", "ref", "out_frames"])
objects = st.dictionaries(keys | st.text(max_size=8), json_values, max_size=8)
line_bytes = st.binary(max_size=80) | st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass"))


def _write(data: bytes, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _manifest(data: bytes, suffix: str):
    path = _write(data, suffix)
    try:
        entries = list(read_manifest(path))
        assert all(isinstance(e, (Utterance, BadEntry)) for e in entries)
        for e in entries:
            if isinstance(e, Utterance):
                assert isinstance(e.id, str) and isinstance(e.text, str) and isinstance(e.audio_path, str)
                assert e.duration is None or e.duration >= 0
    except AscendAsrError:
        pass
    finally:
        os.unlink(path)


@SETTINGS
@given(st.lists(line_bytes, max_size=6), st.booleans())
def test_tsv_manifest(lines, with_header):
    head = [b"path\tduration\ttext"] if with_header else []
    _manifest(b"\n".join(head + lines), ".tsv")


@SETTINGS
@given(st.lists(objects.map(lambda o: json.dumps(o).encode()) | line_bytes, max_size=6))
def test_jsonl_manifest(lines):
    _manifest(b"\n".join(lines), ".jsonl")


@SETTINGS
@given(st.lists(objects | st.fixed_dictionaries({"transcript": json_values, "files": st.lists(objects, max_size=3)}),
                max_size=5) | json_values)
def test_nvidia_json_manifest(data):
    _manifest(json.dumps(data).encode(), ".json")


@SETTINGS
@given(st.fixed_dictionaries({"samples": st.lists(objects | json_values, max_size=4)}, optional={"root_path": json_values}))
def test_deepspeech_json_manifest(data):
    _manifest(json.dumps(data).encode(), ".json")


@SETTINGS
@given(st.binary(max_size=200))
def test_json_manifest_bytes(data):
    _manifest(data, ".json")


@SETTINGS
@given(st.text(max_size=60) | st.from_regex(r"\A\d{1,25} \S{1,10} \((\d{1,25},?){1,4}\)\Z"))
def test_info_line(line):
    try:
        index, path, shape = parse_info_line(line, "x.info:1")
        assert isinstance(index, int) and isinstance(path, str) and all(isinstance(d, int) for d in shape)
    except AscendAsrError:
        pass


@SETTINGS
@given(st.lists(line_bytes, max_size=6))
def test_info_file(lines):
    path = _write(b"\n".join(lines), ".info")
    try:
        read_info(path)
    except AscendAsrError:
        pass
    finally:
        os.unlink(path)


@SETTINGS
@given(st.lists(objects.map(lambda o: json.dumps(o).encode()) | line_bytes, max_size=6), st.booleans())
def test_meta_and_hyps_lines(lines, newline_at_end):
    path = _write(b"\n".join(lines) + (b"\n" if newline_at_end else b""), ".jsonl")
    try:
        rows = read_jsonl(path)
        assert all(isinstance(r, dict) for r in rows)
        for fields in (META_FIELDS, HYPS_FIELDS):
            for n, row in enumerate(rows):
                try:
                    check_row(row, fields, f"{path} (row {n})", "fix it")
                except AscendAsrError:
                    pass
    except AscendAsrError:
        pass
    finally:
        os.unlink(path)


profile_keys = st.sampled_from(["name", "family", "model_config", "inputs", "outputs", "frames", "frontend",
                                "vocabulary", "labels", "blank", "shape", "dtype", "role", "atc", "time_stride",
                                "batch_sizes", "sample_rate", "n_mels", "separator", "warning"])
profile_dicts = st.dictionaries(profile_keys | st.text(max_size=6),
                                st.recursive(st.none() | st.booleans() | st.integers(-5, 5000) | st.floats() |
                                             st.text(max_size=8),
                                             lambda c: st.lists(c, max_size=3) | st.dictionaries(
                                                 profile_keys | st.text(max_size=6), c, max_size=4),
                                             max_leaves=10),
                                max_size=8)


@SETTINGS
@given(profile_dicts)
def test_profile_from_arbitrary_dict(data):
    try:
        profile_from_dict(data, "p.yaml")
    except AscendAsrError:
        pass


@SETTINGS
@given(st.text(max_size=120))
def test_profile_from_arbitrary_yaml(text):
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return  # the YAML library's own refusal, before the profile parser
    try:
        profile_from_dict(data, "p.yaml")
    except AscendAsrError:
        pass


arpa_lines = st.lists(
    st.sampled_from(["\\data\\", "\\end\\", "\\1-grams:", "\\2-grams:", "\\x-grams:", "\\0-grams:", "ngram 1=2",
                     "ngram 2=1", "ngram 1=x", "ngram =", "-1.0\ta", "-0.5\tb\t-0.3", "-1.0\ta b", "nan\ta",
                     "inf\tb", "-1\t<s>", "-1\t</s>", "-2\ta b\t-0.1", "", "junk"]) | st.text(max_size=20),
    max_size=14)


@SETTINGS
@given(arpa_lines)
def test_arpa_text(lines):
    try:
        probs, backoffs, order = parse_arpa(lines, "lm.arpa")
        assert order >= 1
    except AscendAsrError:
        pass


@SETTINGS
@given(st.binary(max_size=120))
def test_arpa_file_bytes(data):
    path = _write(b"\\data\\\nngram 1=1\n\n\\1-grams:\n" + data + b"\n\\end\\\n", ".arpa")
    try:
        lm = ArpaLM(path)
        lm.score((), "a")
    except AscendAsrError:
        pass
    finally:
        os.unlink(path)
