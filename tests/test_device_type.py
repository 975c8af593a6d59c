"""One device resolver (issue 20): the trainer's device kind comes from ``devices.py``, which
knows MPS, instead of a second resolver in the loop that took MPS for the CPU."""

from __future__ import annotations

import pytest
import torch

from fascore import devices


@pytest.mark.parametrize(
    ("asked", "cuda", "mps", "kind"),
    [("auto", True, False, "cuda"), ("auto", False, True, "mps"), ("auto", False, False, "cpu"),
     ("cuda:1", True, False, "cuda"), ("mps", False, True, "mps"), ("cpu", True, True, "cpu"),
     ("cuda", False, False, "cpu"), ("mps", False, False, "cpu")],
)  # fmt: skip
def test_device_kind_follows_resolve_device(monkeypatch, asked, cuda, mps, kind):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(devices, "_has_mps", lambda: mps)
    assert devices.device_type(asked) == kind
