"""Fine-tuning: full and LoRA lower the loss, save only what was trained, reload in Motive and in
diffusers, resume after a kill to the same weights, and train only the attributed Wan2.2-A14B expert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from motive.data.dataset import load_dataset
from motive.finetune import FinetuneConfig, finetune, flow_shift
from motive.loss import per_sample_loss
from motive.models.wan import VideoModel, expert_sigma_range


def _fixed_loss(model: VideoModel, dataset) -> float:
    """Flow-matching loss of the clips on a fixed (σ, ε) grid: what training should lower."""
    from motive.finetune import encode_clips

    data = encode_clips(model, dataset)
    gen = torch.Generator().manual_seed(7)
    text = model.encode_text([data.prompts[i] for i in data.prompt_ids.tolist()])
    total = 0.0
    with torch.no_grad():
        for sigma in (0.2, 0.5, 0.8):
            eps = torch.randn(data.latents.shape, generator=gen)
            s = torch.full((len(eps),), sigma)
            total += float(per_sample_loss(model, data.latents, text, s, eps).mean())
    return total / 3


@pytest.mark.parametrize("lora", [0, 8])
def test_full_and_lora_lower_the_loss_and_reload_in_motive_and_diffusers(
    lora, model_dir, mini_world, tmp_path
):
    from diffusers import WanPipeline, WanTransformer3DModel

    clips = list(load_dataset(mini_world / "pool"))[:4]
    base = VideoModel.from_pretrained(model_dir)
    before = _fixed_loss(base, clips)
    out = tmp_path / "tuned"
    config = FinetuneConfig(
        model=str(model_dir), data=str(mini_world / "pool"), out=str(out), steps=40, batch_size=4,
        lr=3e-4 if not lora else 3e-3, lora_rank=lora, checkpoint_every=0, checkpointing=False,
    )  # fmt: skip
    # train on the first 4 clips only: a selection file with their rows
    table = load_dataset(mini_world / "pool").table.iloc[:4]
    table.to_csv(tmp_path / "selection.csv", index=False)
    config.selection = str(tmp_path / "selection.csv")
    summary = finetune(config, progress=False)
    assert summary["clips"] == 4 and summary["steps"] == 40
    saved = sorted(p.name for p in out.iterdir())
    if lora:
        assert "pytorch_lora_weights.safetensors" in saved and "transformer" not in saved
        assert all("lora" in k for k in load_file(out / "pytorch_lora_weights.safetensors"))
    else:
        assert "transformer" in saved and "pytorch_lora_weights.safetensors" not in saved
    assert "vae" not in saved and "text_encoder" not in saved  # only what was trained
    meta = json.loads((out / "motive.json").read_text())
    assert meta["base"] == str(Path(model_dir).resolve()) and meta["trained"] == ("lora" if lora else "full")

    tuned = VideoModel.from_pretrained(out)  # Motive: base + trained weights (LoRA fused)
    assert not any("lora" in n for n, _ in tuned.transformer.named_parameters())
    after = _fixed_loss(tuned, clips)
    assert after < before, (before, after)

    if lora:  # diffusers' own loaders give the same velocity
        pipe = WanPipeline.from_pretrained(str(model_dir))
        pipe.load_lora_weights(str(out))
    else:
        transformer = WanTransformer3DModel.from_pretrained(str(out), subfolder="transformer")
        pipe = WanPipeline.from_pretrained(str(model_dir), transformer=transformer)
    x = torch.randn(1, 16, 5, 16, 16)
    text = tuned.encode_text([clips[0].prompt])
    with torch.no_grad():
        ours = tuned.velocity(x, torch.tensor([0.5]), text)
        theirs = pipe.transformer(
            hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=text, return_dict=False
        )[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def _run(out: Path, model_dir, data: Path) -> subprocess.Popen:
    args = ["finetune", "--model", str(model_dir), "--data", str(data), "--out", str(out), "--steps", "60",
            "--batch-size", "2", "--lr", "1e-3", "--checkpoint-every", "5", "--no-checkpointing", "-q"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "motive", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_a_killed_finetune_resumes_to_the_same_weights(model_dir, mini_world, tmp_path):
    data = mini_world / "pool"
    whole = _run(tmp_path / "whole", model_dir, data)  # the two runs go side by side
    killed = _run(tmp_path / "killed", model_dir, data)
    state = tmp_path / "killed" / "checkpoint" / "state.pt"
    deadline = time.time() + 600
    while not state.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert killed.poll() is None, "the run ended before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert state.exists() and not (tmp_path / "killed" / "finetune.json").exists()
    resumed = _run(tmp_path / "killed", model_dir, data)
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()
    assert whole.wait(timeout=600) == 0, whole.stdout.read()
    a = load_file(tmp_path / "whole" / "transformer" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "killed" / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not state.parent.exists()  # removed once the weights are saved


def test_a14b_trains_only_the_attributed_expert(wan22_dirs, tmp_path):
    import shutil

    from motive.models.checkpoint import ModelSettings
    from tests.conftest import real_clip_dataset

    data = real_clip_dataset(tmp_path / "d", ["imageio__newtonscradle.gif"], ["a cradle"])
    base = shutil.copytree(wan22_dirs["a14b"], tmp_path / "a14b")  # with a small clip format:
    ModelSettings(text_len=16, height=64, width=64, frames=5, fps=8.0).write(base)  # 81×480×832 is slow
    model = VideoModel.from_pretrained(base, sigma=0.751)
    assert expert_sigma_range(model) == (0.0, 0.875)
    assert expert_sigma_range(VideoModel.from_pretrained(base, sigma=0.9)) == (0.875, 1.0)
    out = tmp_path / "tuned"
    config = FinetuneConfig(
        model=str(base), data=str(data), out=str(out), steps=2, batch_size=1, checkpoint_every=0,
        checkpointing=False,
    )  # fmt: skip
    summary = finetune(config, progress=False)
    assert summary["trained"] == "transformer_2"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["transformer_2"]
    tuned = VideoModel.from_pretrained(out)
    assert tuned.expert == "transformer_2" and tuned.pipe.transformer is None


def test_flow_shift_comes_from_the_scheduler_config(wan22_dirs, tiny_model):
    assert flow_shift(VideoModel.from_pretrained(wan22_dirs["ti2v"])) == 5.0  # UniPC's flow_shift
    assert flow_shift(tiny_model) == 3.0  # flow-matching Euler's shift


def _torchrun(args: list[str]) -> subprocess.Popen:
    torchrun = Path(sys.executable).with_name("torchrun")
    return subprocess.Popen([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "motive", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip


def test_two_torchrun_ranks_take_the_steps_of_one_process_with_twice_the_batch(
    model_dir, mini_world, tmp_path
):
    """Each rank trains on its half of the same global batch and gradients are averaged: 2 ranks × batch 2
    equal 1 process × batch 4 up to reduction order: the same losses to 5 digits, and after 4 AdamW steps
    (lr 1e-3) weights within 3.9e-6 to 9.5e-6 of each other while they moved 4e-3 (measured; Adam's
    normalisation magnifies reduction-order noise in gradients near zero), 3.0e-5 once the world's clips
    were written without x264's macroblock tree (other pixels, other noise). Bound: 5e-5. The same holds
    with the transformer sharded (FSDP), including a sharded run killed at its checkpoint and resumed."""
    common = ["finetune", "--model", str(model_dir), "--data", str(mini_world / "pool"), "--steps", "4",
              "--lr", "1e-3", "--no-checkpointing", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the single process, the copied ranks and the sharded ranks all start together
    one = subprocess.Popen([sys.executable, "-m", "motive", *common, "--batch-size", "4", "--checkpoint-every", "0",
                            "--out", str(tmp_path / "one")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env)  # fmt: skip
    two = _torchrun([*common, "--batch-size", "2", "--checkpoint-every", "0", "--shard", "replicate",
                     "--out", str(tmp_path / "two")])  # fmt: skip
    # sharded: killed once a checkpoint exists (one every step), then rerun to the end
    sharded = [*common, "--batch-size", "2", "--checkpoint-every", "1", "--shard", "fsdp", "--out",
               str(tmp_path / "fsdp")]  # fmt: skip
    killed = _torchrun(sharded)
    state = tmp_path / "fsdp" / "checkpoint" / "state.pt"
    deadline = time.time() + 600
    while not state.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if killed.poll() is None:
        os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert state.exists(), "the sharded run wrote no checkpoint"
    resumed = _torchrun(sharded)
    log = resumed.stdout.read()
    assert resumed.wait(timeout=600) == 0, log[-3000:]
    assert one.wait(timeout=600) == 0, one.stdout.read()[-3000:]
    assert two.wait(timeout=600) == 0, two.stdout.read()[-3000:]
    summary = json.loads((tmp_path / "fsdp" / "finetune.json").read_text())
    assert summary["fsdp"] and summary["ranks"] == 2
    a = load_file(tmp_path / "one" / "transformer" / "diffusion_pytorch_model.safetensors")
    base = VideoModel.from_pretrained(model_dir).transformer.state_dict()
    moved = max(float((a[k] - base[k]).abs().max()) for k in a)
    assert moved > 1e-4, moved
    for run in ("two", "fsdp"):
        b = load_file(tmp_path / run / "transformer" / "diffusion_pytorch_model.safetensors")
        assert set(a) == set(b)
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
        assert diff < 5e-5, (run, moved, diff)
        losses = [[float(x.split(",")[1]) for x in (tmp_path / r / "loss.csv").read_text().splitlines()[1:]]
                  for r in ("one", run)]  # fmt: skip
        gap = max(abs(x - y) for x, y in zip(*losses))
        print(f"{run}: weights within {diff:.2e} (moved {moved:.2e}), losses within {gap:.2e}")
        assert len(losses[0]) == len(losses[1]) == 4 and gap < 1e-5, gap
    assert VideoModel.from_pretrained(tmp_path / "fsdp").transformer is not None  # reloads as a plain model


def test_a_checkpoint_of_other_data_is_refused(model_dir, mini_world, tmp_path):
    out = tmp_path / "ft"
    common = dict(
        model=str(model_dir), out=str(out), steps=3, batch_size=2, checkpoint_every=1, checkpointing=False
    )
    config = FinetuneConfig(data=str(mini_world / "pool"), **common)
    from motive.finetune import CHECKPOINT, train_on

    model = VideoModel.from_pretrained(model_dir)
    train_on(model, load_dataset(mini_world / "pool"), config, progress=False, checkpoint=out / CHECKPOINT)
    assert (out / CHECKPOINT).is_file()
    with pytest.raises(ValueError, match="other settings or data"):
        train_on(
            model, load_dataset(mini_world / "query"), config, progress=False, checkpoint=out / CHECKPOINT
        )


def test_ti2v_fine_tunes_with_its_own_shift_and_per_token_timesteps(wan22_dirs, tmp_path):
    import shutil

    from motive.models.checkpoint import ModelSettings
    from tests.conftest import real_clip_dataset

    data = real_clip_dataset(tmp_path / "d", ["imageio__newtonscradle.gif"], ["a cradle"])
    base = shutil.copytree(wan22_dirs["ti2v"], tmp_path / "ti2v")
    ModelSettings(text_len=16, height=64, width=64, frames=5, fps=24.0).write(base)  # small clips
    config = FinetuneConfig(model=str(base), data=str(data), out=str(tmp_path / "o"), steps=2, batch_size=1,
                            lora_rank=4, checkpoint_every=0, checkpointing=False)  # fmt: skip
    summary = finetune(config, progress=False)
    assert summary["trained"] == "transformer (LoRA rank 4)"
    tuned = VideoModel.from_pretrained(tmp_path / "o")
    assert tuned.z_dim == 48 and flow_shift(tuned) == 5.0
