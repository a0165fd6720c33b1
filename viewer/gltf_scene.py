"""A whole glTF scene for the viewer: every primitive in world space, with its material's glTF parameters.

trimesh reads the scene graph (`trimesh.load(..., force="scene")`: one geometry per primitive, one node per
instance); the glTF JSON (`models.material.gltf_document`, the one glTF reader of the app) gives each primitive's
material index and the materials' factors and alpha modes. Node transforms are baked into the vertices, so that the
depth pre-pass can draw every opaque primitive in one call with exactly the depths of the shading draws. The
primitives lie in one index buffer, opaque first, then alpha-masked, then blended (`SceneData.primitives`).
The materials' textures are loaded elsewhere, through `models.material.load_material` ("file.glb#materials[N]").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ViewerError, one_line
from .mesh import MeshData, build_mesh, placed, scene_meshes

ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")
GLTF_SUFFIXES = (".glb", ".gltf")


@dataclass
class MaterialFacts:
    """A glTF metallic-roughness material: its factors (multiplying its textures), alpha mode, which maps it has."""

    index: int  # in the glTF's materials; -1: the default material of primitives that name none
    name: str
    base_factor: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # linear RGBA
    metallic: float = 1.0
    roughness: float = 1.0
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)
    normal_scale: float = 1.0
    occlusion: float = 1.0  # occlusion strength
    alpha_mode: str = "OPAQUE"
    cutoff: float = 0.5
    double_sided: bool = False
    textures: tuple[str, ...] = ()  # glTF slots with a texture: base, mr, normal, occlusion, emissive

    @property
    def textured(self) -> bool:
        return bool(self.textures)


@dataclass
class Primitive:
    """One draw: a primitive of a mesh at one node, `count` triangles from triangle `first` of the scene's buffer."""

    node: str
    material: int  # MaterialFacts.index
    first: int
    count: int
    center: np.ndarray  # world-space centre of its bounding box (blended primitives are sorted by it)
    alpha_mode: str = "OPAQUE"


@dataclass
class SceneData:
    path: Path
    mesh: MeshData  # every primitive, world space, in `primitives` order
    primitives: list[Primitive]
    materials: dict[int, MaterialFacts] = field(default_factory=dict)

    def opaque_range(self) -> tuple[int, int]:
        """(first triangle, count) of the opaque primitives: contiguous, at the start."""
        opaque = [p for p in self.primitives if p.alpha_mode == "OPAQUE"]
        return (0, sum(p.count for p in opaque))


def material_facts(doc: dict, index: int) -> MaterialFacts:
    """The glTF parameters of material `index` (-1: the default material), spec defaults where absent."""
    if index < 0:
        return MaterialFacts(-1, "default")
    mat = doc["materials"][index]
    pbr = mat.get("pbrMetallicRoughness") or {}
    slots = {"base": pbr.get("baseColorTexture"), "mr": pbr.get("metallicRoughnessTexture"),
             "normal": mat.get("normalTexture"), "occlusion": mat.get("occlusionTexture"),
             "emissive": mat.get("emissiveTexture")}
    mode = str(mat.get("alphaMode", "OPAQUE")).upper()
    return MaterialFacts(
        index, str(mat.get("name") or f"materials[{index}]"),
        tuple(float(v) for v in pbr.get("baseColorFactor", (1, 1, 1, 1))),
        float(pbr.get("metallicFactor", 1.0)), float(pbr.get("roughnessFactor", 1.0)),
        tuple(float(v) for v in mat.get("emissiveFactor", (0, 0, 0))),
        float((mat.get("normalTexture") or {}).get("scale", 1.0)),
        float((mat.get("occlusionTexture") or {}).get("strength", 1.0)),
        mode if mode in ALPHA_MODES else "OPAQUE", float(mat.get("alphaCutoff", 0.5)),
        bool(mat.get("doubleSided", False)), tuple(k for k, v in slots.items() if v is not None))


