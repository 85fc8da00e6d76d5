"""Landscapes written as VTK (.vts grid, .vtp trajectories), OBJ and glTF, read back with meshio and trimesh."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from wmstudio.landscape.mesh_export import export_mesh, surface_height
from wmstudio.landscape.spec import METRICS, LandscapeSpec
from wmstudio.landscape.store import Landscape

meshio = pytest.importorskip("meshio")


def read_xml(path) -> tuple[dict[str, np.ndarray], ET.Element]:
    """The data arrays of a VTK XML file (binary inline, UInt32 header), decoded by hand."""
    root = ET.parse(path).getroot()
    assert root.get("byte_order") == "LittleEndian" and root.get("header_type") == "UInt32"
    types = {"Float64": "<f8", "Float32": "<f4", "Int64": "<i8", "UInt8": "u1"}
    out = {}
    for a in root.iter("DataArray"):
        raw = base64.b64decode(a.text.strip())
        n = int(np.frombuffer(raw[:4], "<u4")[0])
        assert n == len(raw) - 4
        v = np.frombuffer(raw[4:], types[a.get("type")])
        out[a.get("Name")] = v.reshape(-1, int(a.get("NumberOfComponents"))) if a.get("NumberOfComponents") != "1" else v
    return out, root


def surface(kind: str = "plane") -> Landscape:
    xs, ys = np.linspace(-1.0, 2.0, 4), np.linspace(0.5, 1.5, 3)
    gx, gy = np.meshgrid(xs, ys)
    metrics = {m: (k + 1) * gx + 10 * gy ** 2 for k, m in enumerate(METRICS)}
    metrics["test_acc"][2, 3] = np.nan  # a point not computed yet
    done = np.isfinite(metrics["test_acc"])
    traj = {"embed": {"xy": np.array([[0.0, 0.75], [1.0, 1.0], [1.5, 1.25]]), "residual": np.array([0.0, 0.1, 0.2]),
                      "global_step": np.array([0, 10, 20])},
            "finetune": {"xy": np.array([[1.5, 1.25], [2.0, 1.5]]), "residual": np.array([0.2, 0.3]),
                         "global_step": np.array([20, 30])}}
    return Landscape("p", kind, "running", LandscapeSpec(kind=kind), {}, metrics, done, {"x": xs, "y": ys},
                     ["embed"], np.zeros((1, 2)), traj)


def test_vtu_read_by_meshio_holds_every_metric_at_the_grid_coordinates(tmp_path) -> None:
    ls = surface()
    gx, gy = np.meshgrid(ls.axes["x"], ls.axes["y"])
    for height in ("", "trigger_loss"):
        mesh = meshio.read(export_mesh(ls, tmp_path / f"s{height}.vtu", height=height))
        np.testing.assert_array_equal(mesh.points[:, 0], gx.ravel())
        np.testing.assert_array_equal(mesh.points[:, 1], gy.ravel())
        z = ls.metrics[height].ravel() if height else np.zeros(gx.size)
        np.testing.assert_array_equal(mesh.points[:, 2], z)
        for m in METRICS:
            np.testing.assert_array_equal(mesh.point_data[m].ravel(), ls.metrics[m].ravel())  # NaN where not done
        np.testing.assert_array_equal(mesh.point_data["done"].ravel(), ls.done.ravel())
        assert np.isnan(mesh.point_data["test_acc"].ravel()[-1])
        quads = mesh.cells_dict["quad"]
        assert quads.shape == (6, 4) and list(quads[0]) == [0, 1, 5, 4]


def test_vts_structured_grid_holds_the_same_points_and_data(tmp_path) -> None:
    ls = surface()
    arrays, root = read_xml(export_mesh(ls, tmp_path / "s.vts", height="test_loss"))
    assert root.get("type") == "StructuredGrid" and root.find("StructuredGrid").get("WholeExtent") == "0 3 0 2 0 0"
    vtu = meshio.read(export_mesh(ls, tmp_path / "s.vtu", height="test_loss"))
    np.testing.assert_array_equal(arrays["Points"], vtu.points)
    for m in (*METRICS, "done"):
        np.testing.assert_array_equal(arrays[m], vtu.point_data[m].ravel())


def test_vtk_readers_read_the_structured_grid_and_polylines(tmp_path) -> None:
    """With VTK itself (PyPI ``vtk``, where installed): the files ParaView opens."""
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    ls = surface()
    r = vtk.vtkXMLStructuredGridReader()
    r.SetFileName(str(export_mesh(ls, tmp_path / "s.vts", height="test_loss")))
    r.Update()
    grid = r.GetOutput()
    assert grid.GetExtent() == (0, 3, 0, 2, 0, 0) and grid.GetNumberOfPoints() == 12
    np.testing.assert_array_equal(vtk_to_numpy(grid.GetPoints().GetData())[:, 2], ls.metrics["test_loss"].ravel())
    np.testing.assert_array_equal(vtk_to_numpy(grid.GetPointData().GetArray("trigger_acc")),
                                  ls.metrics["trigger_acc"].ravel())
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(export_mesh(ls, tmp_path / "t.vtp")))
    r.Update()
    poly = r.GetOutput()
    assert poly.GetNumberOfLines() == 2 and poly.GetNumberOfPoints() == 5
    np.testing.assert_array_equal(vtk_to_numpy(poly.GetPointData().GetArray("global_step")), [0, 10, 20, 20, 30])


def test_vtp_polylines_follow_the_trajectories_on_the_surface(tmp_path) -> None:
    ls = surface()
    arrays, root = read_xml(export_mesh(ls, tmp_path / "t.vtp", height="test_loss"))
    assert root.find("PolyData/Piece").get("NumberOfLines") == "2"
    pts = arrays["Points"]
    np.testing.assert_array_equal(pts[:, :2], np.concatenate([ls.trajectories[s]["xy"] for s in ("embed", "finetune")]))
    # z: the surface's value, bilinear (exact at grid nodes; test_loss = x + 10 y^2 is linear in x)
    np.testing.assert_allclose(pts[1, 2], 1.0 + 10 * 1.0**2, rtol=1e-12)
    np.testing.assert_allclose(pts[-1, 2], 2.0 + 10 * 1.5**2, rtol=1e-12)  # the grid's corner
    np.testing.assert_array_equal(arrays["global_step"], [0, 10, 20, 20, 30])
    np.testing.assert_array_equal(arrays["residual"], [0.0, 0.1, 0.2, 0.2, 0.3])
    np.testing.assert_array_equal(arrays["offsets"], [3, 5])
    np.testing.assert_array_equal(arrays["connectivity"], np.arange(5))
    np.testing.assert_array_equal(arrays["stage"], [0, 1])
    assert np.isnan(surface_height(ls, "test_loss", np.array([[5.0, 5.0]])))[0]


def test_obj_mesh_has_the_grid_vertices_coloured_and_skips_missing_cells(tmp_path) -> None:
    ls = surface()
    path = export_mesh(ls, tmp_path / "s.obj", metric="test_acc")
    verts = [line.split()[1:] for line in path.read_text().splitlines() if line.startswith("v ")]
    faces = [line for line in path.read_text().splitlines() if line.startswith("f ")]
    v = np.asarray(verts, float)
    assert v.shape == (12, 6) and np.all((v[:, 3:] >= 0) & (v[:, 3:] <= 1))
    gx, _ = np.meshgrid(ls.axes["x"], ls.axes["y"])
    np.testing.assert_allclose(v[:, 0], gx.ravel())
    assert len(faces) == 2 * (3 * 2 - 1)  # 6 cells, the one touching the missing point left out
    mesh = meshio.read(path)
    np.testing.assert_allclose(mesh.points[:, :2], v[:, :2])


def test_glb_mesh_read_by_trimesh_has_the_obj_mesh_upright_with_its_colours(tmp_path) -> None:
    trimesh = pytest.importorskip("trimesh")
    from wmstudio.landscape.gltf_export import srgb_to_linear
    from wmstudio.landscape.surface_mesh import surface_mesh

    ls = surface()
    path = export_mesh(ls, tmp_path / "s.glb", metric="test_acc")
    want = surface_mesh(ls, "test_acc")
    scene = trimesh.load(path, process=False)
    (mesh,) = scene.geometry.values()
    # glTF's up axis is y: (x, y, height) is stored as (x, height, -y)
    x, y, z = want.positions.T
    np.testing.assert_allclose(mesh.vertices, np.stack([x, z, -y], axis=1), rtol=1e-6, atol=1e-6)
    assert len(mesh.faces) == len(want.triangles) == 2 * (3 * 2 - 1)  # the cell with a missing point left out
    np.testing.assert_array_equal(mesh.faces, want.triangles)
    # the colour map's colours, stored linear as glTF wants them (trimesh keeps COLOR_0 beside the material)
    colours = np.asarray(mesh.visual.vertex_attributes["color"], float)
    np.testing.assert_allclose(colours[:, :3], srgb_to_linear(want.colours), rtol=1e-6, atol=1e-7)
    assert scene.metadata["description"].startswith("wmstudio landscape 'p' (plane), metric test_acc")
    head = path.read_bytes()[:4000]
    assert head[:4] == b"glTF" and b"z = (test_acc - " in head  # what the height means travels in the file


def test_a_line_landscape_has_no_mesh(tmp_path) -> None:
    from wmstudio.errors import OutputError

    xs = np.linspace(0.0, 1.0, 5)
    ls = Landscape("l", "line", "finished", LandscapeSpec(kind="line"), {}, {m: xs.copy() for m in METRICS},
                   np.ones(5, bool), {"t": xs}, [], np.zeros((0, 1)), {})
    for suffix in (".obj", ".glb"):
        with pytest.raises(OutputError, match="is a line; a mesh needs a 2D surface"):
            export_mesh(ls, tmp_path / f"l{suffix}", metric="test_loss")
    assert not list(tmp_path.iterdir())


def test_cli_export_by_suffix(demo_copy, tmp_path) -> None:
    from wmstudio.cli import main
    from wmstudio.landscape import read

    assert main(["landscape", str(demo_copy), "--kind", "plane", "--resolution", "4", "--images", "100", "-q"]) == 0
    out = tmp_path / "mesh"
    args = ["--format", "vts", "--format", "vtu", "--format", "vtp", "--format", "obj", "--format", "glb"]
    assert main(["export", str(demo_copy), "-o", str(out), *args, "-m", "trigger_loss", "--height", "trigger_loss"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["plane.vts", "plane.vtu", "plane_trajectories.vtp",
                                                     "plane_trigger_loss.glb", "plane_trigger_loss.obj"]
    ls = read(demo_copy, "plane")
    assert ls.attrs["estimate"].startswith("16 points x ")  # the cost estimated before computing (issue 26.5)
    mesh = meshio.read(out / "plane.vtu")
    np.testing.assert_array_equal(mesh.point_data["test_acc"].ravel(), ls.metrics["test_acc"].ravel())
    np.testing.assert_array_equal(mesh.points[:, 2], ls.metrics["trigger_loss"].ravel())
    traj, _ = read_xml(out / "plane_trajectories.vtp")
    assert len(traj["Points"]) == sum(len(t["xy"]) for t in ls.trajectories.values()) > 0
    assert main(["export", str(demo_copy), "-o", str(out), "--format", "vts"]) == 2  # exists: refused


def test_glb_normals_point_up_on_a_flat_surface_and_a_surface_without_a_cell_is_refused(tmp_path) -> None:
    import json
    import struct

    from wmstudio.errors import OutputError

    ls = surface()
    ls.metrics["test_loss"] = np.zeros_like(ls.metrics["test_loss"])
    path = export_mesh(ls, tmp_path / "flat.glb", metric="test_loss")
    raw = path.read_bytes()
    n_json = struct.unpack("<I", raw[12:16])[0]
    doc = json.loads(raw[20:20 + n_json])
    binary = raw[20 + n_json + 8:]
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["NORMAL"]]
    view = doc["bufferViews"][acc["bufferView"]]
    normals = np.frombuffer(binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]], "<f4").reshape(-1, 3)
    np.testing.assert_allclose(normals, np.tile([0.0, 1.0, 0.0], (len(normals), 1)), atol=1e-6)  # glTF's up
    assert all(v["byteOffset"] % 4 == 0 for v in doc["bufferViews"]) and len(raw) % 4 == 0
    ls.metrics["test_loss"][1, :] = np.nan  # no cell has its four corners
    with pytest.raises(OutputError, match="no complete grid cell of test_loss yet"):
        export_mesh(ls, tmp_path / "none.glb", metric="test_loss")
    assert not (tmp_path / "none.glb").exists()
