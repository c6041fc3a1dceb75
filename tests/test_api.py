"""Every name the package exports resolves to the object its module defines."""

import importlib

import motive


def test_every_exported_name_resolves():
    for name, module in motive._API.items():
        assert getattr(motive, name) is getattr(importlib.import_module(module), name)
    assert set(dir(motive)) == set(motive.__all__)
