"""Meshes for the viewer: trimesh loading (OBJ, glTF/GLB, PLY...), normals, tangents, framing, a flat quad.

Every mesh becomes one interleaved, indexed triangle list with position, normal, uv and a tangent with
its handedness in w (what a tangent-space normal map needs). UVs are required. Normals from the file are
kept; missing ones are computed smooth across UV seams (vertices at the same position share a normal).
Tangents are computed from the UVs per triangle and accumulated per vertex, MikkTSpace-like: weighted by
the corner angle, Gram-Schmidt orthogonalised against the normal, handedness from the bitangent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = (".obj", ".gltf", ".glb", ".ply", ".off", ".stl")
VERTEX_FORMAT = "3f 3f 2f 4f"  # moderngl buffer format of `interleaved()`
VERTEX_ATTRIBUTES = ("in_position", "in_normal", "in_uv", "in_tangent")


class MeshError(ValueError):
    """A mesh that cannot be shown; one line naming the file."""


@dataclass
class MeshData:
    name: str
    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32, unit
    uvs: np.ndarray  # (N, 2) float32, as in the file (v = 0 at the bottom of the image)
    tangents: np.ndarray  # (N, 4) float32: unit tangent along +u, w = handedness (+1 or -1)
    indices: np.ndarray  # (M, 3) uint32
    flat: bool = False  # the textured quad of the flat (1:1 texel) view

    @property
    def center(self) -> np.ndarray:
        lo, hi = self.positions.min(axis=0), self.positions.max(axis=0)
        return ((lo + hi) / 2).astype(np.float32)

    @property
    def radius(self) -> float:
        """Bounding sphere around the box centre (auto framing)."""
        return float(np.linalg.norm(self.positions - self.center, axis=1).max()) or 1.0

    def interleaved(self) -> bytes:
        data = np.concatenate([self.positions, self.normals, self.uvs, self.tangents], axis=1)
        return np.ascontiguousarray(data, np.float32).tobytes()


def load_mesh(path: str | Path) -> MeshData:
    """A mesh file as one MeshData (every geometry of a scene, with its node transform)."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise MeshError(f"{path}: no such mesh file")
    if path.suffix.lower() not in FORMATS:
        raise MeshError(f"{path}: unsupported mesh format {path.suffix!r} (expected {', '.join(FORMATS)})")
    try:
        scene = trimesh.load_scene(str(path), process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises anything from its many parsers
        raise MeshError(f"{path}: cannot read mesh ({type(e).__name__}: {' '.join(str(e).split())})") from None
    positions, faces, uvs, normals, offset = [], [], [], [], 0
    for _, geom_name, geom, xf in scene_meshes(scene):
        uv = getattr(geom.visual, "uv", None)
        if uv is None or len(uv) != len(geom.vertices):
            raise MeshError(f"{path}: mesh {geom_name!r} has no texture coordinates (UVs); "
                            "the viewer needs UV-mapped meshes")
        pos, tris, n = placed(geom, xf)
        positions.append(pos)
        faces.append(tris + offset)
        uvs.append(np.asarray(uv, np.float64)[:, :2])
        normals.append(n)
        offset += len(pos)
    if not positions:
        raise MeshError(f"{path}: no triangles in the file")
    return build_mesh(path.stem, np.concatenate(positions), np.concatenate(faces), np.concatenate(uvs),
                      np.concatenate(normals))


def scene_meshes(scene) -> Iterator[tuple[str, str, Any, np.ndarray]]:
    """(node, geometry name, trimesh.Trimesh, 4x4 world transform) for each node of a trimesh scene that
    instances a triangle mesh with faces."""
    import trimesh

    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name]
        if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
            yield str(node), geom_name, geom, np.asarray(transform, np.float64)


