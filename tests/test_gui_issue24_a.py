"""Issue 24, items 1, 7, 8, 9, 11 and 12 (the app's side): tests that failed before their fixes."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("stop", [SystemExit, SystemExit(4), KeyboardInterrupt])
def test_a_job_that_raises_a_base_exception_ends_as_failed(qtbot, stop) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QWidget

    from wmstudio.gui.jobs import JobRunner

    def job(_callback, _control):  # noqa: ANN001, ANN202
        raise stop

    owner = QWidget()
    qtbot.addWidget(owner)
    runner = JobRunner(owner)
    with qtbot.waitSignal(runner.failed, timeout=10_000) as got:
        runner.start("run", job)
    kind, message, _details, user_error = got.args
    assert kind == "run" and not runner.running and not user_error
    assert ("sys.exit(" in message) if stop is not KeyboardInterrupt else "KeyboardInterrupt" in message
    qtbot.wait(100)  # the ended thread's own signal comes after: it says nothing more
    assert not runner.running
