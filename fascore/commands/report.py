"""``python -m fascore report RUN [RUN...] --out FILE.html``: the shareable HTML report."""

from __future__ import annotations

import argparse


def _handler(args: argparse.Namespace) -> int:
    # lazy: the report loads plotly, pandas and (for Grad-CAMs) torch, not for `report --help`
    from fascore.share.report import teacher_first, write_report
    from fascore.share.samples import gradcam_panels, pick_samples
    from fascore.store.runs import RunStore

    store = RunStore()
    runs = [store.get(run_id) for run_id in args.runs]
    # the report lists the unreadable runs; Grad-CAMs come from its last run (a student if any)
    readable = teacher_first([r for r in runs if r.problem() is None])
    last = readable[-1] if readable else runs[-1]
    panels = gradcam_panels(last, pick_samples(last.read_table("errors"), args.gradcam))
    out = write_report(
        args.out,
        runs,
        panels=panels,
        n_boot=args.n_boot,
        title=args.title,
        dashboard=args.dashboard,
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); it opens offline in any browser")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML report of runs",
        description="Write one HTML file (plotly.js and images inlined, opens offline) with the "
        "protocol, metrics with intervals, teacher-vs-student deltas, ROC/DET, score "
        "distributions, UMAP views, MMD statistics and Grad-CAMs of the given runs.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids (see `python -m fascore runs`)")
    p.add_argument("--out", required=True, help="the .html file to write")
    p.add_argument("--title", default=None, help="the report's title (default: the run names)")
    p.add_argument("--n-boot", type=int, default=300, help="paired bootstrap resamples for deltas")
    p.add_argument(
        "--gradcam",
        type=int,
        default=0,
        metavar="K",
        help="add Grad-CAMs of K error samples of the last RUN (disagreements first)",
    )
    p.add_argument(
        "--dashboard",
        default=None,
        metavar="URL",
        help="the dashboard's root URL, to print a deep link per run (e.g. http://127.0.0.1:8501)",
    )
    p.set_defaults(func=_handler)
