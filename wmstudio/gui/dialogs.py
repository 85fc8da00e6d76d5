"""Error dialogs that say what happened and what to do, with the details one click away."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

ADVICE_USER = "Fix the setting or file named in the message and try again."
ADVICE_BUG = "This looks like a bug in Watermark Studio; the details below help to report it."


def advice(user_error: bool, log: str | Path | None = None) -> str:
    """What to do next; the run log is mentioned only when there is one that kept the work."""
    text = ADVICE_USER if user_error else ADVICE_BUG
    if log is not None:
        text += f" The run log keeps everything recorded up to this point: {log}"
    return text


SUMMARY_CHARS = 240
RAW_ERRORS = {"KeyError": "An entry the app expected is missing", "IndexError": "An index is out of range",
              "RuntimeError": "The engine stopped", "ValueError": "A value is not what was expected"}


def word_error(message: str) -> tuple[str, str]:
    """(summary for people, the rest for the details): the first sentence of the first line, at most
    ``SUMMARY_CHARS``; a bare Python exception ("KeyError: 101") is named in words, its text kept."""
    first, _, rest = message.strip().partition("\n")
    kind, sep, text = first.partition(": ")
    if sep and kind in RAW_ERRORS:
        first = f"{RAW_ERRORS[kind]} ({kind} {text[:80]})"
    if len(first) > SUMMARY_CHARS:
        cut = first.rfind(". ", 0, SUMMARY_CHARS)
        cut = cut + 1 if cut > 40 else SUMMARY_CHARS
        rest = first[cut:].strip() + ("\n" + rest if rest else "")
        first = first[:cut].rstrip() + " …"
    return first, rest.strip()


def error_box(parent: QWidget | None, title: str, message: str, details: str = "", user_error: bool = True,
              log: str | Path | None = None) -> QMessageBox:
    """``log``: the run log that holds the work done so far, if one was written."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical if not user_error else QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    summary, more = word_error(message)
    box.setText(summary)
    box.setInformativeText(advice(user_error, log) + (" More in the details." if more else ""))
    full = "\n\n".join(part for part in (message if more else "", details) if part)
    if full:
        box.setDetailedText(full)  # Qt's "Show Details…" expander
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    return box
