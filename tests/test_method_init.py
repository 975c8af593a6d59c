"""Each method owns its initialisation (issue 20): with ``init = teacher`` the students start
from the teacher's weights, ``target_only`` (the no-teacher baseline) never does, and a teacher of
another backbone is one readable error."""

from __future__ import annotations

import pytest
import torch

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.train.methods import METHODS
from fascore.train.models import create_model


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))  # fmt: skip


@pytest.mark.parametrize("name", ["finetune", "kd", "mmd", "pair", "distill", "target_only"])
def test_students_start_from_the_teacher_and_target_only_does_not(name):
    torch.manual_seed(0)
    teacher = create_model("alexnet_mini", input_size=32)
    cfg = RunConfig(data=("x",), method=name, image_size=32, init="teacher")
    method = METHODS.get(name)(cfg, create_model("alexnet_mini", input_size=32), teacher)
    assert _same(method.model, teacher) == (name != "target_only")


def test_a_teacher_of_another_backbone_is_one_readable_error():
    teacher = create_model("alexnet_mini", input_size=64)
    cfg = RunConfig(data=("x",), method="distill", image_size=64, init="teacher")
    student = create_model("resnet18", input_size=64)
    with pytest.raises(FascoreError, match="init=teacher needs the same backbone"):
        METHODS.get("distill")(cfg, student, teacher)
