"""Which Python model files may be imported: those the user named, or others only on the user's opt-in.

A model's Python file (``model.file``, an export's ``architecture.file``) is code: importing it runs
it. The user names one themselves on the command line (``--model-file``), in their own config file,
or with the app's file picker; such a file is imported as asked. A file named by something the user
did not write is refused unless they opt in (``--trust``, the app's trust box): the metadata of a
checkpoint or a ``wmstudio export-model`` file, the config stored in a run log (``wmstudio verify
--trigger LOG``, ``wmstudio landscape LOG``), or a sweep folder's logs. The refusal
(:class:`wmstudio.errors.UntrustedCodeError`) names the file, the source that named it and the
opt-in. The run log's own ``model.trust_checkpoint_code`` is not an opt-in: it is part of the file
being distrusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wmstudio.errors import UntrustedCodeError

SWEEP_MARKERS = ("sweep.json",)  # a sweep folder holds its expanded sweep here (wmstudio.sweep.records)
SOURCES = ("checkpoint metadata", "export metadata", "run log config", "sweep folder")


@dataclass(frozen=True)
class CodeOrigin:
    """Where a model description the user did not write comes from, and whether they trust its code."""

    source: str  # one of SOURCES
    where: str  # the file holding the description (the checkpoint, the run log)
    trusted: bool  # the user opted in to importing the model file it names
    opt_in: str  # how to opt in, as the refusal says it (e.g. "rerun with --trust")

    def check(self, file: str) -> None:
        """Raise UntrustedCodeError when ``file`` (a Python model file this origin names) may not be imported."""
        if file and not self.trusted:
            raise UntrustedCodeError(file, self.source, self.where, self.opt_in)


def log_origin(log: str | Path, trusted: bool, opt_in: str) -> CodeOrigin:
    """The origin of a run log's config: ``sweep folder`` when the log lies in a wmstudio sweep's folder."""
    p = Path(log).expanduser()
    in_sweep = any((d / name).is_file() for d in (p.parent, p.parent.parent) for name in SWEEP_MARKERS)
    return CodeOrigin("sweep folder" if in_sweep else "run log config", str(log), trusted, opt_in)
