"""Publication figures of what the app's plots show, drawn headless with matplotlib (no Qt here).

``spec`` describes a figure as plain data (panels with lines, marks, labels and heat maps),
``style`` the look of an export (light or dark, font, size), ``render`` draws and writes it as PNG,
SVG or PDF. The app's exports (``wmstudio.gui.export``) read their plots into a ``FigureSpec`` and
hand it here, so the files open the same in any SVG or PDF viewer.
"""
