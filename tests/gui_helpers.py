"""Shared set-up for the GUI tests: a main window with private settings and runs folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings

from wmstudio.events import Metrics, RunFinished, RunStarted, StageFinished, StageStarted, Step

QUICK = {"embed.epochs": 6, "finetune.epochs": 2, "restore.epochs": 2, "run.threads": 2}


def make_window(qtbot, tmp_path: Path, quick: bool = True):  # noqa: ANN001, ANN201
    from wmstudio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(tmp_path / "runs", settings)
    qtbot.addWidget(win)
    if quick:
        for k, v in QUICK.items():
            win.setup.form.set_value(k, v)
    win.setup.form.revalidate()
    return win


def settle(qtbot, widget) -> None:  # noqa: ANN001
    """Wait, on conditions and not for a fixed time, until ``widget`` is shown on screen and Qt has delivered what
    it queued (layout requests, deferred resizes and repaints, 0 ms timers): the geometry a test then reads is
    the one a user would see."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QWindow

    qtbot.waitUntil(widget.isVisible, timeout=5_000)
    handle = widget if isinstance(widget, QWindow) else widget.window().windowHandle()  # the 3D view is a QWindow
    if handle is not None:
        qtbot.waitUntil(handle.isExposed, timeout=5_000)
    for _ in range(3):  # a delivered event can post another (a resize: a layout request: a repaint)
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()


def open_log(qtbot, win, path, timeout: int = 60_000) -> None:  # noqa: ANN001
    """Opens a run log in the window and waits until it is read and shown (it is read on a worker)."""
    with qtbot.waitSignal(win.log_opened, timeout=timeout):
        win.open_log(path)


def menu_action(win, text: str):  # noqa: ANN001, ANN201
    """The menu-bar action whose text (without its & accelerator) is ``text``."""
    for top in win.menuBar().actions():
        menu = top.menu()
        for a in (menu.actions() if menu is not None else []):
            if a.text().replace("&", "") == text:
                return a
    raise LookupError(text)


def export_plots(win, folder) -> list:  # noqa: ANN001
    """Every plot of the window into ``folder``, as File > Export all plots writes them."""
    from wmstudio.gui.file_dialogs import write_plots

    return write_plots(win.tabs.all_plots(), win.tabs.landscape_view, folder)


def curve_data(curve) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    x, y = curve.getOriginalDataset()  # all the data the item holds (what it shows is clipped to the view)
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))


LAYERS = [f"layer{i}" for i in range(6)]
STAGES = (("embed", 6), ("finetune", 3), ("restore", 3))
STEPS_PER_EPOCH = 20


class FakeJob:
    """Stands in for the engine's JobThread: hands the window a synthetic run, a batch per drain."""

    def __init__(self, events: list, batch: int) -> None:
        self.events, self.batch = events, batch

    def drain(self) -> list:
        out, self.events = self.events[:self.batch], self.events[self.batch:]
        return out

    def isRunning(self) -> bool:  # noqa: N802 - Qt's name
        return bool(self.events)

    def wait(self, _ms: int = 0) -> bool:
        return True


def synthetic_run(seed: int) -> list:
    rng = np.random.default_rng(seed)
    events: list = [RunStarted(log_path="", device="cpu", stages=tuple(s for s, _ in STAGES))]
    step = 0
    for stage, epochs in STAGES:
        events.append(StageStarted(stage=stage, global_step=step, epochs=epochs, steps_per_epoch=STEPS_PER_EPOCH,
                                   layer_names=tuple(LAYERS)))
        for epoch in range(1, epochs + 1):
            for s in range(1, STEPS_PER_EPOCH + 1):
                step += 1
                events.append(Step(stage=stage, epoch=epoch, step=(epoch - 1) * STEPS_PER_EPOCH + s,
                                   total_steps=epochs * STEPS_PER_EPOCH, global_step=step,
                                   loss=float(rng.uniform(0.1, 2)), lr=0.01))
            acc = float(rng.uniform(0, 1))
            events.append(Metrics(stage=stage, epoch=float(epoch), global_step=step,
                                  values={"test_acc": acc, "trigger_acc": acc, "test_loss": 1 - acc,
                                          "trigger_loss": 1 - acc, "drift_l2": float(step), "drift_rel": 0.1,
                                          "drift_cos": 0.9, "p_value": 10.0 ** -float(rng.uniform(0, 60))},
                                  layer_l2=tuple(rng.uniform(0, 1, len(LAYERS))),
                                  layer_cos=tuple(rng.uniform(0, 1, len(LAYERS)))))
        events.append(StageFinished(stage=stage, status="finished"))
    events.append(RunFinished(status="finished", log_path=""))
    return events


