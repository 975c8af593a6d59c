"""Importers for the public face PAD data sets: Replay-Attack, CASIA-FASD, MSU-MFSD, OULU-NPU
and CelebA-Spoof.

Each reads its data set as distributed (folder layout, file names, protocol and subject lists,
face annotations) and writes face crops, ``manifest.csv`` and ``preprocessing.json`` through
:func:`run_import`. Adding a data set is one module with one ``@IMPORTERS.register`` class.
"""

from fascore.data.importers import casia_fasd, celeba_spoof, msu_mfsd, oulu_npu, replay_attack
from fascore.data.importers.base import IMPORTERS, ImportOptions
from fascore.data.importers.detect import DETECTORS
from fascore.data.importers.driver import ImportResult, run_import

__all__ = [
    "DETECTORS",
    "IMPORTERS",
    "ImportOptions",
    "ImportResult",
    "casia_fasd",
    "celeba_spoof",
    "msu_mfsd",
    "oulu_npu",
    "replay_attack",
    "run_import",
]
