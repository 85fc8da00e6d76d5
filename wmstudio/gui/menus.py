"""The main window's menus and tool bar: every action, its shortcut and tip, and what it calls on the window.

Like a Designer form's ``setupUi``: ``make_menus`` builds them on a :class:`~wmstudio.gui.main_window.MainWindow`
and keeps on it the actions the window enables and disables (``run_action``, ``pause_action``, ...).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox

from wmstudio.gui import file_dialogs
from wmstudio.gui.view_tabs import TAB_NAMES

ABOUT = "<b>Watermark Studio</b><br>Embed, attack and restore trigger-set watermarks; see them in the loss landscape."


def make_menus(win: QMainWindow) -> None:
    """``win``: the MainWindow (typed by its base class: the window imports this module, not the reverse)."""
    def act(menu: Any, text: str, slot: Any, key: Any = None, tip: str = "") -> QAction:
        a = QAction(text, win, statusTip=tip or text, toolTip=tip or text, shortcut=QKeySequence(key or ""))
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    keys, mb, say = QKeySequence.StandardKey, win.menuBar(), win.say
    fm = mb.addMenu("&File")
    act(fm, "&Load config…", win.setup.load_config_dialog, "Ctrl+L", "Load an experiment config (TOML/JSON)")
    act(fm, "&Save config…", win.setup.save_config_dialog, keys.Save, "Save the settings as TOML")
    fm.addSeparator()
    win.open_action = act(fm, "&Open run log…", lambda: [win.open_log(p) for p in file_dialogs.choose_logs(
        win, win.ctl.runs_dir)], keys.Open, "Open an HDF5 run log (also one still being written)")
    win.recent_menu = fm.addMenu("Open &recent")
    act(fm, "Save run log &as…", lambda: say(file_dialogs.save_log_as(win, win.ctl.log_path)), "Ctrl+Shift+S",
        "Copy the current run log anywhere")
    act(fm, "Export metrics as &CSV…", lambda: say(file_dialogs.export_csv(win, win.ctl.series, win.ctl.runs_dir)),
        "Ctrl+Shift+C", "Every evaluation row as CSV")
    act(fm, "&Export all plots…", lambda: say(file_dialogs.export_plots(win, win.tabs.all_plots(),
        win.tabs.landscape_view, win.ctl.runs_dir, win.export_style())), "Ctrl+E",
        "Every plot as PNG and SVG (and PDF if chosen) into a folder")
    act(fm, "Export settin&gs…", win.export_settings, None,
        "Light or the app's theme, font, size and formats of exported figures")
    win.export_3d_action = x3d = act(fm, "Export &3D view…", lambda: say(file_dialogs.export_3d(
        win, win.tabs.landscape_view, win.export_style(), win.ctl.runs_dir)), None,
              "The 3D surface as a PNG of a chosen size (once a 2D landscape is shown in 3D)")
    win.export_mesh_action = xm = act(fm, "Export landscape for &ParaView / Blender…", lambda: say(
        file_dialogs.export_mesh(win, win.tabs.landscape_view, win.ctl.runs_dir)), None,
        "The shown landscape as VTK (.vts/.vtu grid with every metric, .vtp trajectories), or an OBJ or glTF mesh")
    fm.aboutToShow.connect(lambda: x3d.setEnabled(win.tabs.ready and win.tabs.landscape_view.has_3d))
    fm.aboutToShow.connect(lambda: xm.setEnabled(win.tabs.ready and win.tabs.landscape_view.ls is not None))
    act(fm, "Set runs &folder…", win.choose_runs_dir, None, "Where new run logs are written")
    fm.addSeparator()
    act(fm, "&Quit", win.close, keys.Quit)
    rm = mb.addMenu("&Run")
    win.run_action = act(rm, "&Run", win.start_run, "Ctrl+R", "Run the selected stages")
    win.pause_action = act(rm, "&Pause / resume", win.run_panel.pause_button.toggle, "Ctrl+P",
                            "Pause after the current batch, or resume")
    win.cancel_action = act(rm, "&Cancel", win.control.cancel, "Ctrl+.", "Cancel after the current batch")
    act(rm, "Preview &trigger set", win.setup.preview_triggers, "Ctrl+T")
    mm = mb.addMenu("&Model")
    win.export_model_action = act(mm, "&Export model…", lambda: win.model_dialog("export"), None,
                                   "Write a stage's model of the shown log as .safetensors or .pt")
    act(mm, "&Verify ownership…", lambda: win.model_dialog("verify"), None, "Check a suspect model's watermark")
    vm = mb.addMenu("&View")
    for i, name in enumerate(TAB_NAMES):
        act(vm, name, lambda _=False, n=name: win.tabs.show_tab(n), f"Ctrl+{i + 1}")
    themes = vm.addMenu("&Theme")
    for name in ("system", "light", "dark"):
        act(themes, name.capitalize(), lambda _=False, t=name: win.switch_theme(t), None, f"{name} theme")
    act(mb.addMenu("&Help"), "&About Watermark Studio", lambda: QMessageBox.about(win, "Watermark Studio", ABOUT))
    tb = win.addToolBar("Run")
    tb.setObjectName("runToolbar")
    for a in (win.run_action, win.pause_action, win.cancel_action, win.open_action):
        tb.addAction(a)
    win.state.fill_menu(win.recent_menu, win.open_log)