def show_synthetic_run(win, seed: int = 1) -> None:  # noqa: ANN001
    """Fill the window's live plots with a synthetic three-stage run, as a finished run leaves them."""
    for e in synthetic_run(seed):
        win.ctl.series.apply(e)
    win.tabs.show_run(win.ctl.series)


def image_array(img) -> np.ndarray:  # noqa: ANN001
    """A QImage as an (height, width, 4) RGBA array."""
    from PySide6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGBA8888)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, :img.width()].copy()


def colour_box(rgba: np.ndarray, colour: str, tol: int = 60) -> tuple[float, float, float, float] | None:
    """(left, right, top, bottom) of the pixels of one colour, as fractions of the image size."""
    from PySide6.QtGui import QColor

    c = QColor(colour)
    near = np.abs(rgba[..., :3].astype(int) - np.array([c.red(), c.green(), c.blue()])).sum(-1) < tol
    ys, xs = np.nonzero(near)
    if not len(xs):
        return None
    h, w = near.shape
    return xs.min() / w, xs.max() / w, ys.min() / h, ys.max() / h


def fake_landscape(kind: str = "plane", name: str = "", n: int = 9, status: str = "finished",
                   done: bool = True):  # noqa: ANN201
    """A small in-memory landscape (no engine): a bowl, three models, an embed path on the map and a
    pretrain path far off it; ``kind='line'`` gives a 1D path with t from -0.1 to 0.6."""
    from wmstudio.landscape.spec import METRICS, LandscapeSpec
    from wmstudio.landscape.store import Landscape

    if kind == "line":
        t = np.linspace(-0.1, 0.6, n)
        metrics = {m: (1 - t if m.endswith("acc") else 1 + 4 * t ** 2) for m in METRICS}
        return Landscape(name or "line-1", "line", status, LandscapeSpec(kind="line"), {}, metrics,
                         np.full(n, done), {"t": t}, ["embed", "finetune", "restore"], np.array([0.0, 0.25, 0.5]))
    x = y = np.linspace(-1.0, 1.0, n)
    bowl = x[None, :] ** 2 + y[:, None] ** 2
    metrics = {m: (1 - bowl / 2 if m.endswith("acc") else bowl + 0.1) for m in METRICS}
    trajectories = {"embed": {"xy": np.array([[-0.5, -0.5], [0.0, 0.0], [0.5, 0.2]])},
                    "pretrain": {"xy": np.array([[40.0, 40.0], [41.0, 39.0]])}}
    return Landscape(name or f"{kind}-{n}", kind, status, LandscapeSpec(kind=kind), {}, metrics,
                     np.full((n, n), done), {"x": x, "y": y}, ["embed", "finetune", "restore"],
                     np.array([[0.0, 0.0], [0.5, 0.2], [-0.3, 0.4]]), trajectories)


def pca_surface_view(qtbot):  # noqa: ANN001, ANN201
    """A LandscapeView in a shown 1280 x 720 box on its 3D tab, showing a synthetic PCA landscape (21 x 21,
    72.3% / 18.1% explained variance), once its surface is built; with that landscape. Needs OpenGL (run under Xvfb)."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from wmstudio.gui.landscape_view import LandscapeView

    box = QWidget()
    lv = LandscapeView()
    QVBoxLayout(box).addWidget(lv)
    qtbot.addWidget(box)
    box.resize(1280, 720)
    box.show()
    qtbot.waitExposed(box)
    lv.tabs.setCurrentIndex(1)
    ls = fake_landscape("pca", n=21)
    ls.attrs.update({"explained_variance": [0.7234, 0.1811], "axis_units": "parameter-space distance"})
    lv.show_landscape(ls)
    qtbot.waitUntil(lambda: lv.has_3d)
    lv.test_host = box  # the box owns the view: keep it alive as long as the view is used
    return lv, ls
