"""Shared fixtures: a mini motion world and a tiny model, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def shared_data() -> Path:
    """../shared/data, or skip the calling test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real clips not available ({SHARED_DATA.resolve()} is absent; CI has it beside the repo)"
        )
    return SHARED_DATA.resolve()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the per-clip input cache inside the test session (subprocesses inherit it)."""
    import os

    os.environ["MOTIVE_CACHE"] = str(tmp_path_factory.mktemp("motive_cache"))


@pytest.fixture(scope="session", autouse=True)
def quiet_libraries():
    from motive.cli.commands import quiet_libraries as quiet

    quiet()


@pytest.fixture(scope="session")
def mini_world(tmp_path_factory) -> Path:
    """A 4-split world with a handful of clips per split (seconds to make)."""
    from motive.demo.render import generate_world
    from motive.demo.world import WorldConfig

    out = tmp_path_factory.mktemp("world")
    generate_world(WorldConfig(seed=3, clips=10, query_clips=10, eval_clips=10), out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model():
    from motive.models.tiny import build_tiny_model

    return build_tiny_model(seed=0)


@pytest.fixture(scope="session")
def model_dir(tiny_model, tmp_path_factory):
    """The tiny model saved as a diffusers pipeline folder."""
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


# Sizes that make a Wan2.2-shaped pipeline seconds to build and run on a CPU (same classes and layout).
SMALL_DIT = {"num_attention_heads": 2, "attention_head_dim": 16, "ffn_dim": 64, "num_layers": 1}
SMALL_TEXT = {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_heads": 2, "d_kv": 16, "vocab_size": 384}


@pytest.fixture(scope="session")
def real_shaped_dir(tmp_path_factory) -> Path:
    """A pipeline folder shaped like Wan2.1-T2V-1.3B, with no motive.json: the released VAE at full size,
    the transformer's real width, heads and FFN with one block, a UMT5 of the real width (4096) with one
    small layer."""
    from motive.models.shapes import build_pipeline

    text = {"d_ff": 256, "num_layers": 1, "num_heads": 2, "vocab_size": 384}
    out = tmp_path_factory.mktemp("real_shaped") / "Wan2.1-T2V-1.3B-shaped"
    return build_pipeline("wan2.1-t2v-1.3b", out, transformer={"num_layers": 1}, text=text)


@pytest.fixture(scope="session")
def wan22_dirs(tmp_path_factory) -> dict[str, Path]:
    """Small Wan2.2-TI2V-5B- and Wan2.2-T2V-A14B-shaped pipelines (48-channel residual VAE with per-token
    timesteps; two experts with a 0.875 boundary)."""
    from motive.models.shapes import build_pipeline

    root = tmp_path_factory.mktemp("wan22")
    small_vae = {"base_dim": 8, "num_res_blocks": 1}
    return {
        "ti2v": build_pipeline(
            "wan2.2-ti2v-5b",
            root / "ti2v",
            transformer=SMALL_DIT,
            text=SMALL_TEXT,
            vae={**small_vae, "decoder_base_dim": None},
        ),
        "a14b": build_pipeline(
            "wan2.2-t2v-a14b", root / "a14b", transformer=SMALL_DIT, text=SMALL_TEXT, vae=small_vae
        ),
    }


def real_clip_dataset(root: Path, names: list[str], prompts: list[str]) -> Path:
    """A dataset folder whose clips are links to real clips of ../shared/data (skips without it)."""
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).symlink_to(shared_data() / "videos" / name)
    pd.DataFrame({"video": names, "prompt": prompts}).to_csv(root / "metadata.csv", index=False)
    return root
