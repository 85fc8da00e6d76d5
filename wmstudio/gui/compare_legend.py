"""Compare's legend: its entries above the plot in up to ``COLUMNS`` columns, each text shortened in the
middle to its column's width (a long run name used to run under its neighbour and off the plot), the whole
text as the entry's tooltip; the plot's title row grows to the legend's rows."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics

from wmstudio.gui.plot_parts import title_legend

COLUMNS = 4
MAX_ENTRIES = 8  # more than this: no legend above the plot (Compare's run list names the colours)
POINT_SIZE = 8  # the legend's text size (title_legend's default, 8pt)
SAMPLE_PX = 34  # an entry's colour sample and gaps, beside its text


class ColumnLegend:
    def __init__(self, plot: pg.PlotItem, widget: pg.GraphicsView) -> None:
        self.plot, self.widget = plot, widget
        self.items = title_legend(plot, "", fit=False)
        self.items.setColumnCount(COLUMNS)
        plot.legend = None  # entries are added here, not by every curve with a name
        plot.entry_legend = self.items  # what an export lists (export_spec.panel_of)

    def text_px(self, entries: int = COLUMNS) -> int:
        """The width one entry's text may take: the plot's width shared by the legend's columns (as many as
        there are entries, up to ``COLUMNS``)."""
        columns = min(COLUMNS, max(1, entries))
        return max(60, (self.widget.width() - 40) // columns - SAMPLE_PX)

    def set_entries(self, entries: list[tuple[pg.PlotDataItem, str]]) -> None:
        """The legend's entries (sample, text), in order; none: no legend."""
        self.items.clear()
        font = QFont()
        font.setPointSize(POINT_SIZE)
        room = self.text_px(len(entries))
        for sample, text in entries:
            self.items.addItem(sample, QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideMiddle, room))
            self.items.items[-1][1].setToolTip(text)
        rows = max(1, math.ceil(len(entries) / COLUMNS))
        self.plot.layout.setRowFixedHeight(0, max(30, 22 * rows + 6))  # the legend's rows above the data
