"""The status words (wmstudio.status): members are the words the logs and records always held."""

from __future__ import annotations

import json

import h5py

from wmstudio.status import COMPLETE, Status


def test_a_status_is_its_word_everywhere() -> None:
    words = {"running", "finished", "stopped_early", "cancelled", "failed", "queued", "pending"}
    assert {s.value for s in Status} == words
    for s in Status:
        assert s == s.value and str(s) == s.value and f"{s}" == s.value and f"run {s}" == f"run {s.value}"
        assert hash(s) == hash(s.value) and {s.value: 1}[s] == 1
    assert json.dumps({"status": Status.FAILED}) == '{"status": "failed"}'
    assert "finished" in COMPLETE and "stopped_early" in COMPLETE and "failed" not in COMPLETE


def test_a_status_written_to_hdf5_reads_back_as_the_plain_word(tmp_path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs.update({"status": str(Status.CANCELLED)})
    with h5py.File(tmp_path / "a.h5", "r") as f:
        value = f.attrs["status"]
    assert type(value) is str and value == "cancelled" == Status.CANCELLED
