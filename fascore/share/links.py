"""Links into the dashboard: the URL of one view of one run (``?run=...&teacher=...``)."""

from __future__ import annotations

from urllib.parse import urlencode

DASHBOARD_URL = "http://127.0.0.1:8501"  # streamlit's default address under .streamlit/config.toml
DASHBOARD_PAGES = ("overview", "train", "compare", "alignment", "gradcam", "report", "shift")


def deep_link(base: str | None, page: str, **params: object) -> str:
    """The dashboard URL of one view of one run, e.g. ``root/compare?run=...&teacher=...``.

    ``base`` is the dashboard's root URL or the URL of any of its pages as the browser shows it
    (its query and a trailing page name are dropped). Parameters that are None are left out.
    """
    root = (base or DASHBOARD_URL).split("?", 1)[0].rstrip("/")
    head, _, last = root.rpartition("/")
    if last in DASHBOARD_PAGES and head.count("/") >= 2:
        root = head
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{root}/{page}" + (f"?{query}" if query else "")
