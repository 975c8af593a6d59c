"""The dashboard's entry point: ``streamlit run dashboard/app.py``. Navigation only.

Each view lives in one file of the top-level ``pages/`` folder; all logic lives in ``fascore``.
"""

import importlib
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `import fascore` and `from dashboard import ui` work

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

PAGES = ROOT / "pages"


@st.cache_resource(show_spinner=False)
def _warm_up() -> threading.Thread:
    """Import torch, torchvision and captum once per server, in the background.

    They take 2-3 s to import; without this, the first visit to Grad-CAM (or the launch form)
    pays it. A page that needs them meanwhile simply waits on Python's import lock.
    """
    thread = threading.Thread(
        target=lambda: [importlib.import_module(m) for m in WARM_MODULES], daemon=True
    )
    thread.start()
    return thread


WARM_MODULES = ("fascore.train.loop", "fascore.eval.analysis.gradcam")

st.set_page_config(page_title="fascore · face anti-spoofing lab", page_icon="🛡️", layout="wide")
if refusal := ui.server_problem():  # bound beyond loopback by accident: serve nothing
    st.error(refusal)
    st.stop()
navigation = st.navigation(
    {
        "Runs": [
            st.Page(
                PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True
            ),
            st.Page(PAGES / "train.py", title="Train", icon=":material/rocket_launch:"),
        ],
        "Analysis": [
            st.Page(PAGES / "experiment.py", title="Experiment", icon=":material/table_chart:"),
            st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare:"),
            st.Page(PAGES / "alignment.py", title="Alignment", icon=":material/scatter_plot:"),
            st.Page(
                PAGES / "gradcam.py", title="Grad-CAM", icon=":material/local_fire_department:"
            ),
            st.Page(PAGES / "shift.py", title="Shift debugger", icon=":material/troubleshoot:"),
        ],
        "Share": [st.Page(PAGES / "report.py", title="Report", icon=":material/description:")],
    }
)
ui.sidebar_footer()
_warm_up()
navigation.run()
