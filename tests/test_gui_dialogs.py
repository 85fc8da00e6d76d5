"""Error dialogs worded for people: a short summary, the rest (and any traceback) under Details."""

from __future__ import annotations

from wmstudio.gui.dialogs import SUMMARY_CHARS, error_box, word_error


def test_a_bare_python_error_is_named_in_words() -> None:
    summary, rest = word_error("KeyError: 101")
    assert summary.startswith("An entry the app expected is missing") and "101" in summary and not rest


def test_a_wall_of_tensor_shapes_becomes_a_summary_and_details() -> None:
    wall = ("size mismatch for conv1.weight: copying a param with shape torch.Size([16, 3, 3, 3]) from checkpoint, "
            "the shape in current model is torch.Size([8, 3, 3, 3]). ") * 6 + "\nand more lines\n" * 3
    summary, rest = word_error(wall)
    assert len(summary) <= SUMMARY_CHARS + 2 and summary.endswith("…")
    assert "and more lines" in rest and len(summary) + len(rest) >= len(wall.strip()) - 20


def test_the_dialog_shows_the_summary_and_keeps_the_rest_under_details(qapp) -> None:  # noqa: ANN001
    box = error_box(None, "The run failed", "RuntimeError: boom\nline two", "Traceback (most recent call last): ...",
                    user_error=False)
    assert box.text() == "The engine stopped (RuntimeError boom)"
    assert "line two" in box.detailedText() and "Traceback" in box.detailedText()
    assert "details" in box.informativeText()
