"""Train: launch teacher and student runs as background jobs, watch them, cancel or resume them."""

import streamlit as st

from dashboard import ui
from fascore.commands.train import build_config, parse_shots
from fascore.config import RunConfig, field_spec
from fascore.data.protocols import PROTOCOLS
from fascore.data.synth import DOMAIN_NAMES, PRESETS
from fascore.errors import FascoreError
from fascore.jobs import control as jobs
from fascore.jobs.slurm.options import SlurmOptions, load_options

NEW_TEACHER = "(train a new teacher first)"
SIZES = (32, 48, 64, 96, 128, 160, 224)


def _data(left, right) -> tuple[tuple[str, ...], list[str]] | None:
    """(manifest paths, their domains); None until the user has given usable data.

    A SynthFAS preset names its cache location: the first job generates it if it is missing.
    """
    # lazy: the SynthFAS renderer (cv2) loads once the launch form is opened, not on every view
    from fascore.data.synth.cache import preset_manifest

    kind = left.radio("Data", ["SynthFAS preset", "Manifest"], horizontal=True, key="train-kind")
    if kind == "SynthFAS preset":
        preset = right.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("demo"))
        return (str(preset_manifest(preset)),), list(DOMAIN_NAMES)
    paths = right.multiselect(
        "Manifests (one or several: pick known ones or type paths to manifest.csv or its folder)",
        ui.known_manifests(), accept_new_options=True, key="train-manifest",
    )  # fmt: skip
    if not paths:
        ui.empty_state("Give a manifest: `python -m fascore synth` or `import` writes one.")
        return None
    domains = sorted({d for p in paths for d in ui.manifest_domains(p)})
    return tuple(paths), domains


def _protocol(col, domains: list[str]) -> dict:
    """A registered protocol whose domains the data has, or custom choices (source, target, k)."""
    presets = [PROTOCOLS.get(n)() for n in PROTOCOLS.names()]
    usable = {p.name: p for p in presets if {*p.source_domains, p.target_domain} <= set(domains)}
    choice = col.selectbox("Protocol preset", ["custom", *usable], key="train-protocol")
    if choice == "custom":
        return {"source_domains": domains[:1], "target_domain": domains[-1], "shots": 5,
                "shot_unit": field_spec("shot_unit").default}  # fmt: skip
    proto = usable[choice]
    col.caption(proto.description)
    return {"source_domains": list(proto.source_domains), "target_domain": proto.target_domain,
            "shots": proto.shots, "shot_unit": proto.shot_unit}  # fmt: skip


def _teachers(base: RunConfig) -> tuple[list[str], int]:
    """The teacher picker: a new teacher, then the store's teachers (newest first); the default
    is the newest finished one that can teach ``base`` (``check_teacher``), else a new one."""
    from fascore.train.teacher import check_teacher  # torch, as the form's METHODS

    table = ui.runs_table()
    ok = (table["method"] == "source_only") & ~table["state"].isin(jobs.RESUMABLE_STATES)
    options = [NEW_TEACHER, *table.loc[ok, "run"]]
    for rid in table.loc[ok & (table["state"] == "done"), "run"]:
        try:
            check_teacher(base, ui.store().get(rid))
        except FascoreError:
            continue
        return options, options.index(rid)
    return options, 0


def _default(name: str):
    return field_spec(name).default


def _help(name: str) -> dict:
    return {"help": field_spec(name).help}


def _form(data: tuple[str, ...], domains: list[str], proto: dict) -> dict | None:
    """The launch form; returns its values when submitted."""
    from fascore.train.methods import METHODS  # imports torch: only once the form is opened
    from fascore.train.models import MODELS

    valid = [d for d in proto["source_domains"] if d in domains]
    with st.form("launch"):
        a, b, c = st.columns(3)
        v = {"sources": a.multiselect("Source domains", domains, default=valid)}
        tgt = proto["target_domain"]
        v["target"] = b.selectbox(
            "Target domain", domains, index=domains.index(tgt) if tgt in domains else 0
        )
        v["shots"] = c.number_input(
            "Shots (labelled target videos per class)", 0, 500, proto["shots"] or 0
        )
        v["methods"] = a.multiselect("Methods", METHODS.names(), default=["distill"])
        v["seeds"] = b.multiselect("Seeds", list(range(10)), default=[0])
        base = build_config({"data": data, "source_domains": valid, "target_domain": tgt})
        teachers, default = _teachers(base)
        v["teacher"] = c.selectbox("Teacher (for student methods)", teachers, index=default)
        models = MODELS.names()
        v["model"] = a.selectbox("Backbone", models, index=models.index(_default("model")))
        v["image_size"] = b.select_slider("Image size", SIZES, value=_default("image_size"))
        v["epochs"] = c.number_input("Epochs", 1, 500, _default("epochs"), **_help("epochs"))
        v["w_mmd"] = a.number_input("MMD weight", 0.0, 100.0, _default("w_mmd"), **_help("w_mmd"))
        v["w_pair"] = b.number_input(
            "Pair weight", 0.0, 100.0, _default("w_pair"), **_help("w_pair")
        )
        v["w_kd"] = c.number_input("KD weight", 0.0, 100.0, _default("w_kd"), **_help("w_kd"))
        pair = field_spec("pair_mode")
        v["pair_mode"] = a.radio("Pair term", pair.choices, pair.choices.index(pair.default),
                                 horizontal=True, help=pair.help)  # fmt: skip
        devs = ["auto", *(d["id"] for d in ui.devices())]
        labels = {d["id"]: d["label"] for d in ui.devices()} | {
            "auto": "auto (GPU if any, else CPU)"
        }
        v["device"] = b.selectbox("Device", devs, format_func=labels.get)
        v["experiment"] = c.text_input(
            "Experiment name", placeholder="default: source-to-target-kK"
        )
        v["launcher"] = a.radio("Launcher", jobs.LAUNCHERS.names(), horizontal=True)
        v["slurm"] = _slurm_form()
        v["sweep"] = a.text_input(
            "Sweep over shots (optional)", placeholder="e.g. 1 5 10 all",
            help="a sweep: every method x seed x k, teachers first, then the Experiment page",
        )  # fmt: skip
        return v if st.form_submit_button("Launch", type="primary") else None


