"""Stored landscapes as files other programs render: VTK (ParaView, VisIt, PyVista), OBJ and glTF meshes.

- ``.vts`` (VTK XML structured grid): the landscape's grid, points at (x, y, z) with x, y the two
  direction coefficients (a line landscape: t and 0) and z the ``height`` metric's value, or 0 for a
  flat grid; every metric and ``done`` as point data (NaN where a partial surface has no value).
- ``.vtu`` (VTK XML unstructured grid): the same points and point data as quadrilaterals, for readers
  that have no structured grids (meshio).
- ``.vtp`` (VTK XML polydata): the projected trajectories, one polyline per stage, z the height
  metric interpolated (bilinearly) on the surface at each point, or 0; point data ``global_step``
  and ``residual`` (the distance off the plane), cell data ``stage`` (the index in the ``stages``
  field data's order).
- ``.obj``: the surface of one metric as triangles (cells with a missing value left out), z the metric
  scaled so that its range spans the grid's larger side (the factor is in the file's header), and
  each vertex's colour from the colour map baked in (``v x y z r g b``, read by MeshLab, Blender,
  Open3D, trimesh).
- ``.glb`` (binary glTF 2.0, ``wmstudio.landscape.gltf_export``): the same mesh and colours for
  Blender, three.js, Windows' 3D viewer and web pages.

The VTK files are written with numpy alone, data arrays inline as base64 of raw little-endian
bytes with a UInt32 length header (VTK's "binary" format), so values are exact.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from wmstudio.errors import OutputError
from wmstudio.landscape.spec import METRICS
from wmstudio.landscape.store import Landscape
from wmstudio.landscape.surface_mesh import grid, surface_mesh, values
from wmstudio.safe_files import atomic_output

SUFFIXES = (".vts", ".vtu", ".vtp", ".obj", ".glb")
_VTK_TYPES = {np.dtype("float64"): "Float64", np.dtype("float32"): "Float32", np.dtype("int64"): "Int64",
              np.dtype("uint8"): "UInt8"}


def _array(name: str, values: np.ndarray, components: int = 1) -> str:
    v = np.ascontiguousarray(values)
    v = v.astype(v.dtype.newbyteorder("<"), copy=False)
    raw = v.tobytes()
    data = base64.b64encode(np.uint32(len(raw)).tobytes() + raw).decode("ascii")
    return (f'<DataArray type="{_VTK_TYPES[v.dtype.newbyteorder("=")]}" Name="{name}" '
            f'NumberOfComponents="{components}" format="binary">{data}</DataArray>')


def _write(path: Path, text: str, overwrite: bool) -> None:
    with atomic_output(path, overwrite) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _check_height(height: str) -> None:
    if height and height not in METRICS:
        raise OutputError(f"height: expected one of {', '.join(METRICS)} or '' (flat), got {height!r}")


def write_vts(ls: Landscape, path: str | Path, height: str = "", overwrite: bool = False) -> Path:
    _check_height(height)
    xs, ys = grid(ls)
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx): x varies fastest, as VTK orders structured points
    gz = values(ls, height) if height else np.zeros_like(gx)
    points = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], 1)
    arrays = [_array(m, values(ls, m).ravel()) for m in METRICS]
    done = np.asarray(ls.done).reshape(-1).astype(np.uint8)
    arrays.append(_array("done", done))
    extent = f"0 {len(xs) - 1} 0 {len(ys) - 1} 0 0"
    text = (f'<?xml version="1.0"?>\n<VTKFile type="StructuredGrid" version="1.0" byte_order="LittleEndian" '
            f'header_type="UInt32">\n<StructuredGrid WholeExtent="{extent}">\n<Piece Extent="{extent}">\n'
            f'<PointData Scalars="{height or METRICS[0]}">\n' + "\n".join(arrays) + "\n</PointData>\n"
            f"<Points>\n{_array('Points', points, 3)}\n</Points>\n</Piece>\n</StructuredGrid>\n</VTKFile>\n")
    _write(Path(path), text, overwrite)
    return Path(path)


def write_vtu(ls: Landscape, path: str | Path, height: str = "", overwrite: bool = False) -> Path:
    """The same grid, points and point data as ``write_vts``, as an unstructured grid of quadrilaterals
    (a line landscape: line segments), for readers without structured grids (meshio)."""
    _check_height(height)
    xs, ys = grid(ls)
    gx, gy = np.meshgrid(xs, ys)
    gz = values(ls, height) if height else np.zeros_like(gx)
    points = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], 1)
    nx, ny = len(xs), len(ys)
    if ny > 1:
        j, i = np.meshgrid(np.arange(ny - 1), np.arange(nx - 1), indexing="ij")
        a = (j * nx + i).ravel()
        cells = np.stack([a, a + 1, a + nx + 1, a + nx], 1)
        vtk_type = 9  # VTK_QUAD
    else:
        a = np.arange(nx - 1)
        cells = np.stack([a, a + 1], 1)
        vtk_type = 3  # VTK_LINE
    arrays = [_array(m, values(ls, m).ravel()) for m in METRICS]
    arrays.append(_array("done", np.asarray(ls.done).reshape(-1).astype(np.uint8)))
    k = cells.shape[1]
    text = (f'<?xml version="1.0"?>\n<VTKFile type="UnstructuredGrid" version="1.0" byte_order="LittleEndian" '
            f'header_type="UInt32">\n<UnstructuredGrid>\n<Piece NumberOfPoints="{len(points)}" '
            f'NumberOfCells="{len(cells)}">\n<PointData>\n' + "\n".join(arrays) + "\n</PointData>\n"
            f"<Points>\n{_array('Points', points, 3)}\n</Points>\n<Cells>\n"
            + _array("connectivity", cells.reshape(-1).astype(np.int64)) + "\n"
            + _array("offsets", (np.arange(1, len(cells) + 1) * k).astype(np.int64)) + "\n"
            + _array("types", np.full(len(cells), vtk_type, np.uint8)) + "\n</Cells>\n</Piece>\n"
            "</UnstructuredGrid>\n</VTKFile>\n")
    _write(Path(path), text, overwrite)
    return Path(path)


def surface_height(ls: Landscape, metric: str, xy: np.ndarray) -> np.ndarray:
    """The metric interpolated bilinearly at points (n, 2) of a 2D landscape (NaN outside the grid)."""
    xs, ys = grid(ls)
    v = values(ls, metric)
    out = np.full(len(xy), np.nan)
    for k, (x, y) in enumerate(np.asarray(xy, float)):
        if not (xs[0] <= x <= xs[-1] and ys[0] <= y <= ys[-1]):
            continue
        i = min(max(int(np.searchsorted(xs, x)) - 1, 0), len(xs) - 2)
        j = min(max(int(np.searchsorted(ys, y)) - 1, 0), len(ys) - 2)
        fx = (x - xs[i]) / (xs[i + 1] - xs[i])
        fy = (y - ys[j]) / (ys[j + 1] - ys[j])
        out[k] = ((1 - fx) * (1 - fy) * v[j, i] + fx * (1 - fy) * v[j, i + 1]
                  + (1 - fx) * fy * v[j + 1, i] + fx * fy * v[j + 1, i + 1])
    return out


def write_vtp(ls: Landscape, path: str | Path, height: str = "", overwrite: bool = False) -> Path:
    """The trajectories as polylines (an empty polydata where the landscape has none)."""
    _check_height(height)
    stages = [s for s, t in ls.trajectories.items() if len(t.get("xy", ())) > 0]
    pts, steps, residual, offsets, cell_stage = [], [], [], [], []
    for idx, stage in enumerate(stages):
        t = ls.trajectories[stage]
        xy = np.asarray(t["xy"], float).reshape(-1, 2)
        z = surface_height(ls, height, xy) if height and ls.is_2d else np.zeros(len(xy))
        pts.append(np.column_stack([xy, z]))
        steps.append(np.asarray(t.get("global_step", np.arange(len(xy))), np.int64)[:len(xy)])
        residual.append(np.asarray(t.get("residual", np.zeros(len(xy))), float)[:len(xy)])
        offsets.append(sum(len(p) for p in pts))
        cell_stage.append(idx)
    points = np.concatenate(pts) if pts else np.zeros((0, 3))
    n = len(points)
    names = " ".join(stages)
    text = (f'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" '
            f'header_type="UInt32">\n<PolyData>\n<Piece NumberOfPoints="{n}" NumberOfVerts="0" '
            f'NumberOfLines="{len(stages)}" NumberOfStrips="0" NumberOfPolys="0">\n<PointData>\n'
            + _array("global_step", np.concatenate(steps) if steps else np.zeros(0, np.int64)) + "\n"
            + _array("residual", np.concatenate(residual) if residual else np.zeros(0)) + "\n</PointData>\n"
            + "<CellData>\n" + _array("stage", np.asarray(cell_stage, np.int64)) + "\n</CellData>\n"
            + f"<Points>\n{_array('Points', points, 3)}\n</Points>\n<Lines>\n"
            + _array("connectivity", np.arange(n, dtype=np.int64)) + "\n"
            + _array("offsets", np.asarray(offsets, np.int64)) + "\n</Lines>\n</Piece>\n"
            + f"<!-- stages, in the order of the cell data 'stage': {names} -->\n</PolyData>\n</VTKFile>\n")
    _write(Path(path), text, overwrite)
    return Path(path)


def write_obj(ls: Landscape, path: str | Path, metric: str, colormap: str = "viridis", log_scale: bool = False,
              overwrite: bool = False) -> Path:
    """One metric's surface as a triangle mesh with vertex colours (``v x y z r g b``)."""
    mesh = surface_mesh(ls, metric, colormap, log_scale, path)
    lines = [f"# {part}" for part in mesh.header.split("; ", 1)] + ["o " + ls.name]
    lines += [f"v {x:.9g} {y:.9g} {z:.9g} {r:.4f} {g:.4f} {b:.4f}"
              for (x, y, z), (r, g, b) in zip(mesh.positions, mesh.colours, strict=True)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.triangles]  # OBJ counts from 1
    _write(Path(path), "\n".join(lines) + "\n", overwrite)
    return Path(path)


def export_mesh(ls: Landscape, path: str | Path, metric: str = "test_loss", height: str = "", log_scale: bool = False,
                overwrite: bool = False) -> Path:
    """Write by the file's suffix: .vts or .vtu (all metrics), .vtp (trajectories), .obj or .glb (``metric``)."""
    p = Path(path)
    if p.suffix == ".vts":
        return write_vts(ls, p, height, overwrite)
    if p.suffix == ".vtu":
        return write_vtu(ls, p, height, overwrite)
    if p.suffix == ".vtp":
        return write_vtp(ls, p, height, overwrite)
    if p.suffix == ".obj":
        return write_obj(ls, p, metric, log_scale=log_scale, overwrite=overwrite)
    if p.suffix == ".glb":
        from wmstudio.landscape.gltf_export import write_glb

        return write_glb(ls, p, metric, log_scale=log_scale, overwrite=overwrite)
    raise OutputError(f"{p}: expected a file ending in {', '.join(SUFFIXES)}")
