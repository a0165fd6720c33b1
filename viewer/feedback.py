"""Neural on feedback (mode `neural-feedback`): virtual texturing of a `.ngtc`, decoded tile by tile where the view
needs it, into a cache of fixed size.

    cache = TileCache(ctx, ngl)                  # ngl: viewer.neural_gl.NeuralGL; cache_mib=None: default_cache_mib
    cache.bind(program)                          # before drawing with MAT_FEEDBACK (shaders/feedback_sample.glsl)
    stats = cache.update()                       # after the frame: read the requests back, decode missing tiles

- Layout: mips below `tail` (the first mip that fits one tile) are cut into `tile` x `tile` texel tiles, one page
  each, mip after mip; the tail (that mip and every coarser one) is decoded on load into ordinary RGBA8 chains and
  stays resident, so a pixel always has something to show.
- Cache: an RGBA8 texture array with 2 levels, `groups` layers a slot (channels 4g .. 4g+3), each slot
  (tile + 2 border)^2 texels, its tile and the neighbouring tiles' texels around it (seamless filtering), and at
  level 1 the same region of the next mip: one hardware trilinear read filters a pixel between its two mips.
  As many slots as `cache_mib` buys (at most one per page). The default budget (`default_cache_mib`) follows the
  material: at most `MAX_DEFAULT_CACHE_MIB`, and small enough that the whole mode holds at most a quarter of
  decoded on load's bytes, but never less than the slots of the coarsest tiled mip.
- Page table: an int SSBO, the slot of each page or -1. Requests: a bit per page (SSBO, atomicOr) set by every
  pixel for the tile of the finer of its two mips.
- update(): the requested pages not resident, coarsest mip first (they are the fallback of finer ones), at most
  `decodes_per_frame` of them, go to free slots, else to the least recently requested slots not requested this
  frame; one compute dispatch (shaders/feedback_decode.comp, the one decoder) fills them.
- Readback without a stall (`lag` 1, the default): after a pass the GPU copies the request bits into one of
  `lag + 1` small buffers, clears them and sets a fence; update() reads the buffer of the pass `lag` frames back,
  whose fence the GPU has passed, so the CPU never waits for the frame it just submitted, and tiles are decoded a
  frame later. `lag` 0 reads the bits at once (glFinish-like: the CPU waits for the pass).
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field

import moderngl
import numpy as np

from models.spec import mip_size

from .errors import ViewerError
from .gl_upload import GL_RGBA, GL_UNSIGNED_BYTE, RawGL, chain_bytes
from .glsl import compile_compute
from .neural_gl import NeuralGL, decode_to_textures

TILE = 128  # payload texels per tile side
BORDER = 2  # texels of the neighbours around a slot: bilinear filtering reads one, at level 1 too (2 / 2)
MAX_DEFAULT_CACHE_MIB = 8.0  # the default budget's ceiling (default_cache_mib)
DEFAULT_BYTES_SHARE = 0.25  # issue 11: by default the mode holds at most this share of decoded on load's bytes
MAX_CACHE_MIB = 4096.0
DECODES_PER_FRAME = 16  # tiles a frame at most: bounds the frame's decode time
CACHE_UNIT = 8  # texture unit of the cache array (the tail chains use 0 ..)
PAGES_BINDING, NEEDED_BINDING, JOBS_BINDING = 3, 4, 5  # SSBOs (the decoder's weights: 6, decode on load: 7)
GROUP = 8  # local_size of feedback_decode.comp
GL_PACK_ALIGNMENT = 0x0D05
READBACK_LAG = 1  # frames from a pass to the decode of the tiles it asked for (0: read back at once, a stall)
GL_SYNC_GPU_COMMANDS_COMPLETE, GL_SYNC_FLUSH_COMMANDS_BIT, GL_TIMEOUT_EXPIRED = 0x9117, 0x1, 0x911B


def slot_size(tile: int, channels: int) -> int:
    """Bytes of one cache slot: both levels of every layer (RGBA8)."""
    side = tile + 2 * BORDER
    return (side * side + (side // 2) ** 2) * 4 * -(-channels // 4)


def read_array_level(tex: moderngl.TextureArray, level: int, size: int) -> bytes:
    """Level `level` of an RGBA8 texture array, all layers (moderngl reads level 0 only)."""
    gl = RawGL.lib()
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


def mode_parts(layout: TileLayout, channels: int, slots: int, decodes_per_frame: int,
               lag: int = READBACK_LAG) -> dict[str, int]:
    """Bytes on the GPU by part of the feedback mode's cache with `slots` slots (TileCache.parts; the grids and
    weights, which every neural mode holds, aside). requests: the bits the pass sets, the `lag + 1` buffers they are
    copied to for the CPU, and the zeros that clear them."""
    groups = -(-channels // 4)
    tail = sum(math.prod(mip_size(layout.width, layout.height, m)) for m in range(layout.tail, layout.mips))
    bits = 4 * max(1, -(-layout.pages // 32))
    return {"cache": slot_size(layout.tile, channels) * slots, "tail": tail * 4 * groups,
            "page_table": 4 * max(1, layout.pages), "requests": bits * (1 + (lag + 2 if lag else 0)),
            "jobs": 16 * max(1, decodes_per_frame)}


class Fence:
    """A GL fence (glFenceSync): set after commands, waited on before reading what they wrote."""

    def __init__(self) -> None:
        gl = RawGL.lib()
        gl.glFenceSync.restype = ctypes.c_void_p
        gl.glFenceSync.argtypes = [ctypes.c_uint, ctypes.c_uint]
        gl.glClientWaitSync.restype = ctypes.c_uint
        gl.glClientWaitSync.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint64]
        gl.glDeleteSync.argtypes = [ctypes.c_void_p]
        self.gl, self.sync = gl, gl.glFenceSync(GL_SYNC_GPU_COMMANDS_COMPLETE, 0)

    def wait(self) -> None:
        """Until the GPU has passed the fence (at once when it has, as `lag` frames after it it should)."""
        while self.gl.glClientWaitSync(self.sync, GL_SYNC_FLUSH_COMMANDS_BIT, 10**9) == GL_TIMEOUT_EXPIRED:
            pass

    def release(self) -> None:
        self.gl.glDeleteSync(self.sync)


def default_cache_mib(ngl: NeuralGL, tile: int = TILE, decodes_per_frame: int = DECODES_PER_FRAME,
                      lag: int = READBACK_LAG) -> float:
    """The cache budget when none is given: `MAX_DEFAULT_CACHE_MIB`, or less, so that the mode (grids and weights,
    tail, page table, request bits, job list and cache) holds at most `DEFAULT_BYTES_SHARE` of decoded on load's
    bytes (its RGBA8 chains and the grids and weights); never less than the coarsest tiled mip's tiles (with the
    tail always resident, the next mip whole), one tile at least."""
    layout = TileLayout(ngl.width, ngl.height, ngl.mips, tile)
    decoded_on_load = chain_bytes(ngl.width, ngl.height, ngl.mips) * -(-ngl.channels // 4) + ngl.gpu_bytes
    rest = sum(mode_parts(layout, ngl.channels, 0, decodes_per_frame, lag).values()) + ngl.gpu_bytes
    slot = slot_size(tile, ngl.channels)
    floor = slot * max(1, math.prod(layout.grid(layout.tail - 1)) if layout.tail else 1)
    share = (DEFAULT_BYTES_SHARE * decoded_on_load - rest) // slot * slot  # whole slots
    return max(floor, min(MAX_DEFAULT_CACHE_MIB * 2**20, share)) / 2**20


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

    def __init__(self, ctx: moderngl.Context, ngl: NeuralGL, cache_mib: float | None = None,
                 tile: int = TILE, decodes_per_frame: int = DECODES_PER_FRAME, lag: int = READBACK_LAG):
        if lag < 0:
            raise ValueError(f"readback lag {lag}: 0 or more frames")
        self.default_budget = cache_mib is None
        cache_mib = default_cache_mib(ngl, tile, decodes_per_frame, lag) if cache_mib is None else cache_mib
        self.cache_mib = check_cache_mib(cache_mib)
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
        self.quiet = 0  # updates in a row that decoded nothing
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
        self.lag, self.zeros, self.readback, self.pending = 0, None, [], []
        self.set_lag(lag)
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
        self.drop_pending()
        self.quiet = 0

    def set_lag(self, lag: int) -> None:
        """Read the requests back `lag` frames after their pass (0: at once); what is in flight is dropped."""
        if lag < 0:
            raise ValueError(f"readback lag {lag}: 0 or more frames")
        self.drop_pending()
        for buf in (*self.readback, *([self.zeros] if self.zeros is not None else [])):
            buf.release()
        self.lag = lag
        self.zeros = self.ctx.buffer(bytes(self.needed.size)) if lag else None  # clears `needed` on the GPU
        self.readback = [self.ctx.buffer(reserve=self.needed.size) for _ in range(lag + 1 if lag else 0)]
        self.pending: list[tuple[Fence, np.ndarray] | None] = [None] * len(self.readback)  # fence, table seen
        self.quiet = 0

    def drop_pending(self) -> None:
        for k, pending in enumerate(self.pending):
            if pending is not None:
                pending[0].release()
                self.pending[k] = None

    @property
    def parts(self) -> dict[str, int]:
        """Bytes on the GPU by part (gpu_bytes is their sum)."""
        return mode_parts(self.layout, self.ngl.channels, self.slots.count, self.decodes_per_frame, self.lag)

    def summary(self) -> str:
        """One line for the panel: the budget, slots in use, and the last frame's requests, hits and decodes."""
        used, last = int((self.slots.slot_page >= 0).sum()), self.last
        budget = f"{self.cache_mib:.2f} MiB{' (default)' if self.default_budget else ''}"
        return (f"tile cache {budget}: {used}/{self.slots.count} slots ({self.layout.pages} tiles); last frame "
                f"{last.requested} requested, {last.hit_rate:.0%} resident, {last.decoded} decoded")

    def pages_of(self, raw: bytes) -> np.ndarray:
        return np.flatnonzero(np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:self.layout.pages])

    def requested(self) -> tuple[np.ndarray | None, np.ndarray]:
        """The pages a pass asked for (None: no pass `lag` frames back yet), and the page table it read.

        lag 0: the pixels drawn since the last update, read at once (the CPU waits for them); else the bits are
        copied on the GPU behind a fence, and those of the pass `lag` updates back are read."""
        self.ctx.memory_barrier()  # the pass's atomicOr before the readback or the copy
        table = self.slots.page_slot.copy()  # what the pass just drawn read
        if not self.lag:
            pages = self.pages_of(self.needed.read())
            self.needed.clear()
            return pages, table
        k = self.frame % len(self.readback)
        self.ctx.copy_buffer(self.readback[k], self.needed)
        self.ctx.copy_buffer(self.needed, self.zeros)
        self.pending[k] = (Fence(), table)
        oldest = (self.frame + 1) % len(self.readback)  # set `lag` updates ago
        if self.pending[oldest] is None:
            return None, table
        fence, table = self.pending[oldest]
        self.pending[oldest] = None
        fence.wait()
        fence.release()
        return self.pages_of(self.readback[oldest].read()), table

    def update(self) -> FrameStats:
        """After a pass: decode the missing tiles a pass asked for (this one, or `lag` back), within the budget, and
        update the page table."""
        requested, seen = self.requested()
        if requested is None:  # nothing read back yet
            requested = np.zeros(0, np.int64)
        hits = int((seen[requested] >= 0).sum())
        jobs = self.slots.plan(requested, self.frame, self.decodes_per_frame, self.layout)
        if jobs:
            self.decode(jobs)
            self.page_table.write(self.slots.page_slot.tobytes())
        self.frame += 1
        self.quiet = 0 if jobs else self.quiet + 1
        self.last, self.last_pages = FrameStats(len(requested), hits, len(jobs)), requested
        for name in ("requested", "hits", "decoded"):
            setattr(self.total, name, getattr(self.total, name) + getattr(self.last, name))
        return self.last

    @property
    def settled(self) -> bool:
        """The last `lag + 1` updates decoded nothing: the view's tiles are in (or the cache holds no more)."""
        return self.quiet > self.lag

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
        self.drop_pending()
        for obj in (*self.tail, self.cache, self.page_table, self.needed, self.jobs, self.program, *self.readback,
                    *([self.zeros] if self.zeros is not None else [])):
            obj.release()
        self.tail = []
