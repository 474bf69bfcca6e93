"""Held-out evaluation of a reference model: PyTorch and the exported ONNX model on every test set.

Both read the same preprocessed tensors (prep/); onnxruntime runs through the deployment
pipeline (bundle, infer), PyTorch one utterance at a time. Writes `<profile>.evaluation.json` and the
model card `<profile>.md` beside the checkpoint.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import time

import torch

from ..batching import assemble, pick_frames
from ..bundle import convert
from ..datasets import read_manifest
from ..decoding import OutputLayout, decode_utterance, make_decoder
from ..export import export_onnx
from ..infer import InferOptions, infer
from ..metrics import percent, score
from ..families import get_family, load_model
from ..prep import open_prep
from ..preprocess import preprocess
from ..results import read_hyps
from .model_card import write_model_card
from .ngram_lm import write_bigram_arpa
from .reference_data import TEST_SETS

LM_SUFFIX = "words_bigram.arpa"  # of the training transcripts, in the profile's alphabet
BEAM_WIDTH = 10


def torch_transcripts(model, family, profile, prep_dir: str, bundle) -> dict[str, str]:
    """{utterance id: greedy transcript} from PyTorch on exactly the batches `infer` feeds the bundle:
    the same utterances together, padded to the same gear (models without length masks see the padding)."""
    prep = open_prep(prep_dir)
    names = [spec.name for spec in profile.inputs]
    vocab = profile.vocabulary
    layout = OutputLayout.of(profile)
    decode = make_decoder(vocab, layout.scores_are_probs)
    hyps = {}
    with torch.no_grad():
        for start in range(0, len(prep.rows), bundle.batch_size):
            rows = prep.rows[start:start + bundle.batch_size]
            frames = pick_frames(max(r["padded_frames"] for r in rows), bundle.frames, bundle.batch_size)
            feeds = assemble([prep.load(r) for r in rows], bundle.inputs, bundle.batch_size, frames)
            log_probs, lens = family.training_outputs(model, [torch.from_numpy(feeds[n]) for n in names])
            for i, r in enumerate(rows):
                _, ids = decode_utterance(layout, decode, log_probs[:, i].numpy(), out_length=lens[i])
                hyps[r["id"]] = vocab.decode(ids)
    return hyps


def evaluate(family_name: str, checkpoint: str, profile, manifests: dict, work_dir: str, lm: str | None = None,
             log=print) -> dict:
    """Scores per held-out set: greedy (and, given `lm`, beam search with it) on onnxruntime, PyTorch beside."""
    family = get_family(family_name)
    shutil.rmtree(work_dir, ignore_errors=True)  # a fresh evaluation, never resumed from another model's results
    model = load_model(profile, checkpoint)  # the upstream-format loader
    onnx_path = export_onnx(model, os.path.join(work_dir, f"{profile.name}.onnx"))
    bundle = convert(profile, onnx_path, os.path.join(work_dir, "bundles"), batch_sizes=[max(profile.batch_sizes)],
                     build_om=False)[0]
    results = {}
    for name in TEST_SETS:
        prep_dir, out_dir = os.path.join(work_dir, "prep", name), os.path.join(work_dir, "results", name)
        preprocess(manifests[name], prep_dir, profile, progress=False)
        start = time.perf_counter()
        summary = infer(bundle.om_path, prep_dir, out_dir, InferOptions(backend="onnxruntime", progress=False),
                        out=io.StringIO())
        ort = {r["id"]: (r["ref"], r["hyp"]) for r in read_hyps(out_dir)}
        lm_summary = infer(bundle.om_path, prep_dir, out_dir + "_beam_lm",
                           InferOptions(backend="onnxruntime", decoder="beam", beam_width=BEAM_WIDTH, lm=lm,
                                        progress=False), out=io.StringIO()) if lm else None
        pt = torch_transcripts(model, family, profile, prep_dir, bundle)
        differing = sorted(i for i in ort if pt.get(i) != ort[i][1])
        pt_score = score((ort[i][0], pt[i]) for i in ort)
        results[name] = {"utterances": len(ort), "wer": summary["wer"], "cer": summary["cer"],
                         "pytorch_wer": pt_score.wer, "pytorch_cer": pt_score.cer,
                         "transcripts_differing": len(differing), "differing_ids": differing[:20],
                         **({"wer_beam_lm": lm_summary["wer"], "cer_beam_lm": lm_summary["cer"]} if lm_summary else {}),
                         "rtf_onnxruntime": summary["rtf"], "seconds": time.perf_counter() - start,
                         "examples": [{"id": i, "ref": r, "hyp": h} for i, (r, h) in list(ort.items())[:3]]}
        log(f"[recipe] {name}: WER {percent(summary['wer'])} CER {percent(summary['cer'])} "
            + (f"; beam+LM WER {percent(lm_summary['wer'])} CER {percent(lm_summary['cer'])}" if lm_summary else "")
            + f" ({len(ort)} utterances; PyTorch and onnxruntime differ on {len(differing)})")
    return results


def evaluate_and_write_card(family_name: str, checkpoint: str, profile, manifests: dict, args, log=print) -> dict:
    work_dir = os.path.join(args.work_dir, "evaluation", profile.name)
    out_dir = os.path.dirname(checkpoint)
    lm = write_bigram_arpa([profile.vocabulary.normalize(e.text) for e in read_manifest(manifests["train"])],
                           os.path.join(out_dir, f"{profile.name}_{LM_SUFFIX}"))
    results = evaluate(family_name, checkpoint, profile, manifests, work_dir, lm=lm, log=log)
    with open(os.path.join(out_dir, f"{profile.name}.evaluation.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out_dir, f"{profile.name}.training.json"), encoding="utf-8") as f:
        training = json.load(f)
    storage = get_family(family_name).checkpoint_storage  # what the family's save writes
    write_model_card(os.path.join(out_dir, f"{profile.name}.md"), profile, checkpoint, training, results, storage)
    return results
