"""A stored landscape's surface as binary glTF 2.0 (``.glb``): one mesh, its colour map baked into the vertices.

The mesh is ``surface_mesh.surface_mesh``'s (the OBJ file's): x, y the direction coefficients, the height the
metric scaled to the grid's larger side. glTF's up axis is +Y, so a point (x, y, z) is stored as (x, z, -y): the
surface stands upright in Blender, three.js and the other glTF viewers. Colours are stored as glTF wants them,
linear (the colour map's sRGB converted), on a matte, double-sided material the viewer lights, with vertex
normals for smooth shading. What the axes and colours mean is in the scene's ``extras``. Written with numpy and
json alone.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from wmstudio.landscape.store import Landscape
from wmstudio.landscape.surface_mesh import surface_mesh
from wmstudio.safe_files import atomic_output

GLB_MAGIC, GLB_VERSION = 0x46546C67, 2  # "glTF"
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942  # "JSON", "BIN\0"
FLOAT, UINT32 = 5126, 5125  # accessor component types
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def vertex_normals(positions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit normals at the vertices: the sum of the (area-weighted) normals of the triangles around each,
    pointing to the side the triangles' winding faces; (0, 1, 0) for a vertex in no triangle."""
    a, b, c = (positions[triangles[:, k]] for k in range(3))
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 0, normals / np.where(length > 0, length, 1.0), np.array([0.0, 1.0, 0.0]))


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def write_glb(ls: Landscape, path: str | Path, metric: str, colormap: str = "viridis", log_scale: bool = False,
              overwrite: bool = False) -> Path:
    mesh = surface_mesh(ls, metric, colormap, log_scale, path)
    x, y, z = mesh.positions.T
    positions = np.ascontiguousarray(np.stack([x, z, -y], axis=1), dtype="<f4")
    colours = np.ascontiguousarray(srgb_to_linear(mesh.colours), dtype="<f4")
    indices = np.ascontiguousarray(mesh.triangles.ravel(), dtype="<u4")
    normals = np.ascontiguousarray(vertex_normals(positions.astype(float), mesh.triangles), dtype="<f4")
    blobs = [positions.tobytes(), colours.tobytes(), normals.tobytes(), indices.tobytes()]
    offsets = np.cumsum([0] + [len(b) for b in blobs])  # each a multiple of 4 bytes already
    views = [{"buffer": 0, "byteOffset": int(offsets[k]), "byteLength": len(b), "target": t}
             for k, (b, t) in enumerate(zip(blobs, (ARRAY_BUFFER,) * 3 + (ELEMENT_ARRAY_BUFFER,), strict=True))]
    n = len(positions)
    doc = {
        "asset": {"version": "2.0", "generator": "wmstudio (Watermark Studio)"},
        "scene": 0,
        "scenes": [{"nodes": [0], "extras": {"description": mesh.header, "axes": "glTF x = direction x, glTF y = "
                                             "height, glTF z = -(direction y)"}}],
        "nodes": [{"mesh": 0, "name": ls.name}],
        "materials": [{"name": f"{colormap} colour map", "doubleSided": True,
                       "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0.0,
                                                "roughnessFactor": 1.0}}],
        "meshes": [{"name": f"{ls.name} {metric}", "primitives": [{
            "attributes": {"POSITION": 0, "COLOR_0": 1, "NORMAL": 2}, "indices": 3, "material": 0, "mode": 4}]}],
        "buffers": [{"byteLength": int(offsets[-1])}],
        "bufferViews": views,
        "accessors": [
            {"bufferView": 0, "componentType": FLOAT, "count": n, "type": "VEC3",
             "min": positions.min(axis=0).tolist(), "max": positions.max(axis=0).tolist()},
            {"bufferView": 1, "componentType": FLOAT, "count": n, "type": "VEC3"},
            {"bufferView": 2, "componentType": FLOAT, "count": n, "type": "VEC3"},
            {"bufferView": 3, "componentType": UINT32, "count": len(indices), "type": "SCALAR"},
        ],
    }
    text = _pad(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8"), b" ")
    binary = _pad(b"".join(blobs), b"\0")
    chunks = struct.pack("<II", len(text), CHUNK_JSON) + text + struct.pack("<II", len(binary), CHUNK_BIN) + binary
    with atomic_output(Path(path), overwrite) as tmp:
        Path(tmp).write_bytes(struct.pack("<III", GLB_MAGIC, GLB_VERSION, 12 + len(chunks)) + chunks)
    return Path(path)
