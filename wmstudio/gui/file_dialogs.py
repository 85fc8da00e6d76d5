"""The file choosers and exports of the File menu. Each returns the sentence that confirms what
was written and where (shown in the status bar and the Messages tab), or "" when cancelled."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from wmstudio.gui.series import RunSeries

LOG_FILTER = "Run logs (*.h5 *.hdf5);;All files (*)"
CONFIG_FILTER = "Experiment configs (*.toml *.json);;All files (*)"


def choose_logs(parent: QWidget, folder: Path) -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, "Open run logs (HDF5, also ones still being written)", str(folder),
                                            LOG_FILTER)
    return paths


def choose_folder(parent: QWidget, title: str, start: Path) -> str:
    return QFileDialog.getExistingDirectory(parent, title, str(start))


def choose_config(parent: QWidget) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, "Load an experiment config", "", CONFIG_FILTER)
    return path


def save_config(parent: QWidget, cfg: Any) -> str:
    from wmstudio.config import save_config as write

    path, _ = QFileDialog.getSaveFileName(parent, "Save the settings as a TOML config", "experiment.toml",
                                          "TOML configs (*.toml)")
    if not path:
        return ""
    write(cfg, path)
    return f"Saved the settings to {path} (`wmstudio run {Path(path).name}` runs them too)"


def export_csv(parent: QWidget, series: RunSeries, folder: Path) -> str:
    if not series.eval_rows:
        return "No metrics to export yet: run an experiment or open a run log"
    name = f"{Path(series.log_path).stem or 'metrics'}-metrics.csv"
    path, _ = QFileDialog.getSaveFileName(parent, "Export the metrics as CSV", str(folder / name), "CSV (*.csv)")
    if not path:
        return ""
    series.to_csv(path)
    return f"Wrote {len(series.eval_rows)} evaluation rows ({len(series.stages)} stages) to {path}"


def save_log_as(parent: QWidget, log: Path | None) -> str:
    if log is None or not log.exists():
        return "No run log yet"
    path, _ = QFileDialog.getSaveFileName(parent, "Save a copy of the run log", log.name, "Run logs (*.h5)")
    if not path:
        return ""
    shutil.copy2(log, path)
    return f"Copied the run log ({log.stat().st_size / 1e6:.1f} MB) to {path}"


def export_plots(parent: QWidget, plots: dict[str, Any], landscape_view: Any, folder: Path) -> str:
    target = QFileDialog.getExistingDirectory(parent, "Export every plot (PNG and SVG) into", str(folder))
    if not target:
        return ""
    written = write_plots(plots, landscape_view, target)
    return f"Exported {len(written)} files ({', '.join(sorted({p.stem for p in written}))}) to {target}"


def write_plots(plots: dict[str, Any], landscape_view: Any, folder: str | Path) -> list[Path]:
    from wmstudio.gui.export import export_all  # pyqtgraph: loaded with the engine

    written = export_all(plots, folder)
    if landscape_view is not None and landscape_view.has_3d:
        p = Path(folder) / "landscape_3d.png"
        if landscape_view.export_3d(str(p)):
            written.append(p)
    return written


def export_3d(parent: QWidget, landscape_view: Any) -> str:
    size, ok = QInputDialog.getText(parent, "Export 3D view", "Size in pixels (width x height):", text="1600x1200")
    if not ok:
        return ""
    m = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", size)
    if not m:
        raise ValueError(f"size: expected WIDTHxHEIGHT such as 1600x1200, got {size!r}")
    path, _ = QFileDialog.getSaveFileName(parent, "Export the 3D view as PNG", "landscape_3d.png", "PNG images (*.png)")
    if path and landscape_view.export_3d(path, (int(m[1]), int(m[2]))):
        return f"Saved the 3D view ({m[1]}x{m[2]} pixels) to {path}"
    return ""
