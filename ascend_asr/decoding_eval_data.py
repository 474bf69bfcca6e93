"""The held-out data of the decoding evaluation, and each shipped model's log-probabilities on it.

Sets (manifests written under the work folder, audio made once and reused):
- `digits`: every FSDD recording of the speaker the training recipe holds out (`theo`, 500 clips);
- `sentences_seen_voices` / `sentences_unseen_voices`: the training recipe's own held-out sentences (new
  combinations of its closed 267-word vocabulary), in training voices and in voices training never heard;
- `open_sentences`: 40 everyday sentences written for this evaluation, most of whose words the models and
  their LMs never saw (open vocabulary), in voices training never heard.

Log-probabilities come from the deployment path itself (export -> bundle -> preprocess -> infer on
onnxruntime, one thread, batch 1, raw outputs saved), so decoders are compared on exactly what infer decodes,
and the same run gives the model's onnxruntime time per utterance on one core.
"""
from __future__ import annotations

import io
import json
import os
import random
from dataclasses import dataclass

import numpy as np

OPEN_SENTENCES = (
    "the weather is nice and warm this afternoon",
    "please turn off the lights when you leave the office",
    "my brother works at a hospital downtown",
    "we need more milk and eggs for breakfast",
    "the meeting has been moved to thursday",
    "she plays the piano every evening after work",
    "can you send me the report by tomorrow",
    "the children are playing football in the park",
    "our flight was delayed because of the storm",
    "he forgot his umbrella on the bus",
    "the museum opens at nine in the morning",
    "i would like a cup of coffee with sugar",
    "the new restaurant serves excellent pasta",
    "they painted the kitchen walls light blue",
    "my phone battery is almost empty",
    "the students finished their exams last week",
    "turn left at the second traffic light",
    "the library closes early on sundays",
    "we watched a funny movie last night",
    "the doctor told him to drink more water",
    "this computer needs a software update",
    "the garden is full of roses in june",
    "please write your name at the top of the page",
    "the price of gasoline went up again",
    "she bought a warm jacket for the winter",
    "the train to london leaves from platform four",
    "my grandmother makes delicious apple pie",
    "the dog barked at the mailman this morning",
    "we are planning a trip to the mountains",
    "the concert tickets sold out in one hour",
    "he speaks three languages fluently",
    "the river flooded after the heavy rain",
    "i left my keys on the kitchen counter",
    "the teacher explained the problem twice",
    "they moved into a bigger apartment",
    "the soup tastes better with fresh herbs",
    "our neighbours have a very loud parrot",
    "the bakery sells fresh bread every day",
    "the hotel room had a beautiful view of the sea",
    "remember to water the plants on friday",
)

SETS = ("digits", "sentences_seen_voices", "sentences_unseen_voices", "open_sentences")
CLOSED_SETS = ("digits", "sentences_seen_voices", "sentences_unseen_voices")


@dataclass(frozen=True)
class Utterance:
    id: str
    ref: str
    log_probs: np.ndarray  # [T, V] natural-log probabilities, valid frames only
    frames: int  # valid input frames
    duration: float


def _write_manifest(path: str, rows: list[tuple[str, str]]) -> str:
    import soundfile as sf

    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("path\tduration\ttext\n")
        for audio, text in rows:
            f.write(f"{audio}\t{sf.info(audio).duration:.3f}\t{text}\n")
    os.replace(tmp, path)
    return path


