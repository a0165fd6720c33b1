"""Small material libraries for the library tests: crops of the real sets (scripts/fetch_data.sh), a
multi-material glTF built from them with trimesh, a broken set; and headless Chromium for library.html."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CROP = (48, 40)  # w, h: a few seconds of fitting per material at the tests' step counts


def crop_set(src: Path, dest: Path, x: int = 256, y: int = 256, size: tuple[int, int] = CROP) -> Path:
    """The maps of a real set (and its channels.json), cropped, in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for file in src.iterdir():
        if file.suffix.lower() == ".png":
            with Image.open(file) as im:
                sx, sy = x * im.width // 1024, y * im.height // 1024  # a few maps are smaller (constants)
                im.crop((sx, sy, sx + size[0], sy + size[1])).save(dest / file.name)
        elif file.name == "channels.json":
            (dest / file.name).write_bytes(file.read_bytes())
    return dest


def broken_set(dest: Path) -> Path:
    """A folder whose base color is not an image: one line of reason, and the library goes on."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "basecolor.png").write_bytes(b"not a png at all")
    (dest / "roughness.png").write_bytes(b"nor this")
    return dest


def multi_material_glb(path: Path, sets: dict[str, Path], size: tuple[int, int] = CROP,
                       transforms: dict[str, np.ndarray] | None = None,
                       origins: dict[str, tuple[int, int]] | None = None) -> Path:
    """A GLB with one textured quad per set, each its own material (base color, normal, metallicRoughness).
    Without `transforms` quad i spans x in [i, i + 1]; with them every quad spans [0, 1]^2 and its node's 4x4
    transform places it. `origins`: where each set is cropped (default (256, 256))."""
    import trimesh

    def crop(file: Path, name: str) -> Image.Image:
        x, y = (origins or {}).get(name, (256, 256))
        with Image.open(file) as im:
            return im.crop((x, y, x + size[0], y + size[1])).convert("RGB")

    scene = trimesh.Scene()
    for i, (name, folder) in enumerate(sets.items()):
        rough = np.asarray(crop(folder / "roughness.png", name))[..., 0]
        mr = np.stack([np.zeros_like(rough), rough, np.full_like(rough, 30)], axis=-1)
        material = trimesh.visual.material.PBRMaterial(
            name=name, baseColorTexture=crop(folder / "basecolor.png", name),
            normalTexture=crop(folder / "normal.png", name),
            metallicRoughnessTexture=Image.fromarray(mr))
        x0 = 0 if transforms else i
        corners = [[x0, 0, 0], [x0 + 1, 0, 0], [x0 + 1, 1, 0], [x0, 1, 0]]
        quad = trimesh.Trimesh(vertices=corners, faces=[[0, 1, 2], [0, 2, 3]], process=False)
        quad.visual = trimesh.visual.TextureVisuals(uv=[[0, 0], [1, 0], [1, 1], [0, 1]], material=material)
        scene.add_geometry(quad, geom_name=name, transform=(transforms or {}).get(name))
    path.write_bytes(scene.export(file_type="glb"))
    return path


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium (as root it needs --no-sandbox), its profile in `profile`."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; scripts/setup.sh does)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)
