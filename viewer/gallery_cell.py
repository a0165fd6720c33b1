"""One material of the library's gallery (`viewer.gallery`): its entry, the `Scene` its texture sets load into, and
what each view mode needs loaded; drawn by `viewer.gallery_draw`."""

from __future__ import annotations

import moderngl

from .library_index import Entry
from .log import Log
from .materials_gl import TextureSet
from .modes import PRESET_SEP, REGISTRY
from .scene import Scene

CELL_CACHE_MIB = None  # neural-feedback's tile cache per cell: the viewer's default budget


class Cell:
    """One material of the library and the scene its texture sets load into."""

    def __init__(self, entry: Entry, ctx: moderngl.Context):
        self.entry = entry
        self.log = Log()
        self.scene = Scene(ctx, self.log, lambda mesh: None)
        self.scene.cache_mib = CELL_CACHE_MIB
        self.requested: set[str] = set()  # "material", "ngtc"
        self.reported = 0  # errors of `log` said in the library's log

    def load_failed(self) -> bool:
        """Its maps or its .ngtc were asked for and did not load (an ASTC encoding failing only fails that mode)."""
        if self.loading:
            return False
        scene = self.scene
        return ("material" in self.requested and scene.material is None) or (
            "ngtc" in self.requested and scene.ngtc_path is None)

    def needs(self, mode: str) -> str | None:
        """What `mode` is made from ("material" or "ngtc"), None when this material has not got it."""
        spec = REGISTRY.get(mode.partition(PRESET_SEP)[0])
        if spec is None or PRESET_SEP in mode:
            return None  # further presets are the normal view's
        if spec.source in ("material", "astc"):
            return "material" if self.entry.source else None
        return "ngtc" if self.entry.ngtc else None

    def tset(self, mode: str) -> TextureSet | None:
        return self.scene.sets.get(mode)

    @property
    def loading(self) -> bool:
        return bool(self.scene.jobs)

    def request(self, mode: str) -> bool:
        """Start the next load `mode` needs (the maps or .ngtc, then an encoding); True when one started."""
        need = self.needs(mode)
        if need is None or self.loading or mode in self.scene.sets or mode in self.scene.failed:
            return False
        if need not in self.requested:
            self.requested.add(need)
            if need == "material":
                self.scene.load_material(self.entry.source)
            else:
                self.scene.load_ngtc(self.entry.ngtc)
            return True
        self.scene.ensure({mode})  # an ASTC encoding or a transcoding, once the maps or .ngtc are in
        return self.loading

    def psnr(self, mode: str) -> float | None:
        """PSNR at mip 0 in `mode`: its set's (ASTC: measured on load) or else what the library recorded."""
        tset = self.tset(mode)
        values = tset.psnr if tset is not None and tset.psnr else self.entry.psnr
        return values[0] if values else None
