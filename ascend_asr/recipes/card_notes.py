"""Family-specific sections appended to a small reference's model card (ascend_asr.recipes.small_reference)."""
from __future__ import annotations

ESPNET = """
## ESPnet format

- `espnet_conformer_small.zip` is laid out as `espnet2.bin.pack asr` writes a model: `meta.yaml`,
  `exp/asr_train_espnet_conformer_small/config.yaml` (frontend `default`, normalize `utterance_mvn`, encoder
  `conformer` with rel_pos latest and macaron, CTC only: `decoder: null`, `ctc_weight: 1.0`) and
  `exp/asr_train_espnet_conformer_small/valid.loss.ave.pth` (ESPnetASRModel's state dict; weights stored as
  float16, the mel matrix as float32).
- ESPnet 202511's own `ASRTask.build_model_from_file` rebuilds it with no missing or unexpected keys, and its
  modules give the same CTC log-probabilities as this package (checked in the fixture venv; see
  tests/fixtures/upstream/espnet_packed/README.md for that environment).
"""

PADDLE_DS2_ONLINE = """
## PaddleSpeech format and size

- `paddle_ds2_online_char.pdparams` is what `paddle.save(model.state_dict())` writes: a pickled dict of float32
  arrays under Paddle's names and layouts (each LSTM weight under both `encoder.rnn.i.weight_ih_l0` and
  `encoder.rnn.i.0.cell.weight_ih`, Linear weights [in, out]); `paddle_ds2_online_char.json` beside it holds the
  epoch and step, as PaddleSpeech's Checkpoint.save_parameters writes them. The CMVN statistics of the training
  features are `paddle_ds2_online_char_cmvn.txt` (sums, sums of squares and frame count).
- Smaller than the aishell recipe's structure: 40 fbank bins (not 161) and two LSTM layers of 256 (not three).
  At 161 bins the first LSTM's input is 1,248 wide (32 channels x 39 bins) and three LSTMs of 256 take 10 MB in
  float32, over the size budget of all shipped references (20 MB); at 40 bins it is 288 wide and two LSTMs of 256
  take 4.5 MB. A first run with two LSTMs of 176 (2.4 MB) reached 17.8% / 15.5% / 47.7% greedy CER, worse.
- The held-out FSDD speaker's digits are poorly recognised (greedy CER above 40%): this corpus has FSDD at its
  recorded speed only, and the model is unidirectional (the streaming model sees no right context).
"""

SECTIONS = {"espnet": ESPNET, "paddle_ds2_online": PADDLE_DS2_ONLINE}
