"""Links into the dashboard: the URL of one view of one run (``?run=...&teacher=...``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlencode, urlsplit

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


def is_local(url: str | None) -> bool:
    """Whether ``url`` names this machine only (loopback or unspecified address, ``localhost``):
    such a link opens nowhere else, so a shared report must say so."""
    host = (urlsplit(url or "").hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
