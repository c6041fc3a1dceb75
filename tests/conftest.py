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
    from motive.demo.world import WorldConfig, generate_world

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
