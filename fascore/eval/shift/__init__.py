"""The Shift debugger's logic (no Streamlit): a run's samples on its maps (``data``), the view
state and selections (``selection``), where the shift lives (``slices``) and neighbours
(``neighbours``)."""
