"""The config is the one source of field types, allowed values, defaults and help."""

import argparse
import dataclasses

import pytest

from fascore.commands.train import add_config_flags, config_from_args
from fascore.config import RunConfig, config_fields, field_spec
from fascore.errors import FascoreError


def test_run_ids_are_unchanged():
    """The hash names run folders: moving types and help into annotations must not change it.
    (Pinned again after issue 9 added ``regime`` and made ``select`` default to ``last``, and
    after issue 19 added ``threshold_rule``, ``episode``, ``align_features``, ``mmd_classes``.)"""
    assert RunConfig(data=("a/manifest.csv",), created=0.0).run_id() == (
        "source_only-phone-k5-s0-b9eabcc2"
    )
    cfg = RunConfig(method="distill", teacher="t1", data=("x.csv", "y.csv"), shots=None,
                    pair_mode="relational", steps_per_epoch=3, created=5.0)  # fmt: skip
    assert cfg.run_id() == "distill-phone-kall-s0-5c93221a"


def test_every_field_has_type_default_and_help():
    specs = {s.name: s for s in config_fields()}
    assert list(specs) == [f.name for f in dataclasses.fields(RunConfig)]
    assert all(s.help for s in specs.values())
    assert field_spec("pair_mode").choices == ("contrastive", "relational")
    assert field_spec("select").choices == ("last", "source_dev")
    assert field_spec("regime").choices == ("few-shot", "target-dev")
    assert field_spec("shots").optional and field_spec("shots").kind is int
    assert field_spec("w_mmd").default == 1.0 and field_spec("method").choices is None


@pytest.mark.parametrize("spec", [s for s in config_fields() if s.choices], ids=lambda s: s.name)
def test_check_rejects_values_outside_each_literal(spec):
    good = RunConfig(data=("m.csv",))
    good.check()
    for value in spec.choices:
        good.replace(**{spec.name: value}).check()
    message = f"^{spec.name} must be one of {', '.join(spec.choices)}$"
    with pytest.raises(FascoreError, match=message):
        good.replace(**{spec.name: "bogus"}).check()


def _parse(*argv: str) -> RunConfig:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_cli_flags_read_the_config():
    cfg = _parse("--data", "m.csv", "--pair-mode", "relational", "--shots", "all", "--no-amp")
    assert (cfg.pair_mode, cfg.shots, cfg.amp, cfg.data) == ("relational", None, False, ("m.csv",))
    with pytest.raises(SystemExit):
        _parse("--pair-mode", "bogus")
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    text = parser.format_help()
    assert "{contrastive,relational}" in text and field_spec("w_pair").help in text
