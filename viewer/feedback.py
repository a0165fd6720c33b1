"""Neural on feedback (mode `neural-feedback`): virtual texturing of a `.ngtc`, decoded tile by tile where the view
needs it, into a cache of fixed size.

    cache = TileCache(ctx, ngl, cache_mib=8.0)   # ngl: viewer.neural_gl.NeuralGL
    cache.bind(program)                          # before drawing with MAT_FEEDBACK (shaders/feedback_sample.glsl)
    stats = cache.update()                       # after the frame: read the requests back, decode missing tiles

- Layout: mips below `tail` (the first mip that fits one tile) are cut into `tile` x `tile` texel tiles, one page
  each, mip after mip; the tail (that mip and every coarser one) is decoded on load into ordinary RGBA8 chains and
  stays resident, so a pixel always has something to show.
- Cache: an RGBA8 texture array with 2 levels, `groups` layers a slot (channels 4g .. 4g+3), each slot
  (tile + 2 border)^2 texels, its tile and the neighbouring tiles' texels around it (seamless filtering), and at
  level 1 the same region of the next mip: one hardware trilinear read filters a pixel between its two mips.
  As many slots as `cache_mib` buys (at most one per page).
- Page table: an int SSBO, the slot of each page or -1. Requests: a bit per page (SSBO, atomicOr) set by every
  pixel for the tile of the finer of its two mips.
- update(): the requested pages not resident, coarsest mip first (they are the fallback of finer ones), at most
  `decodes_per_frame` of them, go to free slots, else to the least recently requested slots not requested this
  frame; one compute dispatch (shaders/feedback_decode.comp, the one decoder) fills them.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field

import moderngl
import numpy as np

from models.spec import mip_size

from .errors import ViewerError
from .glsl import compile_compute
from .materials_gl import _GL, GL_RGBA, GL_UNSIGNED_BYTE
from .neural_gl import NeuralGL, decode_to_textures, texture_bytes

TILE = 128  # payload texels per tile side
BORDER = 2  # texels of the neighbours around a slot: bilinear filtering reads one, at level 1 too (2 / 2)
DEFAULT_CACHE_MIB = 8.0
MAX_CACHE_MIB = 4096.0
DECODES_PER_FRAME = 16  # tiles a frame at most: bounds the frame's decode time
CACHE_UNIT = 8  # texture unit of the cache array (the tail chains use 0 ..)
PAGES_BINDING, NEEDED_BINDING, JOBS_BINDING = 3, 4, 5  # SSBOs (the decoder's weights: 6, decode on load: 7)
GROUP = 8  # local_size of feedback_decode.comp
GL_PACK_ALIGNMENT = 0x0D05


def slot_size(tile: int, channels: int) -> int:
    """Bytes of one cache slot: both levels of every layer (RGBA8)."""
    side = tile + 2 * BORDER
    return (side * side + (side // 2) ** 2) * 4 * -(-channels // 4)


def read_array_level(tex: moderngl.TextureArray, level: int, size: int) -> bytes:
    """Level `level` of an RGBA8 texture array, all layers (moderngl reads level 0 only)."""
    gl = _GL.lib()
    gl.glGetTextureImage.argtypes = [ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_void_p]
    out = ctypes.create_string_buffer(size)
    gl.glPixelStorei(GL_PACK_ALIGNMENT, 1)
    gl.glGetTextureImage(tex.glo, level, GL_RGBA, GL_UNSIGNED_BYTE, size, out)
    return out.raw


def check_cache_mib(mib: float) -> float:
    """The tile cache budget in MiB, or a one-line ViewerError (CLI: exit 2)."""
    if not (math.isfinite(mib) and 0 < mib <= MAX_CACHE_MIB):
        raise ViewerError(f"--cache-mib {mib:g}: the tile cache budget must be more than 0 and at most "
                          f"{MAX_CACHE_MIB:g} MiB")
    return mib


@dataclass(frozen=True)
class TileLayout:
    """Pages of a width x height texture with `mips` levels cut into `tile`-texel tiles below the tail."""

    width: int
    height: int
    mips: int
    tile: int = TILE

    @property
    def tail(self) -> int:
        """The first mip held whole (it fits one tile); every coarser one is held too."""
        return next((m for m in range(self.mips) if max(mip_size(self.width, self.height, m)) <= self.tile),
                    self.mips - 1)

    def grid(self, mip: int) -> tuple[int, int]:
        w, h = mip_size(self.width, self.height, mip)
        return -(-w // self.tile), -(-h // self.tile)

    @property
    def offsets(self) -> list[int]:
        """First page of each tiled mip, then the page count."""
        out = [0]
        for m in range(self.tail):
            out.append(out[-1] + math.prod(self.grid(m)))
        return out

    @property
    def pages(self) -> int:
        return self.offsets[-1]

    def page(self, mip: int, tx: int, ty: int) -> int:
        return self.offsets[mip] + ty * self.grid(mip)[0] + tx

    def tile_of(self, page: int) -> tuple[int, int, int]:
        """(mip, tile x, tile y) of a page."""
        offsets = self.offsets
        mip = int(np.searchsorted(offsets, page, side="right")) - 1
        across = self.grid(mip)[0]
        return mip, (page - offsets[mip]) % across, (page - offsets[mip]) // across


@dataclass
class FrameStats:
    requested: int = 0  # pages the frame's pixels read
    hits: int = 0  # of those, resident
    decoded: int = 0  # tiles decoded after the frame

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requested if self.requested else 1.0


@dataclass
class Slots:
    """Which page each cache slot holds, and when it was last requested (CPU side of the page table)."""

    count: int
    pages: int
    slot_page: np.ndarray = field(init=False)
    page_slot: np.ndarray = field(init=False)
    last_used: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.slot_page = np.full(self.count, -1, np.int64)
        self.page_slot = np.full(self.pages, -1, np.int32)
        self.last_used = np.full(self.count, -1, np.int64)

    def plan(self, requested: np.ndarray, frame: int, budget: int, layout: TileLayout) -> list[tuple[int, int]]:
        """(page, slot) to decode for the `requested` pages: marks them used, picks the missing ones coarse first
        and evicts least recently used slots not requested this frame."""
        resident = self.page_slot[requested] >= 0
        self.last_used[self.page_slot[requested[resident]]] = frame
        missing = sorted(requested[~resident].tolist(), key=lambda p: -layout.tile_of(p)[0])
        free = list(np.flatnonzero(self.slot_page < 0))
        old = [s for s in np.argsort(self.last_used, kind="stable") if self.slot_page[s] >= 0
               and self.last_used[s] < frame]
        jobs = []
        for page, slot in zip(missing[:budget], [*free, *old], strict=False):
            if self.slot_page[slot] >= 0:
                self.page_slot[self.slot_page[slot]] = -1
            self.slot_page[slot], self.page_slot[page], self.last_used[slot] = page, slot, frame
            jobs.append((page, int(slot)))
        return jobs


class TileCache:
    """The GPU side of decode on feedback for one `.ngtc` upload (see the module docstring)."""

    def __init__(self, ctx: moderngl.Context, ngl: NeuralGL, cache_mib: float = DEFAULT_CACHE_MIB,
                 tile: int = TILE, decodes_per_frame: int = DECODES_PER_FRAME):
        check_cache_mib(cache_mib)
        self.ctx, self.ngl = ctx, ngl
        self.layout = TileLayout(ngl.width, ngl.height, ngl.mips, tile)
        self.groups = -(-ngl.channels // 4)
        self.side = tile + 2 * BORDER
        slot_bytes = slot_size(tile, ngl.channels)
        slots = int(cache_mib * 2**20 // slot_bytes)
        if slots < 1:
            raise ViewerError(f"--cache-mib {cache_mib:g}: holds no tile; one takes {slot_bytes / 2**20:.3f} MiB")
        max_layers = int(ctx.info.get("GL_MAX_ARRAY_TEXTURE_LAYERS", 2048))
        self.slots = Slots(max(1, min(slots, self.layout.pages, max_layers // self.groups)), self.layout.pages)
        self.decodes_per_frame = decodes_per_frame
        self.frame = 0
        self.total = FrameStats()
        self.last = FrameStats()
        self.last_pages = np.zeros(0, np.int64)  # the pages the last update found requested
        self.tail = decode_to_textures(ctx, ngl, self.layout.tail)
        self.cache = ctx.texture_array((self.side, self.side, self.slots.count * self.groups), 4)
        self.cache.build_mipmaps(0, 1)  # allocates level 1; the decoder writes both
        self.cache.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        self.cache.repeat_x = self.cache.repeat_y = False
        self.page_table = ctx.buffer(reserve=4 * max(1, self.layout.pages))  # a material within one tile: none
        self.page_table.write(self.slots.page_slot.tobytes())
        self.needed = ctx.buffer(reserve=4 * max(1, -(-self.layout.pages // 32)))
        self.needed.clear()
        self.jobs = ctx.buffer(reserve=16 * max(1, decodes_per_frame))
        self.program = compile_compute(ctx, "feedback_decode.comp", {
            **ngl.defines, "FB_TILE": tile, "FB_BORDER": BORDER, "FB_JOBS_BINDING": JOBS_BINDING})

    @property
    def defines(self) -> dict[str, object]:
        return {"MAT_FEEDBACK": 1, "FB_TILE": self.layout.tile, "FB_BORDER": BORDER, "FB_TAIL": self.layout.tail,
                "FB_GROUPS": self.groups, "FB_CACHE_UNIT": CACHE_UNIT, "FB_PAGES_BINDING": PAGES_BINDING,
                "FB_NEEDED_BINDING": NEEDED_BINDING}

    @property
    def gpu_bytes(self) -> int:
        """Cache, page table, request bits, job list and the resident tail (the grids and weights aside)."""
        return sum(self.parts.values())

    def bind(self, program: moderngl.Program) -> None:
        self.cache.use(location=CACHE_UNIT)
        if "fb_cache" in program:
            program["fb_cache"].value = CACHE_UNIT
        if "fb_offsets" in program:
            program["fb_offsets"].write(np.array(self.layout.offsets, np.int32).tobytes())
        self.page_table.bind_to_storage_buffer(PAGES_BINDING)
        self.needed.bind_to_storage_buffer(NEEDED_BINDING)

    def reset(self) -> None:
        """Nothing resident but the tail: a cold cache (benchmarks)."""
        self.slots = Slots(self.slots.count, self.layout.pages)
        self.page_table.write(self.slots.page_slot.tobytes())
        self.needed.clear()

    @property
    def parts(self) -> dict[str, int]:
        """Bytes on the GPU by part (gpu_bytes is their sum)."""
        return {"cache": slot_size(self.layout.tile, self.ngl.channels) * self.slots.count,
                "tail": sum(texture_bytes(t, self.ngl.mips - self.layout.tail) for t in self.tail),
                "page_table": self.page_table.size, "requests": self.needed.size, "jobs": self.jobs.size}

    def summary(self) -> str:
        """One line for the panel: slots in use, and the last frame's requests, hits and decodes."""
        used, last = int((self.slots.slot_page >= 0).sum()), self.last
        return (f"tile cache {used}/{self.slots.count} slots ({self.layout.pages} tiles); last frame "
                f"{last.requested} requested, {last.hit_rate:.0%} resident, {last.decoded} decoded")

    def requested(self) -> np.ndarray:
        """The pages the pixels drawn since the last update read (and the bits cleared)."""
        self.ctx.memory_barrier()
        bits = np.unpackbits(np.frombuffer(self.needed.read(), np.uint8), bitorder="little")
        self.needed.clear()
        return np.flatnonzero(bits[:self.layout.pages])

    def update(self) -> FrameStats:
        """After a frame: decode the missing tiles it requested (within the budget) and update the page table."""
        requested = self.requested()
        hits = int((self.slots.page_slot[requested] >= 0).sum())
        jobs = self.slots.plan(requested, self.frame, self.decodes_per_frame, self.layout)
        if jobs:
            self.decode(jobs)
            self.page_table.write(self.slots.page_slot.tobytes())
        self.frame += 1
        self.last, self.last_pages = FrameStats(len(requested), hits, len(jobs)), requested
        for name in ("requested", "hits", "decoded"):
            setattr(self.total, name, getattr(self.total, name) + getattr(self.last, name))
        return self.last

    def decode(self, jobs: list[tuple[int, int]]) -> None:
        rows = [(*self.layout.tile_of(page), slot) for page, slot in jobs]
        self.jobs.write(np.array(rows, np.int32).tobytes())
        self.jobs.bind_to_storage_buffer(JOBS_BINDING)
        self.ngl.bind(self.program)
        self.program["fb_size"] = (self.ngl.width, self.ngl.height)
        for level in (0, 1):
            self.cache.bind_to_image(0, read=False, write=True, level=level)
            self.program["fb_level"] = level
            groups = -(-(self.side >> level) // GROUP)
            self.program.run(groups, groups, len(rows))
        self.ctx.memory_barrier()

    def resident(self, level: int = 0) -> dict[tuple[int, int, int], np.ndarray]:
        """Every resident tile, (mip, tile x, tile y) -> its slot's texels at `level`, (side, side, 4 * groups) at
        level 0 (half the side at level 1), in [0, 1]."""
        side = self.side >> level
        raw = read_array_level(self.cache, level, side * side * 4 * self.slots.count * self.groups)
        data = np.frombuffer(raw, np.uint8).reshape(-1, self.groups, side, side, 4)
        return {self.layout.tile_of(int(page)): np.concatenate(list(data[slot]), -1).astype(np.float32) / 255
                for slot, page in enumerate(self.slots.slot_page) if page >= 0}

    def release(self) -> None:
        for obj in (*self.tail, self.cache, self.page_table, self.needed, self.jobs, self.program):
            obj.release()
        self.tail = []
