"""The entry tests/test_ddp.py starts: fascore's CLI, with every Dropout set to p=0.

Dropout draws its masks per process, so with it no 2-process run can equal a 1-process run; with
p=0 the comparison is exact up to float rounding. ``DDP_TEST_CRASH_AFTER=N`` makes rank 0 crash
right after evaluating epoch N (before its checkpoint), to test resuming. ``FASCORE_ENTRY`` makes
``--devices`` re-start this module under torchrun, as it re-starts ``fascore`` for users.
"""

import os
import sys

from torch import nn

from fascore import cli
from fascore.train import build, loop

FASCORE_ENTRY = True


def no_dropout(*args, **kw):
    model = real_create(*args, **kw)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


def crash_after(epoch: int):
    real = loop._evaluate

    def evaluate(*args, **kw):
        record = real(*args, **kw)
        if record["epoch"] == epoch:
            raise RuntimeError(f"simulated crash after epoch {epoch}")
        return record

    return evaluate


real_create = build.create_model

if __name__ == "__main__":
    build.create_model = no_dropout
    if os.environ.get("DDP_TEST_CRASH_AFTER"):
        loop._evaluate = crash_after(int(os.environ["DDP_TEST_CRASH_AFTER"]))
    sys.exit(cli.main(sys.argv[1:]))
