"""Evaluation protocols: which domains teach, which domain is the target, how many target shots.

Text forms, read by :func:`parse_protocol` (data sets by name or by their usual letter:
O = oulu-npu, C = casia-fasd, I = replay-attack (Idiap), M = msu-mfsd):

- ``cross:A->B``: train and select on data set A, test on B, zero-shot (the classic
  cross-data-set test, e.g. ``cross:replay-attack->casia-fasd``);
- ``loo:O&C&I->M`` (and ``O&M&I->C``, ``O&C&M->I``, ``I&C&M->O``): leave one data set out,
  train on the other three, test zero-shot on it (the domain-generalisation benchmark);
- ``scarce:A->B@k``: the paper's setting, source data set(s) ``A`` (``A1&A2`` for several) plus
  the labelled videos of ``k`` target *subjects* (``@all``: the whole target train split);
- ``synth:studio->phone@k``: SynthFAS domains (studio, office, kiosk, phone), ``k`` labelled
  target videos per class, as ``RunConfig`` counts shots.

CelebA-Spoof (``celeba-spoof``, or a condition domain such as ``celeba-spoof-outdoor`` from
``import celeba-spoof --where environment=outdoor``) is the natural rich teacher domain:
presets ``scarce:celeba-spoof->O@5`` (and ``->C``, ``->I``, ``->M``) and ``cross:celeba-spoof->X``.

:func:`protocol_frame` reads the manifests a protocol needs and returns its five row sets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fascore.data.manifest import manifest_path, read_manifest
from fascore.errors import FascoreError
from fascore.registry import Registry

PUBLIC = {"O": "oulu-npu", "C": "casia-fasd", "I": "replay-attack", "M": "msu-mfsd"}
LETTER = {name: letter for letter, name in PUBLIC.items()}
TEACHER = "celeba-spoof"  # the rich source domain of the teacher presets
LOO = {"msu-mfsd": "O&C&I", "casia-fasd": "O&M&I", "replay-attack": "O&C&M", "oulu-npu": "I&C&M"}
SYNTH = ("studio", "office", "kiosk", "phone")
PRESET_SHOTS = 5  # k of the registered scarce: and synth: presets
FORM = re.compile(r"(cross|loo|scarce|synth):([^>]+)->([^@]+)(?:@(\w+))?")
PARTS = ("source_train", "source_dev", "target_train", "target_dev", "target_test")
FORMS = (
    "cross:A->B (zero-shot, e.g. cross:replay-attack->casia-fasd), "
    "loo:O&C&I->M (or O&M&I->C, O&C&M->I, I&C&M->O), "
    "scarce:A->B@k (k target subjects, or @all) and "
    "synth:studio->phone@k (k target videos per class); data sets: "
    + ", ".join(f"{name} ({letter})" for letter, name in PUBLIC.items())
    + "; SynthFAS domains: "
    + ", ".join(SYNTH)
)


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (what ``RunConfig``'s data fields are set from)."""

    name: str
    source_domains: tuple[str, ...]
    target_domain: str
    shots: int | None  # labelled target shots: None = the whole train split, 0 = zero-shot
    shot_unit: str  # "video" (k presentations per class) or "subject" (all videos of k subjects)
    description: str


PROTOCOLS: Registry[Callable[[], Protocol]] = Registry("protocol")


def cross(source: tuple[str, ...], target: str) -> Protocol:
    name = f"cross:{'&'.join(source)}->{target}"
    text = f"train on {' + '.join(source)}, test on {target} without any of its labels"
    return Protocol(name, source, target, 0, "video", text)


def loo(target: str) -> Protocol:
    source = tuple(PUBLIC[letter] for letter in LOO[target].split("&"))
    text = f"train on {', '.join(source)}; test on the left-out {target}, zero-shot"
    return Protocol(f"loo:{LOO[target]}->{LETTER[target]}", source, target, 0, "video", text)


def scarce(source: tuple[str, ...], target: str, shots: int | None) -> Protocol:
    k = "all" if shots is None else shots
    text = f"teacher on {' + '.join(source)}; student also sees {k} labelled {target} subject(s)"
    name = f"scarce:{'&'.join(source)}->{target}@{k}"
    return Protocol(name, source, target, shots, "subject", text)


def synth(source: tuple[str, ...], target: str, shots: int | None) -> Protocol:
    k = "all" if shots is None else shots
    text = f"SynthFAS: {' + '.join(source)} to {target}, {k} labelled target video(s) per class"
    name = f"synth:{'&'.join(source)}->{target}@{k}"
    return Protocol(name, source, target, shots, "video", text)


def _register() -> None:
    for target in LOO:
        PROTOCOLS.register(loo(target).name)(functools.partial(loo, target))
    for family, domains in ((cross, tuple(PUBLIC.values())), (scarce, tuple(PUBLIC.values()))):
        for a in domains:
            for b in (d for d in domains if d != a):
                args = ((a,), b) if family is cross else ((a,), b, PRESET_SHOTS)
                PROTOCOLS.register(family(*args).name)(functools.partial(family, *args))
    for b in PUBLIC.values():
        for family, args in ((cross, ((TEACHER,), b)), (scarce, ((TEACHER,), b, PRESET_SHOTS))):
            PROTOCOLS.register(family(*args).name)(functools.partial(family, *args))
    for a in SYNTH:
        for b in (d for d in SYNTH if d != a):
            args = ((a,), b, PRESET_SHOTS)
            PROTOCOLS.register(synth(*args).name)(functools.partial(synth, *args))


