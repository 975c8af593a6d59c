"""The CLI: one module per verb of ``python -m fascore``."""
