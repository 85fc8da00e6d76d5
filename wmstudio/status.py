"""The status words of runs, stages, landscapes, curvature jobs and sweep records: the one place they are written.

``Status`` is a ``str``: a member equals, hashes and formats as its word, so run logs and JSON records hold
exactly the words they always have (old files read as before), and a status read back from a file (a plain
``str``) compares equal to the member. HDF5 attributes take a plain ``str``: write ``str(status)``.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED_EARLY = "stopped_early"  # a stage that ended at its plateau (restore.stop_on_plateau)
    CANCELLED = "cancelled"
    FAILED = "failed"
    QUEUED = "queued"  # sweep records: waiting for a worker
    PENDING = "pending"  # sweep records: waiting for the run it continues

    __str__ = str.__str__  # "finished", not "Status.FINISHED" (also on Python 3.10 and 3.12+)
    __format__ = str.__format__


# a stage whose weights and rows are complete
COMPLETE = (Status.FINISHED, Status.STOPPED_EARLY)
