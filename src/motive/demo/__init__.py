"""The demo: Motive's whole method on a synthetic motion world whose ground truth we know.

Library code never imports from here. ``world`` renders the clips, ``pretrain`` trains the tiny
Wan model on them, ``stages`` and ``measures`` run and score each step, ``report`` and ``plots``
draw the results, and ``run.run_demo`` is the recipe (docs/demo.md).
"""

from motive.demo.config import DemoConfig
from motive.demo.run import run_demo

__all__ = ["DemoConfig", "run_demo"]
