"""The materials of a glTF scene on the GPU: one `viewer.scene.Scene` per textured material (loaded through the one
material path, `load_material("file.glb#materials[N]")`, with its sets per mode, ASTC on demand, presets), a
constant set for each untextured one, and the `.ngtc` of each: from an `ngtc compress` output folder beside the
scene (its library.json, matched by the material's fingerprint), from the viewer's cache, or compressed in the
background with a short budget (`COMPRESS_SECONDS`, one material at a time) and cached: in the window from the start,
headless (`ngtc render`, tests) only when a mode shown needs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import moderngl
import numpy as np

from .gltf_scene import MaterialFacts, SceneData
from .log import Log
from .materials_gl import SLOTS, TextureSet, cache_root
from .modes import MODES, NEURAL_MODES, transcode_block
from .scene import Scene, release_sets

COMPRESS_SECONDS = 30.0  # the viewer's budget per missing .ngtc: neural within minutes; `ngtc compress` for quality
PLACEHOLDER_GREY = 0.5  # a material not (yet) in the mode shown: drawn grey


def library_ngtc(scene_path: Path, fingerprint: str) -> Path | None:
    """The `.ngtc` an `ngtc compress` output folder beside the scene (or the scene's own folder) holds for the
    material with this fingerprint (library.json entries record it)."""
    folder = scene_path.parent
    for doc_path in [folder / "library.json", *sorted(folder.glob("*/library.json"))[:50]]:
        try:
            doc = json.loads(doc_path.read_text())
        except (OSError, ValueError):
            continue
        for entry in doc.get("materials", []) if isinstance(doc, dict) else []:
            if isinstance(entry, dict) and entry.get("status") == "ok" and entry.get("fingerprint") == fingerprint:
                file = doc_path.parent / str(entry.get("file"))
                if file.is_file():
                    return file
    return None


def constant_set(facts: MaterialFacts | None, grey: bool = False) -> TextureSet:
    """A set of constants alone: an untextured material (its factors do the work), or the grey placeholder."""
    sources = np.full((len(SLOTS), 2), -1, np.int32)
    ones = {"basecolor", "roughness", "metallic", "ao", "opacity", "emissive"}  # glTF: an absent texture reads 1
    constants = np.array([1.0 if name in ones else 0.5 for name, _ in SLOTS], np.float32)
    if grey:
        constants[:3] = PLACEHOLDER_GREY
    name = facts.name if facts else "placeholder"
    return TextureSet("constant", name, 1, 1, 1, [], sources, constants, ("basecolor",) if grey else (), 0, None, None,
                      ["no textures: the glTF factors alone" if not grey else "not loaded in this mode"])


class SceneMaterials:
    def __init__(self, ctx: moderngl.Context, log: Log, data: SceneData,
                 compress_seconds: float | None = COMPRESS_SECONDS, compress_steps: int | None = None,
                 compress_batch: int | None = None):
        self.ctx, self.log, self.data = ctx, log, data
        self.compress_seconds, self.compress_steps = compress_seconds, compress_steps
        self.compress_batch = compress_batch  # texels a fitting step (None: the codec's default)
        self.scenes: dict[int, Scene] = {}  # textured materials, by glTF material index
        self.constants: dict[int, TextureSet] = {}  # untextured ones
        self.placeholder = constant_set(None, grey=True)
        self.compressing: int | None = None  # the material being compressed (one at a time)
        self.compress_failed: set[int] = set()
        self.compress_always = False  # the window: compress missing .ngtc files whatever the mode shown
        self.searched: dict[str, Path | None] = {}  # material fingerprint -> its .ngtc beside the scene or cached
        for index, facts in sorted(data.materials.items()):
            if facts.textured:
                scene = Scene(ctx, log, lambda mesh: None)
                scene.mesh = data.mesh
                scene.load_material(f"{data.path}#materials[{index}]")
                self.scenes[index] = scene
            else:
                self.constants[index] = constant_set(facts)

    def set_for(self, material: int, mode: str) -> TextureSet:
        if material in self.constants:
            return self.constants[material]
        return self.scenes[material].sets.get(mode) or self.placeholder

    def all_scenes(self) -> list[Scene]:
        return list(self.scenes.values())

    def jobs(self) -> list:
        return [job for scene in self.scenes.values() for job in scene.jobs]

    # ------------------------------------------------------------------------------------- loading

    def poll(self, shown: Iterable[str]) -> None:
        """Finish jobs (uploads on this thread), start what the shown modes need, find or make missing .ngtc."""
        shown = set(shown)
        needed = self.compress_always or any(m.partition("@")[0] in NEURAL_MODES or transcode_block(m) for m in shown)
        for index, scene in self.scenes.items():
            scene.poll()
            if scene.material is not None:
                scene.ensure(shown)
                self._find_ngtc(index, scene, needed)
        self.after_failure()

    def _find_ngtc(self, index: int, scene: Scene, compress: bool) -> None:
        if scene.ngtc_path is not None or any(j.label.startswith(("ngtc ", "compress ")) for j in scene.jobs):
            return
        if any(m in scene.failed for m in NEURAL_MODES):
            return
        if scene.fingerprint not in self.searched:  # once per material, not every frame
            cached = self._cached(scene)
            self.searched[scene.fingerprint] = library_ngtc(self.data.path, scene.fingerprint) or (
                cached if cached.is_file() else None)
        found = self.searched[scene.fingerprint]
        if found is not None:
            scene.load_ngtc(found)
        elif compress and self.compressing is None and index not in self.compress_failed and self._may_compress():
            self._compress(index, scene)

    def _may_compress(self) -> bool:
        return bool(self.compress_steps or self.compress_seconds)

    def _cached(self, scene: Scene) -> Path:
        budget = f"{self.compress_steps}steps" if self.compress_steps else f"{self.compress_seconds:g}s"
        budget += f"-b{self.compress_batch}" if self.compress_batch else ""
        return cache_root() / "scenes" / f"{scene.fingerprint[:24]}-{budget}.ngtc"

    def _compress(self, index: int, scene: Scene) -> None:
        """The material compressed in a background thread (`models.codec.compress_material`), cached, loaded."""
        from models import ngtc_file
        from models.codec import compress_material
        from models.fit import FitConfig
        from models.presets import DEFAULT_PRESET, get_preset

        material, out = scene.material, self._cached(scene)
        cfg = FitConfig(get_preset(DEFAULT_PRESET), steps=self.compress_steps,
                        seconds=None if self.compress_steps else self.compress_seconds)
        if self.compress_batch:
            cfg = replace(cfg, batch=self.compress_batch)
        progress = {"fraction": 0.0}

        def work() -> Path:
            # PSNR measured at mip 0 only: decoding every mip on the CPU would take longer than the short fit
            data, _ = compress_material(material, cfg, lambda p: progress.update(fraction=p.fraction), mips_measured=1)
            out.parent.mkdir(parents=True, exist_ok=True)
            ngtc_file.write_atomic(out, data)
            return out

        def done(path: Path) -> None:
            self.compressing = None
            scene.load_ngtc(path)

        self.compressing = index
        scene.start(f"compress {material.name}", work, done, modes=NEURAL_MODES,
                    progress=lambda: progress["fraction"])
        self.log.note(f"{material.name}: no .ngtc beside the scene; compressing ({self.budget_text()})")

    def budget_text(self) -> str:
        if self.compress_steps:
            return f"{self.compress_steps} steps"
        return f"{self.compress_seconds:g} s, the viewer's short budget; `ngtc compress SCENE -o DIR/` for quality"

    def after_failure(self) -> None:
        """A compression that failed (its job's error is logged) is not tried again."""
        scene = self.scenes.get(self.compressing) if self.compressing is not None else None
        if scene is not None and not any(j.label.startswith("compress ") for j in scene.jobs):
            self.compress_failed.add(self.compressing)
            self.compressing = None

    def wait(self, shown: set[str], timeout: float = 600.0) -> None:
        """Every material loaded, with what the shown modes need (.ngtc found or compressed included)."""
        import time

        end = time.perf_counter() + timeout
        while True:
            self.poll(shown)
            jobs = self.jobs()
            if not jobs:
                return
            for job in jobs:
                job.thread.join(max(0.0, min(0.5, end - time.perf_counter())))
            if time.perf_counter() > end:
                from .errors import ViewerError

                raise ViewerError(f"the scene's materials did not load in {timeout:.0f} s")

    # ------------------------------------------------------------------------------------- facts

    def gpu_bytes(self, mode: str) -> tuple[int, int]:
        """(bytes on the GPU of the whole scene in `mode`, materials loaded in it); shared uploads counted once."""
        total, loaded = 0, 0
        for scene in self.scenes.values():
            tset = scene.sets.get(mode)
            if tset is not None:
                total += tset.gpu_bytes
                loaded += 1
        return total, loaded

    def modes(self) -> list[str]:
        return list(MODES)

    def release(self, keep: Scene | None = None) -> None:
        for scene in self.scenes.values():
            if scene is not keep:
                release_sets(scene.sets, list(scene.sets))
        self.placeholder.release()
        for tset in self.constants.values():
            tset.release()
