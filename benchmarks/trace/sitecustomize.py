"""Loaded by every Python process whose PYTHONPATH names this folder (benchmarks/ab_study.sh with AB_TRACE set):
at exit it appends the process's own CPU seconds, its start and end and its command line to $GENBOOST_PROCESS_TRACE,
one tab-separated line; benchmarks/job_cpu.py sums them per script. Without that variable it does nothing."""

import atexit
import os
import sys
import time

_TRACE = os.environ.get("GENBOOST_PROCESS_TRACE")
_START = time.time()


def _record() -> None:
    cpu = os.times()
    line = f"{os.getpid()}\t{_START:.3f}\t{time.time():.3f}\t{cpu.user + cpu.system:.3f}\t{' '.join(sys.argv)[:300]}\n"
    with open(_TRACE, "a", encoding="utf-8") as f:  # one short append per process: lines do not interleave
        f.write(line)


if _TRACE:
    atexit.register(_record)
