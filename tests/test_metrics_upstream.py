"""Each family's upstream metric (metrics.py, timit.py), with the definition the summary names."""
import pytest

from ascend_asr.errors import ManifestError
from ascend_asr.metrics import char_errors, char_errors_without_spaces, upstream_metrics
from ascend_asr.timit import fold_to_39, folded_phone_error_rate


def test_deepspeech_cer_ignores_spaces_where_jiwer_counts_them():
    # a wrong word boundary costs jiwer's CER two characters and deepspeech.pytorch's nothing
    assert char_errors("to day", "today").errors == 1
    assert char_errors_without_spaces("to day", "today").errors == 0
    assert char_errors_without_spaces("to day", "today").reference_length == 5
    assert char_errors_without_spaces("abc", "").errors == 3


def test_timit_per_folds_both_sides_to_39_phones():
    assert fold_to_39("h# sh ix q hv ae dcl".split()) == ["sil", "sh", "ih", "hh", "ae", "sil"]
    assert folded_phone_error_rate([("h# sh ix hv", "sil sh ih hh")]).errors == 0
    assert folded_phone_error_rate([("h# sh ix", "sil s ih")]).errors == 1
    with pytest.raises(ManifestError):
        fold_to_39(["xx"])


def test_upstream_metrics_name_their_definitions_and_skip_empty_references():
    out = upstream_metrics([("sh ix t", "sh ih t"), ("", "aa")], phones=True)
    assert out["per_39"] == 0.0 and out["wer"] == pytest.approx(1 / 3)  # ix and ih fold together
    assert set(out["definitions"]) == {"wer", "cer", "cer_no_spaces", "per_39"}
    assert "per_39" not in upstream_metrics([("a", "a")])
