"""Picking the 3D surface's grid point under the mouse (plain NumPy: no OpenGL needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from wmstudio.gui.surface_pick import pick, project  # noqa: E402


def _perspective(fov_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1 / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])


def test_points_project_to_the_pixels_a_camera_draws_them_at() -> None:
    mvp = _perspective(90, 2.0, 0.1, 100) @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -10], [0, 0, 0, 1.0]])
    pts = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 20.0]])  # the last is behind
    px, depth = project(pts, mvp, 800, 400)
    np.testing.assert_allclose(px[0], [400, 200])  # the centre of the view
    np.testing.assert_allclose(px[1], [600, 200])  # 10 right at distance 10 with aspect 2: half way to the edge
    np.testing.assert_allclose(px[2], [400, 100])  # 5 up at distance 10: half way up (y grows downwards)
    assert np.isnan(depth[3]) and depth[:3] == pytest.approx([10, 10, 10])


def test_the_front_point_under_the_cursor_is_picked_and_none_far_from_all() -> None:
    mvp = _perspective(60, 1.0, 0.1, 100) @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -10], [0, 0, 0, 1.0]])
    pts = np.array([[0.0, 0.0, -5.0], [0.0, 0.0, 2.0], [3.0, 0.0, 0.0]])  # two on the same line of sight
    assert pick(pts, mvp, 500, 500, (250, 250)) == 1  # the nearer one hides the farther
    x3 = project(pts[2:], mvp, 500, 500)[0][0]
    assert pick(pts, mvp, 500, 500, (x3[0] + 3, x3[1] - 2)) == 2
    assert pick(pts, mvp, 500, 500, (10, 10)) == -1 and pick(np.zeros((0, 3)), mvp, 500, 500, (1, 1)) == -1