_register()


def _domain(token: str, family: str, text: str) -> str:
    """A domain name from a name or (public data sets) a letter; a readable error otherwise."""
    token = token.strip()
    if family == "synth":
        if token.lower() in SYNTH:
            return token.lower()
        raise FascoreError(f"unknown SynthFAS domain {token!r} in {text!r}; use {', '.join(SYNTH)}")
    name = PUBLIC.get(token.upper(), token.lower())
    if name in LETTER or name == TEACHER or name.startswith(f"{TEACHER}-"):
        return name
    known = ", ".join(f"{n} ({letter})" for letter, n in PUBLIC.items()) + f", {TEACHER}"
    raise FascoreError(f"unknown data set {token!r} in {text!r}; use {known}")


def _shots(k: str | None, family: str, text: str) -> int | None:
    """``@k`` (an integer >= 0 or ``all``): required for scarce/synth, refused for cross/loo."""
    if family in ("cross", "loo"):
        if k is not None:
            raise FascoreError(f"{family}: protocols are zero-shot; for k shots use scarce:A->B@k")
        return 0
    if k is None:
        raise FascoreError(f"{text!r} needs its shots: add @k (e.g. @5) or @all")
    if k.lower() == "all":
        return None
    if not k.isdigit():
        raise FascoreError(f"shots must be a whole number or 'all', not {k!r} in {text!r}")
    return int(k)


def parse_protocol(text: str) -> Protocol:
    """A :class:`Protocol` from its text form (a registered preset or any valid instance)."""
    text = text.strip()
    if text in PROTOCOLS:
        return PROTOCOLS.get(text)()
    match = FORM.fullmatch(text)
    if not match:
        raise FascoreError(f"unknown protocol {text!r}; valid forms: {FORMS}")
    family, sources, target, k = match.groups()
    source = tuple(_domain(t, family, text) for t in sources.split("&"))
    tgt, shots = _domain(target, family, text), _shots(k, family, text)
    if tgt in source or len(set(source)) != len(source):
        raise FascoreError(f"{text!r}: the target must differ from each source, listed once each")
    if family == "loo":
        if set(source) != set(PUBLIC.values()) - {tgt}:
            presets = ", ".join(f"loo:{s}->{LETTER[t]}" for t, s in LOO.items())
            raise FascoreError(f"{text!r}: loo trains on the three other data sets; use {presets}")
        return loo(tgt)
    if family == "cross":
        return cross(source, tgt)
    return (scarce if family == "scarce" else synth)(source, tgt, shots)


def load_manifests(manifests: list[Path]) -> pd.DataFrame:
    """Several manifests as one table (``abspath`` resolved per manifest, a ``manifest``
    column added); a domain must come from one manifest only and video ids must be unique."""
    if not manifests:
        raise FascoreError("no manifest given; import or generate one first")
    tables, owner = [], {}
    for path in manifests:
        df = read_manifest(path)
        for domain in df["domain"].unique():
            if domain in owner:
                raise FascoreError(
                    f"domain {domain!r} is in both {owner[domain]} and {manifest_path(path)}; "
                    "give each domain's manifest once"
                )
            owner[domain] = manifest_path(path)
        tables.append(df.assign(manifest=str(manifest_path(path))))
    table = pd.concat(tables, ignore_index=True)
    spread = table.groupby("video")["manifest"].nunique()
    shared = spread.index[spread > 1].astype(str).tolist()
    if shared:
        raise FascoreError(
            f"video id(s) {', '.join(shared[:5])} appear in several manifests; video ids "
            "must be unique (importers prefix them with the data set's name)"
        )
    return table


def protocol_frame(manifests: list[Path], protocol: Protocol) -> dict[str, pd.DataFrame]:
    """The protocol's rows from several manifests: ``source_train``, ``source_dev`` (source
    domains), ``target_train`` (all of it, before shot sampling), ``target_dev``, ``target_test``."""
    table = load_manifests([Path(m) for m in manifests])
    found = sorted(table["domain"].unique())
    missing = [d for d in (*protocol.source_domains, protocol.target_domain) if d not in found]
    if missing:
        raise FascoreError(
            f"protocol {protocol.name} needs domain(s) {', '.join(missing)}, but the manifests "
            f"hold {', '.join(found)}; import them (python -m fascore import ...) and add them"
        )
    sides = {
        "source": table[table["domain"].isin(protocol.source_domains)],
        "target": table[table["domain"] == protocol.target_domain],
    }
    parts = {}
    for part in PARTS:
        side, split = part.split("_")
        rows = sides[side]
        parts[part] = rows[rows["split"] == split].reset_index(drop=True)
    _check_parts(parts, protocol)
    return parts


def _check_parts(parts: dict[str, pd.DataFrame], protocol: Protocol) -> None:
    """The parts a protocol cannot do without: source train, target test, target shots."""
    needs = {"source_train": "train", "target_test": "test"}
    if protocol.shots != 0:
        needs["target_train"] = "train"
    for part, split in needs.items():
        if parts[part].empty:
            side = part.split("_")[0]
            domains = protocol.source_domains if side == "source" else (protocol.target_domain,)
            raise FascoreError(
                f"protocol {protocol.name}: {side} domain {' + '.join(domains)} has no rows "
                f"in its {split} split; check its manifest with `python -m fascore validate`"
            )
