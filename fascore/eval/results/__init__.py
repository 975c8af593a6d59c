"""One home for results: every table, paired test, figure and markdown writer of an experiment.

Used by ``python -m fascore sweep`` (``sweep_page``), ``python -m fascore results``
(``doc``), the Experiment page and the HTML report; ``fascore.jobs`` only runs the experiments.

- ``frame``: ``results.csv``'s rows (one per run, regime and threshold rule) from run folders;
- ``stats``: means with 95 % CIs over episodes, paired differences per episode, paired t-tests
  with Holm's correction, the smallest detectable difference, and the verdict words;
- ``tables``: the tables as DataFrames and markdown;
- ``figure``: HTER against the number of shots (a PNG for the docs);
- ``sweep_page``: a sweep folder's ``results.md``; ``doc``: docs/results.md; ``lab``: the lab's
  views (development curves, alignment, Grad-CAM) as markdown.
"""