def build_sets(fsdd_dir: str, work_dir: str, seen: int = 200, unseen: int = 100, seed: int = 0,
               log=print) -> dict[str, str]:
    """{set: manifest path}; synthesizes what is missing (espeak-ng, flite, sox as the training recipe)."""
    from .recipes.reference_data import DataSettings, plan
    from .recipes.synthesis import synthesize
    from .recipes.voices import random_voice

    os.makedirs(work_dir, exist_ok=True)
    planned = plan(DataSettings(seed=seed), fsdd_dir, os.path.join(work_dir, "recipe"))
    rng = random.Random(seed + 101)
    open_items = [(os.path.join(work_dir, "audio", "open_sentences", f"open_{i:03d}.wav"), text,
                   random_voice(rng, held_out=True)) for i, text in enumerate(OPEN_SENTENCES)]
    todo = [(i.path, i.text, i.make[1]) for name in ("test_sentences_seen_voices", "test_sentences_unseen_voices")
            for i in planned[name][: seen if "_seen_" in name else unseen] if not os.path.isfile(i.path)]
    todo += [item for item in open_items if not os.path.isfile(item[0])]
    if todo:
        log(f"[decoding-eval] synthesizing {len(todo)} sentences into {work_dir}")
        for path, text, voice in todo:
            synthesize(text, voice, path)
    manifests = {
        "digits": [(i.path, i.text) for i in planned["test_digits_heldout_speaker"]],
        "sentences_seen_voices": [(i.path, i.text) for i in planned["test_sentences_seen_voices"][:seen]],
        "sentences_unseen_voices": [(i.path, i.text) for i in planned["test_sentences_unseen_voices"][:unseen]],
        "open_sentences": [(p, t) for p, t, _ in open_items],
    }
    return {name: _write_manifest(os.path.join(work_dir, f"{name}.tsv"), rows) for name, rows in manifests.items()}


def model_outputs(profile_name: str, manifests: dict[str, str], work_dir: str, log=print) -> dict:
    """{set: [Utterance]} and the onnxruntime time per utterance (one thread, batch 1) of a shipped model,
    cached in work_dir/<profile>/<set>.npz."""
    from .batching import row, time_major
    from .bundle import convert
    from .decoding import OutputLayout
    from .export import export_onnx
    from .families import load_model, reference_checkpoint
    from .infer import InferOptions, infer
    from .preprocess import preprocess
    from .profiles import load_profile
    from .results import read_hyps

    profile = load_profile(profile_name)
    model_dir = os.path.join(work_dir, profile_name)
    os.makedirs(model_dir, exist_ok=True)
    bundle = None
    out, timing = {}, {}
    for name, manifest in manifests.items():
        cache = os.path.join(model_dir, f"{name}.npz")
        if not os.path.isfile(cache):
            if bundle is None:
                onnx = export_onnx(load_model(profile, reference_checkpoint(profile_name)),
                                   os.path.join(model_dir, f"{profile_name}.onnx"))
                bundle = convert(profile, onnx, os.path.join(model_dir, "bundles"), batch_sizes=[1],
                                 build_om=False)[0]
            prep_dir, results = os.path.join(model_dir, "prep", name), os.path.join(model_dir, "results", name)
            preprocess(manifest, prep_dir, profile, progress=False)
            log(f"[decoding-eval] {profile_name} on {name}: onnxruntime, 1 thread")
            summary = infer(bundle.om_path, prep_dir, results,
                            InferOptions(backend="onnxruntime", ort_threads=1, save_outputs="npy", progress=False),
                            out=io.StringIO())
            layout = OutputLayout.of(bundle)
            index = {spec.name: k for k, spec in enumerate(bundle.outputs)}
            arrays, meta = {}, []
            for r in read_hyps(results):
                raw = {spec.name: np.load(os.path.join(results, "outputs", f"{r['stem']}_{index[spec.name]}.npy"))
                       for spec in bundle.outputs}
                scores = time_major(row(raw, layout.scores, 0), layout.scores)
                length = r["out_frames"] if r["out_frames"] is not None else len(scores)
                scores = np.asarray(scores[:length], dtype=np.float32)
                if layout.scores_are_probs:
                    scores = np.log(np.maximum(scores, 1e-30))
                arrays[r["stem"]] = scores
                meta.append({"stem": r["stem"], "id": r["id"], "ref": r["ref"], "frames": r["frames"],
                             "duration": r["duration"]})
            np.savez_compressed(cache + ".part.npz", **arrays)
            os.replace(cache + ".part.npz", cache)
            with open(cache + ".json", "w", encoding="utf-8") as f:
                json.dump({"rows": meta, "ort_compute_ms_mean": summary["NPU_compute_time"]["mean"],
                           "ort_compute_ms_count": summary["NPU_compute_time"]["count"]}, f)
        with open(cache + ".json", encoding="utf-8") as f:
            info = json.load(f)
        with np.load(cache) as data:
            out[name] = [Utterance(m["id"], m["ref"], data[m["stem"]], m["frames"], m["duration"])
                         for m in info["rows"]]
        timing[name] = info["ort_compute_ms_mean"]
    return {"sets": out, "ort_ms_per_utterance": timing, "profile": profile}
