"""A glTF scene in the viewer: its geometry (`gltf_scene`), materials (`scene_materials`), drawing (`scene_draw`),
picking (`picking`), and which material is selected: the viewer's `scene` is that material's `Scene`, so the panel's
Scene, Compare and Facts sections show it as they show a single material."""

from __future__ import annotations

from pathlib import Path

from .gltf_scene import load_gltf_scene
from .host import Host
from .picking import Picker
from .scene_draw import SceneDraw
from .scene_materials import SceneMaterials


class GltfView:
    def __init__(self, viewer: Host, path: Path, **compress):
        self.viewer = viewer
        self.data = load_gltf_scene(path)  # a ViewerError in one line: nothing changed yet
        self.materials = SceneMaterials(viewer.ctx, viewer.log, self.data, **compress)  # the .ngtc budget
        self.materials.compress_always = getattr(viewer.panel, "window", None) is not None  # interactive
        for scene in self.materials.scenes.values():
            scene.cache_mib = viewer.scene.cache_mib  # neural-feedback's tile cache budget, as asked for
        self.draw = SceneDraw(self.materials)
        self.picker: Picker | None = None
        self.selected: int = min(self.data.materials)
        self.picked: int | None = None  # the primitive last clicked
        viewer.log.note(f"scene {path.name}: {len(self.data.primitives)} primitives, "
                        f"{len(self.data.materials)} materials, {len(self.data.mesh.indices):,} triangles")

    def attach(self) -> None:
        """Show the scene: the renderer draws it, the viewer's scene is the selected material's."""
        v = self.viewer
        v.renderer.scene_draw = self.draw
        v.scene.release()
        self.select(next(iter(self.materials.scenes), self.selected), keep_old=False)
        v.scene.mesh = self.data.mesh
        v.orbit.frame(self.data.mesh.center, self.data.mesh.radius, v.size[0] / max(v.size[1], 1))

    def select(self, material: int, keep_old: bool = True) -> None:
        """Select a material: a textured one becomes the viewer's scene (panel, modes, facts)."""
        self.selected = material
        scene = self.materials.scenes.get(material)
        if scene is not None:
            self.viewer.scene = scene
        name = self.data.materials[material].name
        if keep_old:
            self.viewer.log.note(f"selected material {name}")

    def pick(self, x: float, y: float) -> int | None:
        """Select the material of the primitive at window pixel (x, y) (y from the top); returns the primitive."""
        v = self.viewer
        if self.picker is None:
            self.picker = Picker(v.ctx)
        w, h = v.size
        index = self.picker.pick(v.renderer, self.draw, (w, h), v.camera, int(x), int(h - 1 - y))
        self.picked = index
        if index is not None:
            self.select(self.data.primitives[index].material)
        return index

    def poll(self, shown: set[str]) -> None:
        self.materials.poll(shown)

    def wait(self, shown: set[str], timeout: float = 600.0) -> None:
        self.materials.wait(shown, timeout)

    def release(self) -> None:
        self.materials.release(keep=self.viewer.scene)
        if self.picker is not None:
            self.picker.release()
