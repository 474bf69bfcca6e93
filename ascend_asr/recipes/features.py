"""Training features, computed by the profile's own frontend (the code preprocessing runs), cached."""
from __future__ import annotations

import functools
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..datasets import BadEntry, read_manifest
from ..errors import ManifestError
from ..featurize import featurize
from ..frontends import build_frontend, frontend_spec
from ..profiles import Profile


@functools.lru_cache(maxsize=4)
def _worker_frontend(spec_json: str):
    """One frontend per worker process and spec (mel basis, CMVN statistics built once, not per clip)."""
    return build_frontend(json.loads(spec_json))


def worker_frontend(spec: dict):
    return _worker_frontend(json.dumps(spec, sort_keys=True))


def _features(args):
    spec, path = args
    utt = featurize(worker_frontend(spec), path)
    return utt.feats[:, :utt.valid].astype(np.float16)


def manifest_features(manifest: str, profile: Profile, cache_dir: str, workers: int = 2, log=print):
    """([F, T] float16 per utterance, transcripts normalised to the vocabulary) for a manifest."""
    entries = list(read_manifest(manifest))
    bad = [e for e in entries if isinstance(e, BadEntry)]
    if bad:
        raise ManifestError(f"{bad[0].source}: {bad[0].message}")
    spec = frontend_spec(build_frontend(profile.frontend))
    key = hashlib.sha256(json.dumps([spec, [(e.audio_path, e.text) for e in entries]], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    cache = os.path.join(cache_dir, f"{os.path.splitext(os.path.basename(manifest))[0]}.{profile.name}.{key}.npz")
    texts = [profile.vocabulary.normalize(e.text) for e in entries]
    if os.path.isfile(cache):
        with np.load(cache) as data:
            flat, sizes = data["flat"], data["frames"]
        return np.split(flat, np.cumsum(sizes)[:-1], axis=1), texts
    log(f"[recipe] features of {len(entries)} utterances ({manifest}, {profile.frontend['name']}) ...")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        feats = list(pool.map(_features, [(spec, e.audio_path) for e in entries], chunksize=32))
    os.makedirs(cache_dir, exist_ok=True)
    tmp = cache + ".part.npz"
    np.savez(tmp, flat=np.concatenate(feats, axis=1), frames=np.array([f.shape[1] for f in feats]))
    os.replace(tmp, cache)
    return feats, texts
