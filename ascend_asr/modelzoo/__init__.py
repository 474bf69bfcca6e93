"""Adapters behind the ModelZoo drop-in scripts (preprocess/*.py, postprocess/*.py): each script parses
ModelZoo's flags and calls one function here, through the runner.

common.py       what they share (agg_txts.json, ais_bench output names, input files)
jasper.py       Jasper_preprocess.py / Jasper_postprocess.py (NVIDIA's YAML read by the jasper family)
deepspeech2.py  deepspeech2_preprocess.py / deepspeech2_postprocess.py
lstm.py         LSTM_preprocess_data.py / LSTM_postprocess_data.py
"""
from .common import output_files, read_scores, stem_of_output, write_agg_txts
from .jasper import profile_for_model_config

__all__ = ["output_files", "profile_for_model_config", "read_scores", "stem_of_output", "write_agg_txts"]
