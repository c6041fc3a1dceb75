"""The motion world: procedurally rendered clips whose motion and appearance we know.

Every clip has independent, recorded factors — motion, object colour, shape, background texture and
camera — so attribution can be checked against ground truth (does it retrieve the query's *motion*,
or only its colour?). This module defines the world (its factors, captions and clip specifications);
``motive.demo.render`` renders the clips and writes them as users' data would come: H.264 files plus
``metadata.csv``.

Splits (each its own dataset folder under the output directory):
- ``base``: pretraining data; under-represents ``bounce`` and ``cartoon_hover`` so fine-tuning on a
  good selection of the pool can measurably teach them;
- ``pool``: candidate fine-tuning data, all motions in equal share, some with an added camera pan;
- ``query``: held-out appearances (colour–shape pairs never in base or pool) per motion, still camera,
  on backgrounds the base has seen;
- ``eval``: more held-out-appearance clips and their prompts, for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MOTIONS = (
    "bounce",
    "roll",
    "slide",
    "float",
    "free_fall",
    "spin",
    "swing",
    "static",
    "camera_pan",
    "cartoon_hover",
)
COLOURS = {
    "red": (0.86, 0.12, 0.12),
    "green": (0.10, 0.72, 0.20),
    "blue": (0.12, 0.25, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.15, 0.75),
    "orange": (0.98, 0.50, 0.05),
    "white": (0.97, 0.97, 0.97),
    "cyan": (0.10, 0.85, 0.90),
}
SHAPES = ("ball", "box", "triangle", "diamond")
BACKGROUNDS = ("checkered", "striped", "dotted", "cloudy", "brick")
SPLITS = ("base", "pool", "query", "eval")

MOTION_PHRASES = {
    "bounce": "bouncing on",
    "roll": "rolling across",
    "slide": "sliding across",
    "float": "floating above",
    "free_fall": "falling onto",
    "spin": "spinning on",
    "swing": "swinging above",
    "static": "resting on",
    "camera_pan": "resting on",
    "cartoon_hover": "stepping off a ledge, hovering, then dropping onto",
}
# Motions whose caption can name their direction (``WorldConfig.direction_words``): the object's
# horizontal travel, or its sense of rotation for spin; a panned camera's direction is named too.
DIRECTION_WORDS = {"spin": {"right": "clockwise", "left": "anticlockwise"}}
DIRECTED = ("bounce", "roll", "slide", "spin", "cartoon_hover")
# Motions the base split shows rarely (relative weight), so fine-tuning on the pool can teach them.
BASE_RARE = {"bounce": 0.2, "cartoon_hover": 0.2}
STILL = "none"  # camera label of a still camera; direction label of a caption that names none


def held_out_pairs() -> set[tuple[str, str]]:
    """Colour–shape pairs reserved for query/eval clips: each colour once, each shape twice."""
    colours = list(COLOURS)
    return {(c, SHAPES[i % len(SHAPES)]) for i, c in enumerate(colours)}


def make_prompt(
    colour: str, shape: str, motion: str, background: str, camera: str, direction: str = STILL
) -> str:
    """The caption of a clip: names appearance and motion, e.g. 'a red ball bouncing on a checkered
    floor'; with a ``direction`` ("left"/"right") also which way the object and camera go, e.g.
    'a red ball bouncing rightward on a checkered floor, the camera panning right'."""
    phrase = MOTION_PHRASES[motion]
    if direction != STILL and motion in DIRECTED:
        verb, rest = phrase.split(" ", 1)
        word = DIRECTION_WORDS.get(motion, {}).get(direction, f"{direction}ward")
        phrase = f"{verb} {word} {rest}"
    text = f"a {colour} {shape} {phrase} a {background} floor"
    if camera != STILL:
        text += ", the camera panning " + ("sideways" if direction == STILL else direction)
    return text


def caption_texts() -> list[str]:
    """One caption per motion × direction × camera, with every colour, shape and background named
    across them: every word a caption of this world can hold (the demo model's word vocabulary)."""
    texts = [" ".join([*COLOURS, *SHAPES, *BACKGROUNDS])]
    for motion in MOTIONS:
        for direction in (STILL, "left", "right"):
            for camera in (STILL, "camera_pan"):
                texts.append(make_prompt("red", "ball", motion, "checkered", camera, direction))
    return texts


def caption_labels(labels: dict) -> dict[str, str]:
    """``make_prompt``'s arguments from a clip's labels (a metadata row's columns); worlds written
    before the ``direction`` column existed name no direction."""
    keys = ("colour", "shape", "motion", "background", "camera")
    return {k: labels[k] for k in keys} | {"direction": labels.get("direction", STILL)}


def draw_size_and_direction(rng: np.random.Generator) -> tuple[float, float]:
    """The first two draws of a clip's trajectory: its size factor and its direction (±1: +1 is
    rightward travel, clockwise spin and a camera panning right)."""
    return float(rng.uniform(0.14, 0.18)), float(rng.choice([-1.0, 1.0]))


@dataclass
class ClipSpec:
    """Everything needed to render one clip; ``seed`` drives its trajectory details."""

    motion: str
    colour: str
    shape: str
    background: str
    camera: str
    frames: int
    seed: int
    size: float = 1.0  # object size relative to the default (radius 0.14–0.18 of the frame height)
    direction: str = STILL  # the direction the caption names ("left"/"right"), "none" if it names none

    @property
    def prompt(self) -> str:
        return make_prompt(self.colour, self.shape, self.motion, self.background, self.camera, self.direction)


@dataclass
class WorldConfig:
    """Settings of a generated world; saved as ``world.json`` beside the splits."""

    seed: int = field(default=0, metadata={"help": "world seed (same seed, same clips)"})
    clips: int = field(default=200, metadata={"help": "clips per split"})
    base_clips: int | None = field(
        default=None, metadata={"help": "clips in the base split (overrides --clips)"}
    )
    pool_clips: int | None = field(
        default=None, metadata={"help": "clips in the pool split (overrides --clips)"}
    )
    query_clips: int | None = field(
        default=None, metadata={"help": "clips in the query split (overrides --clips)"}
    )
    eval_clips: int | None = field(
        default=None, metadata={"help": "clips in the eval split (overrides --clips)"}
    )
    height: int = field(default=64, metadata={"help": "frame height, multiple of 16"})
    width: int = field(default=64, metadata={"help": "frame width, multiple of 16"})
    frames: int = field(default=17, metadata={"help": "frames per clip, 4n+1"})
    fps: float = field(default=8.0, metadata={"help": "frame rate of the written clips"})
    variable_length: bool = field(
        default=False, metadata={"help": "vary clip length around --frames (4n+1 values)"}
    )
    pan_fraction: float = field(
        default=0.15, metadata={"help": "share of base/pool clips with an added camera pan"}
    )
    motions: list[str] = field(
        default_factory=lambda: list(MOTIONS),
        metadata={"help": "comma-separated subset of motions (default: all ten)"},
    )
    object_size: float = field(
        default=1.0,
        metadata={"help": "object size relative to the default (radius 0.14–0.18 of the frame height)"},
    )
    direction_words: bool = field(
        default=False,
        metadata={"help": "captions name which way the object travels or spins and the camera pans"},
    )

    def split_size(self, split: str) -> int:
        value = getattr(self, f"{split}_clips")
        return self.clips if value is None else value


# ----------------------------------------------------------------------------------------------
# Sampling clip specifications
# ----------------------------------------------------------------------------------------------


def _split_seed(seed: int, split: str) -> int:
    return int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1)[0])


