"""Cameras: an orbit camera for meshes (orbit, pan, zoom, auto framing) and a 2D camera for the flat view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pyrr import Matrix44

FOV_Y = 35.0  # degrees


@dataclass
class OrbitCamera:
    """Orbits `target` at `distance`; yaw around +y, pitch above the horizon (degrees)."""

    target: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    distance: float = 3.0
    yaw: float = 30.0
    pitch: float = 20.0
    radius: float = 1.0  # of the framed object: sets the clip planes
    fov_y: float = FOV_Y

    def frame(self, center: np.ndarray, radius: float, aspect: float = 1.0) -> None:
        """Fit a bounding sphere in view (both directions), keeping the orbit angles."""
        self.target = np.asarray(center, np.float32).copy()
        self.radius = max(float(radius), 1e-6)
        half = math.radians(self.fov_y) / 2
        half_x = math.atan(math.tan(half) * aspect)
        self.distance = self.radius / math.sin(min(half, half_x)) * 1.08

    def orbit(self, dx: float, dy: float) -> None:
        """Mouse motion in pixels (0.3 degree per pixel)."""
        self.yaw = (self.yaw - dx * 0.3) % 360.0
        self.pitch = float(np.clip(self.pitch + dy * 0.3, -89.0, 89.0))

    def pan(self, dx: float, dy: float, viewport_height: int) -> None:
        """Move the target with the mouse: the point under the cursor stays under it (at the target depth)."""
        per_pixel = 2 * self.distance * math.tan(math.radians(self.fov_y) / 2) / max(viewport_height, 1)
        right, up = self._axes()[:2]
        self.target = (self.target - right * dx * per_pixel + up * dy * per_pixel).astype(np.float32)

    def zoom(self, steps: float) -> None:
        self.distance = float(np.clip(self.distance * 0.88 ** steps, self.radius * 0.05, self.radius * 200))

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        yaw, pitch = math.radians(self.yaw), math.radians(self.pitch)
        back = np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)])
        right = np.cross([0.0, 1.0, 0.0], back)
        right /= np.linalg.norm(right)
        return right, np.cross(back, right), back

    @property
    def eye(self) -> np.ndarray:
        return (self.target + self._axes()[2] * self.distance).astype(np.float32)

    def view(self) -> np.ndarray:
        return np.asarray(Matrix44.look_at(self.eye, self.target, self._axes()[1]), np.float32)

    def projection(self, aspect: float) -> np.ndarray:
        near = max(self.distance - self.radius * 4, self.distance * 0.01, 1e-4)
        far = self.distance + self.radius * 4
        return np.asarray(Matrix44.perspective_projection(self.fov_y, aspect, near, far), np.float32)


@dataclass
class FlatCamera:
    """The flat view: texels on screen at `scale` pixels per texel (1 = 1:1), `center` in texels."""

    center: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    scale: float = 1.0

    def frame(self, center: np.ndarray, radius: float, aspect: float = 1.0) -> None:
        self.center = np.zeros(2, np.float32)
        self.scale = 1.0

    def orbit(self, dx: float, dy: float) -> None:
        self.pan(dx, dy, 0)

    def pan(self, dx: float, dy: float, viewport_height: int) -> None:
        self.center = (self.center - np.array([dx, -dy]) / self.scale).astype(np.float32)

    def zoom(self, steps: float) -> None:
        octaves = math.log2(float(np.clip(self.scale * 2 ** (steps / 2), 1 / 64, 64)))
        if abs(octaves - round(octaves)) < 1e-6:  # back to a power of two (1:1 included) exactly
            octaves = round(octaves)
        self.scale = 2.0**octaves

    def snapped(self) -> np.ndarray:
        """`center` on the pixel grid: at integer zooms (1:1 included) texels stay aligned with pixels."""
        return (np.round(self.center * self.scale) / self.scale).astype(np.float32)

    @property
    def eye(self) -> np.ndarray:
        c = self.snapped()
        return np.array([c[0], c[1], 1000.0], np.float32)

    def view(self) -> np.ndarray:
        c = self.snapped()
        return np.asarray(Matrix44.from_translation([-c[0], -c[1], -1000.0]), np.float32)

    def projection(self, aspect: float, viewport: tuple[int, int] = (0, 0),
                   content: tuple[int, int] = (0, 0)) -> np.ndarray:
        """Orthographic; at scale 1, texel centres of a `content`-sized quad fall on pixel centres."""
        w, h = viewport
        hw, hh = w / 2 / self.scale, h / 2 / self.scale
        sx = 0.5 if (w - content[0]) % 2 else 0.0
        sy = 0.5 if (h - content[1]) % 2 else 0.0
        return np.asarray(Matrix44.orthogonal_projection(-hw + sx, hw + sx, -hh + sy, hh + sy, 1.0, 2000.0),
                          np.float32)