def primitive_materials(doc: dict) -> list[int]:
    """The material index of every triangle primitive, in the order trimesh makes their geometries (-1: none)."""
    out = []
    for mesh in doc.get("meshes") or []:
        for prim in mesh.get("primitives") or []:
            if prim.get("mode", 4) == 4:
                out.append(int(prim["material"]) if "material" in prim else -1)
    return out


def load_gltf_scene(path: str | Path) -> SceneData:
    """Every triangle primitive of a glTF at each node that instances it, or a ViewerError in one line."""
    import trimesh

    from models.material import MaterialError, gltf_document

    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in GLTF_SUFFIXES:
        raise ViewerError(f"{path}: not a .glb/.gltf file")
    try:
        doc = gltf_document(path)
        scene = trimesh.load(str(path), force="scene", process=False)
        per_geometry = primitive_materials(doc)
        materials = doc.get("materials") or []
    except MaterialError as e:
        raise ViewerError(one_line(e)) from None
    except Exception as e:  # noqa: BLE001 - trimesh raises anything from its parsers
        raise ViewerError(f"{path}: cannot read the glTF scene ({type(e).__name__}: {one_line(e)})") from None
    if not materials:
        raise ViewerError(f"{path}: the glTF has no materials (a scene shows its materials; to see the geometry "
                          f"with one material use --mesh)")
    names = list(scene.geometry)
    if len(names) != len(per_geometry):
        raise ViewerError(f"{path}: {len(names)} geometries for {len(per_geometry)} triangle primitives; cannot "
                          f"tell which material each one has")
    material_of = dict(zip(names, per_geometry, strict=True))
    facts = {i: material_facts(doc, i) for i in set(per_geometry)}
    parts = []
    for node, geom_name, geom, transform in scene_meshes(scene):
        mat = facts[material_of[geom_name]]
        uv = getattr(geom.visual, "uv", None)
        if uv is None or len(uv) != len(geom.vertices):
            if mat.textured:
                raise ViewerError(f"{path}: mesh {geom_name!r} has no texture coordinates (UVs) for its textured "
                                  f"material {mat.name!r}")
            uv = np.zeros((len(geom.vertices), 2))
        parts.append((node, mat, geom, np.asarray(uv, np.float64)[:, :2], transform))
    if not parts:
        raise ViewerError(f"{path}: no triangles in the glTF scene")
    parts.sort(key=lambda p: ALPHA_MODES.index(p[1].alpha_mode))  # stable: file order within a mode
    return _assemble(path, parts, facts)


def _assemble(path: Path, parts: list, facts: dict[int, MaterialFacts]) -> SceneData:
    positions, normals, uvs, faces, prims = [], [], [], [], []
    vertex0 = triangle0 = 0
    for node, mat, geom, uv, xf in parts:
        pos, tris, n = placed(geom, xf)
        positions.append(pos)
        normals.append(n)
        uvs.append(uv)
        faces.append(tris + vertex0)
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        prims.append(Primitive(node, mat.index, triangle0, len(tris), ((lo + hi) / 2).astype(np.float32),
                               mat.alpha_mode))
        vertex0 += len(pos)
        triangle0 += len(tris)
    mesh = build_mesh(path.stem, np.concatenate(positions), np.concatenate(faces), np.concatenate(uvs),
                      np.concatenate(normals))
    return SceneData(path, mesh, prims, facts)


def is_scene(path: str | Path) -> bool:
    """Whether `ngtc view` opens a glTF as a scene by default: it has several materials or several mesh nodes.
    (One material on one mesh keeps the material on the preview sphere; --scene shows the file's mesh.)"""
    from models.material import gltf_document

    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in GLTF_SUFFIXES:
        return False
    try:
        doc = gltf_document(path)
    except Exception:  # noqa: BLE001 - not readable: the material path says why in one line
        return False
    mesh_nodes = sum(1 for node in doc.get("nodes") or [] if isinstance(node, dict) and "mesh" in node)
    return len(doc.get("materials") or []) > 1 or mesh_nodes > 1
