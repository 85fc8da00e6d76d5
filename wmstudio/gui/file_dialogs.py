"""The file choosers and exports of the File menu. Each returns the sentence that confirms what
was written and where (shown in the status bar and the Messages tab), or "" when cancelled.

Every file is written through ``wmstudio.safe_files`` (aside, then renamed; never through a link).
Qt's save dialogs ask before a chosen file is replaced; an export of several files into a folder
asks once (``confirm_replace``) when the folder holds any of them already. A file that cannot be
written (a link in the way, a folder without write access) is named in the returned sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from wmstudio.errors import OutputError
from wmstudio.figures.style import ExportStyle
from wmstudio.gui.series import RunSeries
from wmstudio.safe_files import copy_file, existing

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
    from wmstudio.config_io import save_config as write

    path, _ = QFileDialog.getSaveFileName(parent, "Save the settings as a TOML config", "experiment.toml",
                                          "TOML configs (*.toml)")
    if not path:
        return ""
    try:
        write(cfg, path)
    except OutputError as exc:
        return f"Not saved: {exc}"
    return f"Saved the settings to {path} (`wmstudio run {Path(path).name}` runs them too)"


def export_csv(parent: QWidget, series: RunSeries, folder: Path) -> str:
    if not series.eval_rows:
        return "No metrics to export yet: run an experiment or open a run log"
    name = f"{Path(series.log_path).stem or 'metrics'}-metrics.csv"
    path, _ = QFileDialog.getSaveFileName(parent, "Export the metrics as CSV", str(folder / name), "CSV (*.csv)")
    if not path:
        return ""
    try:
        series.to_csv(path, overwrite=True)  # the save dialog asked before replacing
    except OutputError as exc:
        return f"Not exported: {exc}"
    return f"Wrote {len(series.eval_rows)} evaluation rows ({len(series.stages)} stages) to {path}"


def save_log_as(parent: QWidget, log: Path | None) -> str:
    if log is None or not log.exists():
        return "No run log yet"
    path, _ = QFileDialog.getSaveFileName(parent, "Save a copy of the run log", log.name, "Run logs (*.h5)")
    if not path:
        return ""
    try:
        copy_file(log, path, overwrite=True)  # the save dialog asked before replacing
    except OutputError as exc:
        return f"Not copied: {exc}"
    return f"Copied the run log ({log.stat().st_size / 1e6:.1f} MB) to {path}"


def export_plots(parent: QWidget, plots: dict[str, Any], landscape_view: Any, folder: Path,
                 style: ExportStyle | None = None) -> str:
    style = style or ExportStyle()
    formats = " and ".join(f.upper() for f in style.formats)
    target = QFileDialog.getExistingDirectory(parent, f"Export every plot ({formats}) into", str(folder))
    if not target:
        return ""
    if not confirm_replace(parent, plot_files(plots, landscape_view, target, style)):
        return ""
    try:
        written = write_plots(plots, landscape_view, target, overwrite=True, style=style)
    except OutputError as exc:
        return f"Not exported: {exc}"
    return f"Exported {len(written)} files ({', '.join(sorted({p.stem for p in written}))}) to {target}"


def plot_files(plots: dict[str, Any], landscape_view: Any, folder: str | Path,
               style: ExportStyle | None = None) -> list[Path]:
    """The files ``write_plots`` writes into ``folder``."""
    formats = (style or ExportStyle()).formats
    files = [Path(folder) / f"{name}.{fmt}" for name in plots for fmt in formats]
    if landscape_view is not None and landscape_view.has_3d:
        files.append(Path(folder) / "landscape_3d.png")
    return files


def confirm_replace(parent: QWidget, files: list[Path]) -> bool:
    """True when none of ``files`` exists, or the user agrees to replace those that do."""
    there = existing(files)
    if not there:
        return True
    names = ", ".join(p.name for p in there[:4]) + (f" and {len(there) - 4} more" if len(there) > 4 else "")
    answer = QMessageBox.question(parent, "Replace files?", f"{there[0].parent} already holds {len(there)} of the "
                                  f"files this export writes ({names}). Replace them?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def write_plots(plots: dict[str, Any], landscape_view: Any, folder: str | Path, overwrite: bool = False,
                style: ExportStyle | None = None) -> list[Path]:
    """Every plot in the style's formats (PNG and SVG unless set otherwise) into ``folder`` (files there
    already are refused unless ``overwrite``); the 3D view as a PNG as wide as the others (the style's
    width at its resolution), 4:3."""
    from wmstudio.gui.export import export_all  # pyqtgraph: loaded with the engine
    from wmstudio.safe_files import check_targets

    style = style or ExportStyle()
    check_targets(plot_files(plots, landscape_view, folder, style), overwrite)  # all of them, before the first is drawn
    written = export_all(plots, folder, style, overwrite=overwrite)
    if landscape_view is not None and landscape_view.has_3d:
        p = Path(folder) / "landscape_3d.png"
        size = (round(style.width_in * style.dpi), round(0.75 * style.width_in * style.dpi))  # the others' width
        if landscape_view.export_3d(str(p), size, overwrite=overwrite, style=style):
            written.append(p)
    return written


def export_3d(parent: QWidget, landscape_view: Any, style: ExportStyle | None = None, folder: Path | None = None) -> str:
    """Asks for the picture's size (again, saying why, until it is one ``label_layout.export_size`` takes)
    and a file (offered in ``folder``, the runs folder, as the other exports), then writes the 3D view there
    in the export style (light unless ``style`` says otherwise)."""
    from wmstudio.errors import ConfigError
    from wmstudio.gui.label_layout import SIZE_RULE, export_size

    ask = f"Size in pixels (width x height), {SIZE_RULE}:"
    prompt, text = ask, "1600x1200"
    while True:
        text, ok = QInputDialog.getText(parent, "Export 3D view", prompt, text=text)
        if not ok:
            return ""
        try:
            w, h = export_size(text)
            break
        except ConfigError as exc:
            prompt = f"{exc}\n\n{ask}"
    start = str(Path(folder) / "landscape_3d.png") if folder is not None else "landscape_3d.png"
    path, _ = QFileDialog.getSaveFileName(parent, "Export the 3D view as PNG", start, "PNG images (*.png)")
    try:  # the save dialog asked before replacing
        saved = bool(path) and landscape_view.export_3d(path, (w, h), overwrite=True, style=style)
    except OutputError as exc:
        return f"Not saved: {exc}"
    if saved:
        return f"Saved the 3D view ({w}x{h} pixels) to {path}"
    return ""


MESH_FILTERS = {"VTK structured grid, every metric as point data (*.vts)": ".vts",
                "VTK unstructured grid, for meshio (*.vtu)": ".vtu",
                "the trajectories as VTK polylines (*.vtp)": ".vtp",
                "OBJ mesh of the shown metric, colour map baked in, height scaled to the grid (*.obj)": ".obj",
                "glTF mesh of the shown metric, colour map baked in, height scaled to the grid (*.glb)": ".glb"}


def export_mesh(parent: QWidget, landscape_view: Any, folder: Path | None = None) -> str:
    """The shown landscape as a file for ParaView, Blender and the like (``wmstudio.landscape.mesh_export``, as
    ``wmstudio export LOG --format vts|vtu|vtp|obj|glb``): the grid raised by the shown metric where the landscape
    is 2D; an OBJ or glTF mesh of the shown metric in its colour map. The save dialog asks before replacing a file."""
    from wmstudio.landscape.mesh_export import export_mesh as write_mesh

    ls = getattr(landscape_view, "ls", None)
    if ls is None:
        return "Not saved: no landscape is shown (compute one, or pick a stored one)"
    start = str(Path(folder) / f"{ls.name}.vts") if folder is not None else f"{ls.name}.vts"
    path, chosen = QFileDialog.getSaveFileName(parent, "Export the landscape for ParaView, Blender and the like",
                                               start, ";;".join(MESH_FILTERS))
    if not path:
        return ""
    target = Path(path)
    if target.suffix not in MESH_FILTERS.values():
        target = target.with_name(target.name + MESH_FILTERS.get(chosen, ".vts"))
    metric, log_scale = landscape_view.controls.metric, landscape_view.controls.log_scale_on
    try:
        written = write_mesh(ls, target, metric=metric, height=metric if ls.is_2d else "", log_scale=log_scale,
                             overwrite=True)
    except OutputError as exc:
        return f"Not saved: {exc}"
    scaled = (" (its height is the metric scaled so its range spans the grid's larger side; the factor is in the "
              "file)") if written.suffix in (".obj", ".glb") else ""
    return f"Saved the landscape {ls.name} to {written}{scaled}"
