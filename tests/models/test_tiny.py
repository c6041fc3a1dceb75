import json

import pytest
import torch

from motive.demo.world import caption_texts, make_prompt
from motive.models import ModelError, VideoModel
from motive.models.tiny import TinyConfig, build_tiny_model, word_tokenizer


def test_word_tokenizer_gives_one_token_a_word_and_unk_outside_its_vocabulary():
    tok = word_tokenizer(caption_texts())
    prompt = make_prompt("red", "ball", "bounce", "checkered", "camera_pan", "right")
    ids = tok(prompt).input_ids
    words = tok.convert_ids_to_tokens(ids)
    assert words == [*prompt.replace(",", " ,").split(), "</s>"]  # every word known, the comma its own
    assert tok.convert_ids_to_tokens(tok("A RED blob").input_ids) == ["a", "red", "<unk>", "</s>"]
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 1)  # UMT5's pad and end ids


def test_word_model_round_trips_and_older_byte_models_load(tmp_path):
    with pytest.raises(ValueError, match="words"):
        build_tiny_model(TinyConfig(tokenizer="word"))
    with pytest.raises(ValueError, match="tokenizer"):
        TinyConfig(tokenizer="bpe")
    model = build_tiny_model(TinyConfig(tokenizer="word", condition="first-frame"), words=caption_texts())
    assert model.settings.text_len == 32 and model.settings.condition == "first-frame"
    prompts = ["a red ball bouncing on a checkered floor", "a red ball rolling across a checkered floor"]
    text = model.encode_text(prompts)  # [2, 32, D]
    assert int((text[0].abs().sum(-1) > 0).sum()) == 9  # 8 words and the end token
    assert not torch.allclose(text[0], text[1])
    loaded = VideoModel.from_pretrained(model.save_pretrained(tmp_path / "word"))
    assert loaded.settings == model.settings
    torch.testing.assert_close(loaded.encode_text(prompts), text)
    with pytest.raises(ModelError, match="first frame"):
        loaded.generate(prompts[:1], steps=1)  # without its first frames
    # a model saved before the text pathway and the condition were options: bytes, text-to-video
    old = build_tiny_model(TinyConfig(frames=5)).save_pretrained(tmp_path / "old")
    settings = json.loads((old / "motive.json").read_text())
    del settings["condition"]
    (old / "motive.json").write_text(json.dumps({**settings, "text_len": 128}))
    again = VideoModel.from_pretrained(old)
    assert (again.settings.condition, again.settings.text_len) == ("none", 128)
    assert type(again.pipe.tokenizer).__name__ == "ByT5Tokenizer" and not again.supports_first_frame()
