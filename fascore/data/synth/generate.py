"""SynthFAS generation: a spec -> videos rendered in parallel -> PNG frames + manifest + datasheet.

Every image's randomness derives from (seed, domain, subject, video, frame), never from worker
order, so the same spec and seed give byte-identical files with any number of workers.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import multiprocessing.pool
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import cv2
import pandas as pd
from PIL import Image

from fascore.atomic import atomic_write_text
from fascore.data.manifest import (
    MANIFEST_NAME,
    PREPROCESSING_NAME,
    write_manifest,
    write_preprocessing,
)
from fascore.data.synth import datasheet
from fascore.data.synth.domains import DOMAINS
from fascore.data.synth.scene import IMAGES_DIR, SUPERSAMPLE, VideoTask, render_video
from fascore.data.synth.spec import PRESETS, VERSION, SynthSpec, resolve_spec
from fascore.errors import FascoreError

DATA_ENV = "FASCORE_DATA_DIR"
STATE_NAME = "synth.json"  # the cache record: spec, seed, hash, state
LOCK_NAME = "synth.lock"  # serialises two processes generating into one folder


def plan(spec: SynthSpec, seed: int) -> list[VideoTask]:
    """Every video of the data set, in manifest order. Splits are subject-disjoint."""
    tasks = []
    kinds = [("none", spec.live_videos)] + [(a, spec.attack_videos) for a in spec.attacks]
    for domain in spec.domains:
        counts = spec.subjects_of(domain)
        splits = [
            s for s, n in zip(("train", "dev", "test"), counts, strict=True) for _ in range(n)
        ]
        for subj, split in enumerate(splits, start=1):
            n = 0
            for attack, count in kinds:
                for take in range(1, count + 1):
                    session = (subj + n) % spec.sessions
                    n += 1
                    tasks.append(VideoTask(seed, domain, subj, split, attack, take, session,
                                           spec.image_size, spec.frames, spec.sessions))  # fmt: skip
    return tasks


def spec_from_dict(d: dict) -> SynthSpec:
    """Inverse of ``dataclasses.asdict`` (JSON turns tuples into lists)."""
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    d["domain_subjects"] = tuple((n, tuple(c)) for n, c in d.get("domain_subjects", ()))
    return SynthSpec(**d)


def _write_video(task_out: tuple[VideoTask, str]) -> list[dict]:
    """Render one video and write its frames as PNG; the manifest rows (plus mean RGB)."""
    task, out = task_out
    rows = []
    for f, img in enumerate(render_video(task)):
        path = Path(out) / task.path(f)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, compress_level=6)
        r, g, b = img.reshape(-1, 3).mean(axis=0) / 255
        rows.append({
            "path": task.path(f), "label": "live" if task.attack == "none" else "spoof",
            "attack": task.attack, "domain": task.domain, "subject": task.subject_id,
            "video": task.video_id, "split": task.split, "frame": f,
            "session": f"{task.domain}-sess{task.session + 1}", "device": task.device(),
            "dataset": "synthfas", "mean_r": r, "mean_g": g, "mean_b": b,
        })  # fmt: skip
    return rows


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _keep_heap() -> None:
    """Let glibc keep freed image buffers instead of handing them back to the OS.

    Every frame allocates dozens of 0.2-1.5 MB float temporaries; by default glibc serves those
    with mmap or trims them off the heap when freed, so each one is page-faulted in afresh (about
    a third of the rendering time). Changes speed only, never a value; a no-op off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's maximum
    mallopt(m_trim_threshold, 256 << 20)
    mallopt(m_top_pad, 64 << 20)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; nested threads only contend
    _keep_heap()


def _pool(workers: int) -> mp.pool.Pool:
    """Spawned workers (safe beside torch's threads) with one BLAS/OpenMP thread each."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: "1" for k in THREAD_VARS})
    try:
        return mp.get_context("spawn").Pool(workers, initializer=_init_worker)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


Progress = Callable[[int, int], None]


def render_all(
    tasks: list[VideoTask], out: Path, workers: int, progress: Progress | None = None
) -> pd.DataFrame:
    """Render every task into ``out`` (in parallel over videos) -> rows in plan order."""
    jobs = [(t, str(out)) for t in tasks]
    chunks: list[list[dict]] = []

    def collect(results) -> None:
        for rows in results:
            chunks.append(rows)
            if progress:
                progress(len(chunks), len(jobs))

    if workers <= 1:
        _init_worker()
        collect(map(_write_video, jobs))
    else:
        with _pool(workers) as pool:
            collect(pool.imap(_write_video, jobs, chunksize=max(1, len(jobs) // (workers * 16))))
    return pd.DataFrame([row for chunk in chunks for row in chunk])


def generate(
    preset: str | SynthSpec,
    out: str | Path,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Generate SynthFAS into ``out`` (or find it there already) -> the manifest path.

    Cached by (spec hash, seed): a second call returns at once. A folder holding SynthFAS of
    another spec is cleared of the files it wrote and regenerated; a non-empty folder holding
    anything else is refused.
    """
    spec = resolve_spec(preset)
    out = Path(out).expanduser()
    key = {"hash": spec.digest(), "seed": int(seed)}
    if _is_fresh(out, spec, key):
        return out / MANIFEST_NAME
    _refuse_foreign(out)
    with _locked(out):
        if _is_fresh(out, spec, key):  # another process finished it meanwhile
            return out / MANIFEST_NAME
        _clear(out)
        record = {**key, "spec": asdict(spec), "version": VERSION}
        _write_state(out, {**record, "state": "generating"})
        df = render_all(plan(spec, seed), out, workers or os.cpu_count() or 1, progress)
        manifest = write_manifest(df, out)
        write_preprocessing(_record(spec, seed), out)
        datasheet.write(out, df, spec, key)
        _write_state(out, {**record, "state": "done", "images": len(df)})
    return manifest


