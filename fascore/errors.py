"""User-facing errors: one readable message with the next step, never a traceback."""


class FascoreError(Exception):
    """An error caused by the user's input (bad manifest, missing file, wrong checkpoint...).

    The CLI prints ``str(err)`` and exits with status 1; the dashboard shows it with ``st.error``.
    The message should say what is wrong and what to do next.
    """
