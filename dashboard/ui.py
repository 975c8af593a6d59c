"""Shared widgets and cached loaders for the dashboard pages.

Every page imports this module instead of pasting its own sidebar, run picker or error handling.
State lives in run folders; ``st.session_state`` holds only UI choices, so a reload or a second
tab loses nothing. Loaders are keyed on the file's modification time, so a page sees a job's new
results on its next rerun without a stale cache and without re-reading unchanged files.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from fascore.data.manifest import manifest_path, read_raw
from fascore.data.uploads import MAX_BYTES
from fascore.data.uploads import share_mode as _share_mode
from fascore.devices import devices as list_devices
from fascore.errors import FascoreError
from fascore.jobs import control as jobs
from fascore.store.runs import ACTIVE_STATES, Run, RunStore

#: The files a run-table row is read from (and checked, ``Run.problem``): a row is read again
#: only when one of them changes.
SUMMARY_FILES = ("config", "final", "status", "alignment", "shots", "metrics")
log = logging.getLogger("fascore.dashboard")

F = TypeVar("F", bound=Callable[..., Any])

BADGES = {
    "queued": "⏳ queued",
    "running": "🔄 running",
    "done": "✅ done",
    "failed": "❌ failed",
    "cancelled": "⛔ cancelled",
    "interrupted": "⚠️ interrupted",
    "unreadable": "🚫 unreadable",
}


# -- store and cached loaders --------------------------------------------------------------------
def store() -> RunStore:
    """The run store (``$FASCORE_RUNS_DIR`` or ``checkpoints/``), read afresh on every call."""
    return RunStore()


def _stat(run: Run, key: str) -> tuple[int, int]:
    """(mtime in ns, size) of one of the run's files; (0, 0) while it does not exist."""
    try:
        st_ = run.file(key).stat()
    except FileNotFoundError:
        return 0, 0
    return st_.st_mtime_ns, st_.st_size


def mtime(run: Run, key: str) -> int:
    """Change time (ns) of one of the run's files, 0 while it does not exist: a cache key."""
    return _stat(run, key)[0]


@st.cache_data(max_entries=10_000, show_spinner=False)
def _summary(path: str, stamps: tuple[int, ...]) -> dict:
    return Run(Path(path)).summary()


def _row(run: Run) -> dict:
    """A run's summary, read again only when its config, final metrics or status file changed.

    A queued or running state is checked afresh: a dead process or a stale heartbeat makes it
    "interrupted" without any file changing.
    """
    row = _summary(str(run.path), tuple(mtime(run, k) for k in SUMMARY_FILES))
    return {**row, "state": run.state()} if row["state"] in ACTIVE_STATES else row


def runs_table() -> pd.DataFrame:
    """One summary row per run, newest first (``RunStore.table``); each row cached per run."""
    s = store()
    return s.summary_frame([_row(run) for run in s])


def weights_stamp(run: Run) -> tuple:
    """Identity and change time of the weights a run's models load (its own and its teacher's)."""
    runs = [run]
    teacher = (read_json(run, "config") or {}).get("teacher")
    if teacher:
        runs.append(store().run(teacher))
    return tuple((r.id, *_stat(r, "best")) for r in runs)


@st.cache_data(max_entries=64, show_spinner=False)
def _read_table(path: str, key: str, mtime: int) -> pd.DataFrame | None:
    return Run(Path(path)).read_table(key)


@st.cache_data(max_entries=64, show_spinner=False)
def _read_json(path: str, key: str, mtime: int) -> Any:
    return Run(Path(path)).read_json(key)


@st.cache_data(max_entries=16, show_spinner=False)
def _read_arrays(path: str, key: str, mtime: int) -> dict[str, np.ndarray] | None:
    return Run(Path(path)).read_arrays(key)


def read_table(run: Run, key: str) -> pd.DataFrame | None:
    """``run.read_table(key)``, cached until the file changes (callers must not mutate it)."""
    return _read_table(str(run.path), key, mtime(run, key))