def _slurm_form() -> dict:
    """Slurm job options (used with launcher slurm), prefilled from the store's slurm.toml."""
    d = load_options(ui.store().root)
    with st.expander("Slurm options (launcher slurm; defaults from the run store's slurm.toml)"):
        a, b, c = st.columns(3)
        return {"partition": a.text_input("Partition", d.partition or "") or None,
                "gpus": b.number_input("GPUs", 0, 64, d.gpus),
                "cpus": c.number_input("CPUs", 1, 256, d.cpus),
                "mem_gb": a.number_input("Memory (GB, 0: partition default)", 0.0, 4096.0,
                                         float(d.mem_gb or 0)) or None,
                "time": b.text_input("Time limit (minutes or HH:MM:SS)", str(d.time)),
                "sbatch": c.text_input("Extra sbatch options", " ".join(d.sbatch))}  # fmt: skip


def _launch(data: tuple[str, ...], v: dict, shot_unit: str) -> None:
    name = v["experiment"] or f"{'+'.join(v['sources'])}-to-{v['target']}-k{v['shots']}"
    fields = ("model", "image_size", "epochs", "w_mmd", "w_pair", "w_kd", "pair_mode", "device")
    base = build_config({"data": data, "source_domains": v["sources"], "target_domain": v["target"],
                         "shots": int(v["shots"]), "experiment": name, "shot_unit": shot_unit,
                         **{k: v[k] for k in fields}})  # fmt: skip
    if v["sweep"].strip():
        _sweep(base, v)
        return
    teacher = None if v["teacher"] == NEW_TEACHER else v["teacher"]
    slurm = None
    if v["launcher"] == "slurm":
        slurm = SlurmOptions.from_dict(v["slurm"], where="the Slurm options")
    launcher = jobs.make_launcher(v["launcher"], slurm)
    runs = jobs.launch(base, v["methods"], v["seeds"], launcher=launcher, teacher=teacher)
    st.query_params["run"] = runs[-1].id
    st.success(f"Launched {len(runs)} run(s): " + ", ".join(f"`{r.id}`" for r in runs))


def _sweep(base: RunConfig, v: dict) -> None:
    from fascore.jobs import sweep  # lazy: the sweep's results code, only when one is started

    shots = [parse_shots(word) for word in v["sweep"].split()]  # as `fascore sweep --shots`
    folder = sweep.start_sweep(base, v["methods"], v["seeds"], shots, launcher=v["launcher"])
    st.success(f"Sweep `{base.experiment}` started (log: `{folder / 'sweep.log'}`); its table "
               f"fills in on the [Experiment page](experiment?exp={base.experiment}).")  # fmt: skip


def _launcher() -> None:
    cols = st.columns([2, 3, 3])
    data = _data(cols[0], cols[1])
    if data is None:
        return
    paths, domains = data
    proto = _protocol(cols[2], domains)
    values = _form(paths, domains, proto)
    if values:
        try:
            _launch(paths, values, proto["shot_unit"])
        except FascoreError as err:
            st.error(str(err))


@ui.safe_page
def train_page() -> None:
    st.title("Train")
    if ui.share_mode():
        st.caption("🔒 Read-only share mode: launching, cancelling and resuming are hidden.")
    else:
        box = st.expander(
            "Launch new runs", expanded=ui.runs_table().empty, key="train-launch", on_change="rerun"
        )  # on_change: the form (and torch) loads only once the expander is opened
        if box.open:
            with box:
                _launcher()
    st.header("Jobs")
    table = ui.runs_table()
    running = table.loc[table["state"] == "running", "run"].tolist()
    run = ui.run_picker("Run", key="train-run", default=running[0] if running else None)
    if run is None:
        ui.empty_state("No runs yet: launch one above, or build the demo on the Overview page.")
        return
    if not ui.share_mode():
        ui.job_controls(run)
    if where := jobs.LAUNCHERS.get("slurm").describe(run):
        st.caption(where)
    ui.watch_job(run)


train_page()
