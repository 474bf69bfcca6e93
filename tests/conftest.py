"""Shared fixtures: a seeded small Jasper, its ONNX export, bundles, and prep/ of the bundled clips."""
import os

import pytest
import torch

from ascend_asr.bundle import convert
from ascend_asr.demo import ASSETS, save_random_checkpoint
from ascend_asr.export import export_onnx
from ascend_asr.families import build_model, load_model
from ascend_asr.preprocess import preprocess
from ascend_asr.profiles import load_profile

CLIPS_MANIFEST = os.path.join(ASSETS, "manifest.tsv")  # eight real recordings (LibriSpeech, CMU, FSDD)
CLIPS = os.path.join(ASSETS, "clips")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def perturb_batchnorm(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Random BN statistics (1d and 2d), so that parity tests exercise every term of BN, not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(1 + 0.1 * torch.randn(n, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g))
    return model


@pytest.fixture(scope="session")
def small_profile():
    return load_profile("jasper_small")


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, small_profile):
    """A seeded small Jasper with random BN statistics, saved in NVIDIA's checkpoint format."""
    path = str(tmp_path_factory.mktemp("ckpt") / "jasper_small.pt")
    torch.manual_seed(0)
    model = perturb_batchnorm(build_model(small_profile))
    state = model.state_dict()
    torch.save({"epoch": 1, "state_dict": state, "ema_state_dict": state}, path)
    return path


@pytest.fixture(scope="session")
def small_model(small_profile, small_checkpoint):
    return load_model(small_profile, small_checkpoint)


@pytest.fixture(scope="session")
def small_onnx(tmp_path_factory, small_model):
    return export_onnx(small_model, str(tmp_path_factory.mktemp("onnx") / "jasper_small.onnx"))


@pytest.fixture(scope="session")
def small_bundles(tmp_path_factory, small_profile, small_onnx):
    """Bundles at batch 1 and 4: {1: Bundle, 4: Bundle}."""
    out = tmp_path_factory.mktemp("bundles")
    return {b.batch_size: b for b in convert(small_profile, small_onnx, str(out))}


@pytest.fixture(scope="session")
def demo_prep(tmp_path_factory, small_profile):
    out = str(tmp_path_factory.mktemp("prep") / "prep")
    preprocess(CLIPS_MANIFEST, out, small_profile, progress=False)
    return out


__all__ = ["ASSETS", "CLIPS", "CLIPS_MANIFEST", "REPO", "perturb_batchnorm", "save_random_checkpoint"]