def sample_specs(config: WorldConfig, split: str) -> list[ClipSpec]:
    """Deterministic clip specifications for one split."""
    rng = np.random.default_rng(_split_seed(config.seed, split))
    n = config.split_size(split)
    motions = list(config.motions)
    reserved = held_out_pairs()
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    if split in ("query", "eval"):
        pairs = sorted(reserved)
        # balanced motions: cycle through them in a shuffled order
        order = [motions[i % len(motions)] for i in range(n)]
        rng.shuffle(order)
    else:
        pairs = [p for p in pairs if p not in reserved]
        weights = np.array([BASE_RARE.get(m, 1.0) if split == "base" else 1.0 for m in motions])
        order = list(rng.choice(motions, size=n, p=weights / weights.sum()))
    specs = []
    for i in range(n):
        motion = str(order[i])
        colour, shape = pairs[rng.integers(len(pairs))]
        background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
        panned = motion == "camera_pan" or (split in ("base", "pool") and rng.random() < config.pan_fraction)
        frames = config.frames
        if config.variable_length:
            frames = int(
                rng.choice([f for f in (frames - 8, frames - 4, frames, frames + 4, frames + 8) if f >= 5])
            )
        seed = int(rng.integers(2**31))
        direction = STILL
        if config.direction_words and (panned or motion in DIRECTED):
            sign = draw_size_and_direction(np.random.default_rng(seed))[1]  # as trajectory() draws it
            direction = "right" if sign > 0 else "left"
        specs.append(
            ClipSpec(
                motion,
                colour,
                shape,
                background,
                "camera_pan" if panned else STILL,
                frames,
                seed,
                config.object_size,
                direction,
            )
        )
    return specs
