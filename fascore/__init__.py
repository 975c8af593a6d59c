"""fascore: face anti-spoofing distillation lab (Li, Wang, He and Rocha, IEEE J-STSP 2020).

Everything the dashboard shows is computed here; the package works without Streamlit.
"""

__version__ = "0.1.0"