def placed(geom, xf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World positions, triangles and unit normals of a trimesh placed by the 4x4 transform `xf`: the file's
    normals turned by the inverse transpose when it has them, else smooth ones; a mirroring transform keeps
    the winding (front faces) the file meant."""
    verts = np.asarray(geom.vertices, np.float64)
    tris = np.asarray(geom.faces, np.int64)
    pos = verts @ xf[:3, :3].T + xf[:3, 3]
    # Normals the file provides survive in trimesh's cache only (it recomputes them otherwise).
    nrm = geom._cache.cache.get("vertex_normals") if "vertex_normals" in geom._cache.cache else None
    if nrm is not None and len(nrm) == len(verts) and np.isfinite(nrm).all():
        n = np.asarray(nrm, np.float64) @ np.linalg.inv(xf[:3, :3])  # inverse transpose, row vectors
    else:
        n = smooth_normals(pos, tris)
    if np.linalg.det(xf[:3, :3]) < 0:
        tris = tris[:, ::-1]
    return pos, tris, _unit(n)


def build_mesh(name: str, positions: np.ndarray, faces: np.ndarray, uvs: np.ndarray,
               normals: np.ndarray | None = None, flat: bool = False) -> MeshData:
    positions = np.asarray(positions, np.float64)
    faces = np.asarray(faces, np.int64)
    if normals is None:
        normals = smooth_normals(positions, faces)
    tangents = compute_tangents(positions, normals, uvs, faces)
    return MeshData(name, positions.astype(np.float32), _unit(normals).astype(np.float32),
                    np.asarray(uvs, np.float32), tangents.astype(np.float32), faces.astype(np.uint32), flat)


def quad_mesh(width: int, height: int) -> MeshData:
    """The flat view: a width x height quad in the z = 0 plane (one unit per texel), facing +z."""
    w, h = width / 2, height / 2
    positions = np.array([[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]], np.float64)
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    return build_mesh("quad", positions, np.array([[0, 1, 2], [0, 2, 3]]), uvs, normals, flat=True)


def _unit(v: np.ndarray, fallback: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-12, v / np.maximum(n, 1e-12), np.asarray(fallback))


def smooth_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, shared by vertices at the same position (no shading seams at UV seams)."""
    _, welded = np.unique(np.round(positions, 6), axis=0, return_inverse=True)
    welded = welded.reshape(-1)
    p = positions[faces]
    face_n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])  # length = 2 x area: area weighting
    acc = np.zeros((welded.max() + 1, 3))
    for corner in range(3):
        np.add.at(acc, welded[faces[:, corner]], face_n)
    return _unit(acc[welded])


def compute_tangents(positions: np.ndarray, normals: np.ndarray, uvs: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-vertex (N, 4) tangents from UVs: xyz along +u, w = +1 or -1 (bitangent = w * cross(n, t))."""
    p = positions[faces]  # (M, 3, 3)
    t = np.asarray(uvs, np.float64)[faces]  # (M, 3, 2)
    tan = np.zeros((len(positions), 3))
    bit = np.zeros((len(positions), 3))
    for c in range(3):  # each corner: its two edges, weighted by the corner angle (as MikkTSpace does)
        a, b = (c + 1) % 3, (c + 2) % 3
        e1, e2 = p[:, a] - p[:, c], p[:, b] - p[:, c]
        d1, d2 = t[:, a] - t[:, c], t[:, b] - t[:, c]
        det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
        ok = np.abs(det) > 1e-20
        r = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
        sdir = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * r
        tdir = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * r
        cos = np.einsum("ij,ij->i", _unit(e1), _unit(e2))
        angle = np.arccos(np.clip(cos, -1, 1))[:, None]
        np.add.at(tan, faces[:, c], _unit(sdir) * angle * ok[:, None])
        np.add.at(bit, faces[:, c], _unit(tdir) * angle * ok[:, None])
    n = _unit(np.asarray(normals, np.float64))
    tan = tan - n * np.einsum("ij,ij->i", n, tan)[:, None]
    # Degenerate UVs: any unit vector perpendicular to the normal.
    other = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    fallback = np.cross(n, other)
    length = np.linalg.norm(tan, axis=1, keepdims=True)
    tan = np.where(length > 1e-12, tan / np.maximum(length, 1e-12), _unit(fallback))
    w = np.where(np.einsum("ij,ij->i", np.cross(n, tan), bit) < 0, -1.0, 1.0)
    return np.concatenate([tan, w[:, None]], axis=1)
