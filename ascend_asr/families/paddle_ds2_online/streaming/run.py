"""Streaming recognition of a manifest: features, the chunk graph on a backend, batched streams, greedy CTC."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from ....atc import command_line
from ....errors import ExportError, OptionError
from .chunks import ChunkPlan
from .graph import (FP32_MAX_ABS, Thresholds, build_om, chunk_parity, export_model, ort_runner, probe_chunks,
                    quantize_int8, torch_runner)
from .scheduler import run_streams
from .steps import npu_step, onnxruntime_step, paddle_step, torch_step

BACKENDS = ("onnxruntime", "acl", "ais_bench", "torch", "paddle")


@dataclass(frozen=True)
class StreamingOptions:
    chunk_frames: int = 1
    streams: int = 4
    backend: str = "onnxruntime"
    int8: bool = False
    threads: int = 1
    device: int = 0
    soc_version: str = "Ascend310P3"
    atc: str | None = None
    paddle_model_dir: str | None = None  # backend paddle: the recipe's exported inference model


@dataclass(frozen=True)
class ModelSource:
    """Everything the streaming run needs to know about the model, from a profile or the recipe's files."""

    config: object         # PaddleDs2OnlineConfig
    frontend: dict          # frontend spec with its name
    vocabulary: object      # ascend_asr.text.Vocabulary
    atc: dict


def model_source(profile_name: str | None, config_path: str | None) -> ModelSource:
    from ... import get_family, profile_config
    from ....profiles import load_profile
    from ....text import Vocabulary

    family = get_family("paddle_ds2_online")
    profile = load_profile(profile_name or family.default_profile)
    if config_path:
        upstream = family.read_upstream(config_path)
        return ModelSource(upstream.config, {"name": family.frontend, **upstream.frontend},
                           Vocabulary.from_spec(upstream.vocabulary, config_path), profile.atc)
    if profile.family != family.name:
        raise OptionError(f"--profile {profile.name}: a {profile.family} profile; streaming runs the "
                          f"{family.name} family (PaddleSpeech DS2 online)")
    return ModelSource(profile_config(profile)[1], dict(profile.frontend), profile.vocabulary, profile.atc)


def prepare_graph(model, source: ModelSource, options: StreamingOptions, work: str) -> tuple:
    """(step, close, graph report): the chunk graph exported and gated (fp32 vs torch; int8 vs fp32), built into
    a static-chunk OM for the NPU backends."""
    plan = ChunkPlan(options.chunk_frames)
    report: dict = {}
    if options.backend == "torch":
        return torch_step(model), (lambda: None), report
    if options.backend == "paddle":
        if not options.paddle_model_dir:
            raise OptionError("--backend paddle needs --paddle-model-dir (the recipe's exported inference model)")
        return paddle_step(options.paddle_model_dir, threads=options.threads), (lambda: None), report
    os.makedirs(work, exist_ok=True)
    fp32 = export_model(model, os.path.join(work, "chunk.onnx"))
    feeds = probe_chunks(source.config, plan)
    report["export"], found = chunk_parity(torch_runner(model), ort_runner(fp32), feeds, Thresholds(), FP32_MAX_ABS)
    if found:
        raise ExportError(f"{fp32}: export parity gate failed: {'; '.join(map(str, found))}")
    graph = fp32
    if options.int8:
        graph = os.path.join(work, "chunk.int8.onnx")
        report["int8"] = quantize_int8(fp32, graph, source.config, plan)
    if options.backend == "onnxruntime":
        return onnxruntime_step(graph, options.threads), (lambda: None), report
    name = f"chunk_s{options.streams}_c{options.chunk_frames}"
    om, cmd = build_om(fp32, work, name, source.config, options.streams, plan, source.atc, options.soc_version,
                       options.atc)
    report["atc_command"] = command_line(cmd)
    step, close = npu_step(om, options.backend, options.device)
    return step, close, report


