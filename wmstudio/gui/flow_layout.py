"""A row of controls that wraps onto more lines when the window is narrow (Qt's flow layout).

Used for rows of many controls (the landscape's Kind / Resolution / … row), which in a plain
``QHBoxLayout`` set the whole window's minimum width. A label is kept on the line of the control
after it. ``addWidget(w, stretch)`` and ``addStretch`` are accepted as a ``QHBoxLayout``'s are
(stretch has no meaning in a flow).
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLabel, QLayout, QLayoutItem, QSizePolicy, QWidget


class FlowLayout(QLayout):
    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    # ---- QHBoxLayout's calls
    def addWidget(self, widget: QWidget, stretch: int = 0, alignment: object = None) -> None:  # noqa: N802, ARG002
        super().addWidget(widget)

    def addStretch(self, stretch: int = 0) -> None:  # noqa: N802, ARG002
        """Nothing: a flow's lines are left-aligned already."""

    # ---- QLayout
    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        w = sum(g[1] for g in self._groups()) + self._spacing * max(0, len(self._groups()) - 1)
        return QSize(w, self.minimumSize().height())

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for group, width in self._groups():
            size = size.expandedTo(QSize(width, max(i.minimumSize().height() for i in group)))
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _visible(self) -> list[QLayoutItem]:
        return [i for i in self._items if i.widget() is None or not i.widget().isHidden()]

    def _groups(self) -> list[tuple[list[QLayoutItem], int]]:
        """The items in groups that stay on one line (a label and the control after it), with their widths."""
        groups: list[tuple[list[QLayoutItem], int]] = []
        pending: list[QLayoutItem] = []
        for item in self._visible():
            pending.append(item)
            if isinstance(item.widget(), QLabel) and item is not self._visible()[-1]:
                continue
            groups.append((pending, sum(i.sizeHint().width() for i in pending) + self._spacing * (len(pending) - 1)))
            pending = []
        return groups

    def _place(self, rect: QRect, move: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line = area.x(), area.y(), 0
        for group, width in self._groups():
            if x > area.x() and x + width > area.right() + 1:  # does not fit: the next line
                x, y, line = area.x(), y + line + self._spacing, 0
            for item in group:
                hint = item.sizeHint()
                hint.setWidth(min(hint.width(), max(1, area.right() + 1 - x)))  # a long text is cut at the edge
                if move:
                    item.setGeometry(QRect(QPoint(x, y), hint))
                x += hint.width() + self._spacing
                line = max(line, hint.height())
        return y + line - rect.y() + m.bottom()

    def spacing(self) -> int:
        return self._spacing


def shrinkable(widget: QWidget) -> QWidget:
    """``widget`` (a label of changing text) no longer sets its row's minimum width."""
    widget.setSizePolicy(QSizePolicy.Policy.Ignored, widget.sizePolicy().verticalPolicy())
    return widget

