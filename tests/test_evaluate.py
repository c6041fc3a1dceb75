"""target_specificity on hand-made evaluate results; the VBench dimensions of generated videos, and a
caller's own measure of them."""

from motive.compare import CompareConfig
from motive.dimensions import WEIGHT_FREE
from motive.evaluate import EvalConfig, LossGrid, evaluate, target_specificity
from motive.generate import GenerateConfig


def test_target_specificity_is_the_target_change_minus_the_other_change():
    base = {"target_motion_loss": 0.50, "other_motion_loss": 1.00}
    tuned = {"target_motion_loss": 0.375, "other_motion_loss": 1.25}  # target −0.125, others +0.25
    assert target_specificity(tuned, base) == -0.375
    assert target_specificity(base, base) == 0.0


def test_evaluate_reports_every_weight_free_dimension_with_its_backend(tiny_model, mini_world):
    from motive.data.dataset import load_dataset

    clips = load_dataset(mini_world / "eval").clips[:2]
    seen = []

    def own_measure(i, video):  # a caller's own score of each generated video, in prompt order
        seen.append((i, video.shape))
        return {"brightness": float(video.mean()), "label": "kept as is"}

    result = evaluate(
        tiny_model,
        clips,
        [clips[0].prompt, clips[1].prompt],
        EvalConfig(
            grid=LossGrid(sigmas=[0.5], draws_per_sigma=1),
            videos=CompareConfig(generate=GenerateConfig(steps=2, batch=1)),
        ),
        video_score=own_measure,
    )
    for dim in WEIGHT_FREE:
        assert 0 <= result[dim] <= 1
    assert result["dimension_backends"]["dynamic_degree"] == "vbench-rule/flow=dis"
    assert [i for i, _ in seen] == [0, 1] and len(seen[0][1]) == 4  # uint8 [F, H, W, 3], batch by batch
    assert [v["label"] for v in result["videos"]] == ["kept as is"] * 2
    assert result["brightness"] == sum(v["brightness"] for v in result["videos"]) / 2  # floats averaged


def test_a_first_frame_model_is_evaluated_on_videos_from_its_clips_first_frames(mini_world):
    import pytest

    from motive.data.dataset import load_dataset
    from motive.models.tiny import TinyConfig, build_tiny_model

    model = build_tiny_model(TinyConfig(condition="first-frame", frames=5), seed=0)
    clips = load_dataset(mini_world / "eval").clips[:2]
    videos = CompareConfig(generate=GenerateConfig(steps=2, first_frame=True))
    config = EvalConfig(grid=LossGrid(sigmas=[0.5], draws_per_sigma=1), videos=videos)
    prompts, firsts = [c.prompt for c in clips], [str(c.video) for c in clips]
    result = evaluate(model, clips, prompts, config, first_frames=firsts)
    assert result["target_motion_loss"] > 0 and all(0 <= result[dim] <= 1 for dim in WEIGHT_FREE)
    with pytest.raises(ValueError, match="needs a clip per prompt"):
        evaluate(model, clips, prompts, config)