def load_features(entries, frontend, failures: list | None = None) -> tuple[list[tuple[str, np.ndarray]], float, float]:
    """[(key, features [T, F])], seconds of audio, seconds spent on features. An utterance that cannot be read or
    is too short goes to `failures` ({id, error}) when given, else raises."""
    from ....audio import load_audio
    from ....errors import AscendAsrError

    utterances, audio_seconds, start = [], 0.0, time.perf_counter()
    for key, path in entries:
        try:
            samples = load_audio(path, frontend.params.sample_rate)
            feats, valid = frontend(samples)
        except AscendAsrError as exc:
            if failures is None:
                raise
            failures.append({"id": key, "error": str(exc)})
            continue
        utterances.append((key, np.ascontiguousarray(feats[:, :valid].T)))
        audio_seconds += len(samples) / frontend.params.sample_rate
    return utterances, audio_seconds, time.perf_counter() - start


def stream(checkpoint: str, entries, source: ModelSource, options: StreamingOptions, work: str,
           references: dict | None = None) -> dict:
    """Stream `entries` [(key, audio path)]; the summary (per-chunk latency, RTF, error rates, parity)."""
    from ....decoding import greedy_ctc
    from ... import get_family
    from ....frontends import build_frontend
    from ....metrics import score

    if options.streams < 1:
        raise OptionError(f"--streams {options.streams}: give at least 1")
    if options.backend not in BACKENDS:
        raise OptionError(f"--backend {options.backend!r}: choose one of {', '.join(BACKENDS)}")
    if options.int8 and options.backend != "onnxruntime":
        raise OptionError("--int8 is onnxruntime's dynamic quantisation (--backend onnxruntime); ATC takes the fp32 "
                          "graph and its precision_mode sets the NPU's precision")
    plan = ChunkPlan(options.chunk_frames)
    model = get_family("paddle_ds2_online").load(checkpoint, source.config).model
    frontend = build_frontend(source.frontend)
    failures: list = []
    utterances, audio_seconds, feature_seconds = load_features(entries, frontend, failures)
    if not utterances:
        raise OptionError(f"no utterance could be read ({len(failures)} failed; first: "
                          f"{failures[0]['error'] if failures else 'none given'})")
    step, close, graph_report = prepare_graph(model, source, options, work)
    c = source.config
    try:
        results, stats = run_streams(utterances, step, plan, options.streams, c.num_rnn_layers, c.rnn_layer_size,
                                     c.feature_size)
    finally:
        close()
    vocab = source.vocabulary
    hyps = {r.key: vocab.decode(greedy_ctc(r.probs, len(r.probs), vocab.blank)) for r in results}
    summary = {"backend": options.backend + ("-int8" if options.int8 else ""), "chunk_frames": plan.chunk_frames,
               "window_frames": plan.window, "stride_frames": plan.stride, "streams": options.streams,
               "utterances": len(results), "failed": failures, "feature_seconds": feature_seconds,
               **stats.summary(audio_seconds),
               "parity": graph_report}
    if references:  # scored as the pipeline scores: references in the vocabulary's terms, empty ones left out
        s = score([(vocab.normalize(references[k]), hyps[k]) for k in hyps if references.get(k)], warn=False)
        summary.update(wer=s.wer, cer=s.cer, empty_references=s.empty_references)
    summary["hyps"] = hyps
    return summary


def write_results(output: str, summary: dict) -> None:
    """summary.json and hyps.jsonl in `output`, each written atomically."""
    os.makedirs(output, exist_ok=True)
    hyps = summary["hyps"]
    for name, text in (("summary.json", json.dumps({k: v for k, v in summary.items() if k != "hyps"}, indent=1)),
                       ("hyps.jsonl", "".join(json.dumps({"id": k, "hyp": v}, ensure_ascii=False) + "\n"
                                              for k, v in hyps.items()))):
        path = os.path.join(output, name)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