def read_json(run: Run, key: str) -> Any:
    """``run.read_json(key)``, cached until the file changes."""
    return _read_json(str(run.path), key, mtime(run, key))


def read_arrays(run: Run, key: str) -> dict[str, np.ndarray] | None:
    """``run.read_arrays(key)``, cached until the file changes."""
    return _read_arrays(str(run.path), key, mtime(run, key))


def metrics_frame(run: Run) -> pd.DataFrame:
    """The run's metrics.jsonl flattened to columns like ``train.ce``, ``target_dev.auc``."""
    records = run.metrics()
    return pd.json_normalize(records) if records else pd.DataFrame()


# -- widgets -------------------------------------------------------------------------------------
def plain(text: object) -> str:
    """Text from a run file (an experiment name, a status message, an unreadable reason) for
    Streamlit's Markdown, shown as typed: plain words pass unchanged; anything Markdown could
    read as a link, an address, formatting, HTML or a directive (``[a](https://x)``,
    ``www.x.org``, ``a@b.org``, ``**``, ``:red[..]``) becomes an inline code span, whose
    content Markdown never interprets (backslash escapes would not do: GFM still links bare
    addresses). Line breaks become spaces."""
    text = " ".join(str(text).split())
    if _PLAIN.fullmatch(text) and not _WWW.search(text):
        return text
    fence = "`" * (1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    return f"{fence} {text} {fence}"


_PLAIN = re.compile(r"(?:[^\W_]|[ .,=+/-])*")  # letters, digits, separators: nothing Markdown reads
_WWW = re.compile(r"(?i)www\.")  # GFM turns a bare www.x.org into a link


def state_badge(state: str, problem: str = "") -> str:
    """A short emoji + word for a run state (unknown states pass through); an unreadable run
    says why (``RunStore.table``'s ``problem``)."""
    badge = BADGES.get(state, str(state))
    return f"{badge}: {problem}" if state == "unreadable" and problem else badge


def empty_state(message: str) -> None:
    """An info box that says what is missing and what to do next."""
    st.info(message, icon="💡")


LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_UPLOAD_MB = MAX_BYTES // 2**20  # .streamlit/config.toml's server.maxUploadSize: one limit


def server_problem() -> str | None:
    """Why this server must not serve pages, or None: it listens beyond this machine without
    being asked to, or takes larger uploads than the project allows. Streamlit reads
    ``.streamlit/config.toml`` from the working directory only, so a server started elsewhere
    would otherwise listen on every interface with 200 MB uploads."""
    address = st.get_option("server.address")
    how = (
        "start it from the repository root (`cd REPO && streamlit run dashboard/app.py`, which "
        "reads .streamlit/config.toml) or pass --server.address 127.0.0.1 --server.maxUploadSize 10"
    )
    if not address:
        return f"This dashboard was started without its settings and listens on every network interface; {how}."
    if address not in LOOPBACK and not share_mode():
        return (
            f"This dashboard listens on {address}, beyond this machine; {how}. To share it on a "
            "network on purpose, set FASCORE_SHARE=1 (read-only) and pass --server.address."
        )
    if (limit := st.get_option("server.maxUploadSize")) > MAX_UPLOAD_MB:
        return f"This dashboard takes {limit} MB uploads, not {MAX_UPLOAD_MB} MB; {how}."
    return None


def share_mode() -> bool:
    """True when ``FASCORE_SHARE=1``: a read-only dashboard (no launching, no cancelling, no
    uploads decoded); the one test is ``fascore.data.uploads.share_mode``."""
    return _share_mode()


def _run_label(table: pd.DataFrame) -> Callable[[str], str]:
    rows = table.set_index("run") if len(table) else None

    def label(run_id: str) -> str:
        if rows is None or run_id not in rows.index:
            return run_id
        row = rows.loc[run_id]
        return f"{run_id} · {row['method']} · {state_badge(row['state'], row.get('problem', ''))}"

    return label


def run_picker(
    label: str,
    key: str,
    *,
    runs: list[str] | None = None,
    default: str | None = None,
    param: str = "run",
) -> Run | None:
    """A selectbox of run ids (labelled with method and state) synced with query param ``param``.

    ``runs`` restricts the choices (default: every run, newest first). The query parameter makes
    a deep link to the exact run; an unknown id in the link falls back to ``default`` or the
    first run. Returns None (rendering nothing) when there is no run to choose: the caller shows
    an empty state.
    """
    table = runs_table()
    ids = list(runs) if runs is not None else table["run"].tolist()
    if not ids:
        return None
    wanted, synced = st.query_params.get(param), f"_{key}_link"
    if wanted in ids and wanted != st.session_state.get(synced):
        st.session_state[key] = wanted  # the link changed (a new URL, or a page pointed at a run)
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = default if default in ids else ids[0]
    choice = st.selectbox(label, ids, key=key, format_func=_run_label(table))
    st.session_state[synced] = choice
    if choice and st.query_params.get(param) != choice:
        st.query_params[param] = choice
    run = store().run(choice) if choice else None
    if run is not None and (why := run.problem()):
        st.error(
            f"Run {plain(run.id)} is unreadable: {plain(why)}. The other runs are not affected."
        )
        st.stop()  # this page has nothing to show for it; the picker stays usable
    return run


def safe_page(fn: F) -> F:
    """Run a page body so the user never sees a traceback.

    A ``FascoreError`` is the user's to fix: its message is shown as is. Anything else is our
    bug: one line on the page, the traceback in the server log. Streamlit's own control-flow
    exceptions (``st.rerun``, ``st.stop``) derive from BaseException and pass through.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FascoreError as err:
            st.error(str(err))
        except Exception:
            what = fn.__name__.replace("_", " ")
            log.exception("dashboard page %s failed", fn.__name__)
            st.error(f"Something went wrong while showing {what} — details are in the server log.")
        return None

    return wrapper  # type: ignore[return-value]


def sidebar_footer() -> None:
    """Where the runs live and whether this dashboard is read-only (shown on every page)."""
    with st.sidebar:
        st.caption(f"Run store: `{store().root}`")
        if share_mode():
            st.caption("🔒 Read-only share mode: launching and cancelling are hidden.")


# -- jobs ----------------------------------------------------------------------------------------
@st.cache_data(ttl=10, show_spinner=False)
def devices() -> list[dict[str, Any]]:
    """``fascore.devices.devices()`` (GPUs with free memory, then CPU), cached for 10 s."""
    return list_devices()


@st.cache_data(ttl=10, show_spinner=False)
def _known_manifests(root: str) -> list[str]:
    paths = {p for run in RunStore(root) for p in run.config().get("data") or ()}
    return sorted(paths)


def known_manifests() -> list[str]:
    """Every manifest a run in the store was trained on (for the Train page's data picker)."""
    return _known_manifests(str(store().root))


@st.cache_data(max_entries=32, show_spinner=False)
def _domains(path: str, mtime: int) -> list[str]:
    return sorted(read_raw(path)["domain"].unique())


def manifest_domains(path: str) -> list[str]:
    """The capture domains of a manifest (a FascoreError when it cannot be read)."""
    target = manifest_path(path)
    return _domains(str(target), target.stat().st_mtime_ns if target.exists() else 0)


def duration(seconds: float | None) -> str:
    """``1 h 05 min``, ``3 min 05 s`` or ``42 s``; an en dash when unknown."""
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


MMD_HELP = (
    "MMD² after the last evaluated epoch, between the teacher's embeddings of source test images "
    "and the student's of target test images (a teacher run: its own of both), on a fixed, "
    "seeded subset of up to 128 per domain, half live, in eval mode: the Alignment page's "
    "headline view. The loss term `mmd` below is another sample: the last training step's "
    "batch, in training mode, before its weight."
)


def job_panel(run: Run) -> None:
    """One job's state, progress bar, loss terms, current MMD, ETA and images/s."""
    status = run.status()
    state = run.state()
    message = f" · {plain(status['message'])}" if status.get("message") else ""
    st.markdown(f"**{state_badge(state)}** · `{run.id}`{message}")
    progress = status.get("progress") or {}
    if not progress:
        return
    text = f"epoch {progress.get('epoch', '?')}/{progress.get('epochs', '?')}"
    st.progress(min(1.0, float(progress.get("fraction") or 0.0)), text=text)
    cols = st.columns(3)
    live = state == "running"  # a rate or a time left of a job that ended is no news
    cols[0].metric("ETA", duration(progress.get("eta_s")) if live else "–")
    if progress.get("images_per_s"):
        cols[1].metric("images/s", f"{progress['images_per_s']:.0f}" if live else "–",
                       help="training speed while the job runs")  # fmt: skip
    else:  # an older trainer reports optimisation steps only
        rate = progress.get("steps_per_s")
        cols[1].metric("steps/s", f"{rate:.2f}" if rate and live else "–")
    mmd = progress.get("mmd")
    cols[2].metric(
        "MMD² (last evaluation)", f"{mmd:.4f}" if mmd is not None else "–", help=MMD_HELP
    )
    losses = progress.get("loss") or {}
    if losses:
        cfg = run.config()
        weights = ", ".join(f"{k} × {cfg[f'w_{k}']:g}" for k in ("mmd", "pair", "kd")
                            if k in losses and f"w_{k}" in cfg)  # fmt: skip
        st.caption("Loss terms of the last training step, unweighted (mmd: MMD² of that step's "
                   "batch, source training images through the teacher, target shots through the "
                   "student; not the evaluation MMD² above)"
                   + (f"; the total weighs {weights}" if weights else "") + ": " + ", ".join(
            f"{k} {v:.4f}" for k, v in losses.items()
        ))  # fmt: skip


def metrics_chart(run: Run) -> None:
    """Loss terms and dev AUC per epoch, from the run's metrics.jsonl."""
    frame = metrics_frame(run)
    if frame.empty or "epoch" not in frame:
        empty_state("No epoch finished yet: curves appear after the first evaluation.")
        return
    frame = frame.set_index("epoch")
    if len(frame) < 2:  # a line needs two points: show the one evaluation as numbers
        st.dataframe(frame.filter(regex=r"^train\.|_dev\.|^mmd$"))
        return
    left, right = st.columns(2)
    loss = frame.filter(like="train.").rename(columns=lambda c: c.removeprefix("train."))
    left.caption("Training loss terms per epoch")
    left.line_chart(loss, height=220)
    dev = frame.filter(regex=r"_dev\.auc$|^mmd$")
    right.caption("Dev AUC (source / target) and MMD² per epoch")
    right.line_chart(dev, height=220)


def _watch(path: str, state_at_start: str) -> None:
    run = Run(Path(path))
    if run.state() != state_at_start:
        st.rerun()  # started, finished or failed: a full rerun updates buttons and timers
    job_panel(run)
    metrics_chart(run)
    with st.expander("Log (last 30 lines)", expanded=state_at_start == "failed"):
        st.code(run.log_tail(30) or "(empty)", language=None)


def watch_job(run: Run, every_s: float = 2.0) -> None:
    """A job's panel, curves and log tail, refreshed every ``every_s`` while it is active."""
    state = run.state()
    active = state in ("queued", "running")
    st.fragment(_watch, run_every=every_s if active else None)(str(run.path), state)


def job_controls(run: Run) -> None:
    """Cancel (queued or running) or resume (interrupted, failed, cancelled) one job."""
    state = run.state()
    if state in ("queued", "running") and st.button("Cancel this job", key="cancel"):
        with st.spinner("Stopping the job and its workers…"):
            jobs.cancel(run)
        st.rerun()
    if state in jobs.RESUMABLE_STATES and st.button("Resume from the last checkpoint"):
        jobs.resume(run)
        st.rerun()