def _paths(spec: SynthSpec, seed: int) -> list[str]:
    return [t.path(f) for t in plan(spec, seed) for f in range(t.frames)]


def read_state(out: Path) -> dict | None:
    """The cache record of a SynthFAS folder, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((out / STATE_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_state(out: Path, state: dict) -> None:
    atomic_write_text(out / STATE_NAME, json.dumps(state, indent=2, sort_keys=True))


def _is_fresh(out: Path, spec: SynthSpec, key: dict) -> bool:
    """Complete data of this spec and seed: state done, manifest and every image present."""
    state = read_state(out)
    if not state or state.get("state") != "done" or {k: state.get(k) for k in key} != key:
        return False
    return (out / MANIFEST_NAME).exists() and all(
        (out / p).exists() for p in _paths(spec, key["seed"])
    )


def _refuse_foreign(out: Path) -> None:
    """Never write into (or clear) a non-empty folder that SynthFAS did not make."""
    if out.exists() and not out.is_dir():
        raise FascoreError(f"{out} is a file; give --out a folder (new or empty).")
    if out.is_dir() and read_state(out) is None and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise FascoreError(
            f"{out} is not empty and holds no SynthFAS data set (no {STATE_NAME}); "
            "give --out a new or empty folder."
        )


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (a second generator waits, then finds the cache)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_NAME, "a") as handle:
        try:
            import fcntl  # lazy: POSIX only; the ImportError below is Windows

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: no advisory locks; concurrent generation is unsupported
            pass
        yield


def _clear(out: Path) -> None:
    """Remove exactly the files an earlier generation wrote (other files are left alone)."""
    state = read_state(out)
    if state is None:
        return
    try:
        old = _paths(spec_from_dict(state["spec"]), int(state["seed"]))
    except (KeyError, TypeError, ValueError, FascoreError):
        raise FascoreError(
            f"{out} holds SynthFAS data from another version; delete the folder and run again."
        ) from None
    for rel in [*old, MANIFEST_NAME, PREPROCESSING_NAME, datasheet.DATASHEET_NAME, STATE_NAME]:
        (out / rel).unlink(missing_ok=True)
    images = out / IMAGES_DIR
    if images.is_dir():
        for folder in sorted(images.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if not any(images.iterdir()):
            images.rmdir()


def _record(spec: SynthSpec, seed: int) -> dict:
    """The preprocessing record: how the images were made, down to every domain parameter."""
    name = next((k for k, v in PRESETS.items() if v == spec), "custom")
    return {
        "generator": "fascore.synth", "version": VERSION, "preset": name, "seed": seed,
        "spec": asdict(spec), "spec_hash": spec.digest(), "supersample": SUPERSAMPLE,
        "crop": f"rendered frontal face crop, {spec.image_size} px", "frame_rule": "every frame",
        "dropped_frames": 0, "domains": {d: asdict(DOMAINS[d]) for d in spec.domains},
    }  # fmt: skip


def default_data_dir(preset: str = "demo") -> Path:
    """Per-user cache folder of a preset: ``$FASCORE_DATA_DIR/synthfas-<preset>-v<VERSION>``, by
    default under ``$XDG_CACHE_HOME/fascore`` (``~/.cache/fascore``). The generator version is
    part of the name, so a new version generates beside the old data instead of clearing it."""
    root = os.environ.get(DATA_ENV)
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fascore"
    return base / f"synthfas-{preset}-v{VERSION}"


def ensure_synth(preset: str = "demo", seed: int = 0, workers: int | None = None) -> Path:
    """The manifest of ``preset`` in the user's cache, generated there first if needed."""
    resolve_spec(preset)
    folder = default_data_dir(preset if seed == 0 else f"{preset}-seed{seed}")
    return generate(preset, folder, seed=seed, workers=workers)
