"""The scene: the material, its texture set per mode, the mesh, and the background jobs that load them.

Loading a material (decoding PNGs, building the reference mip chain), reading a `.ngtc`, loading a mesh and
encoding ASTC (`models.astc.encode_material`, which runs the encoder in a subprocess: of the material, or of the
`.ngtc` decoded on load for the transcoded modes, `viewer.transcode`) run in background threads
(`viewer.jobs`); their GPU uploads happen in `poll`, on the main thread, when they finish. A failure goes to the
log and the current scene stays (and a failed mode is not asked for again until the errors are dismissed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import moderngl

from models import astc

from .errors import ViewerError, one_line
from .jobs import Job
from .log import Log
from .materials_gl import (
    TextureSet,
    astc_set,
    cache_root,
    find_astc_dir,
    find_ngtc_presets,
    neural_sets,
    psnr_per_mip,
    reference_set,
    report_psnr,
    transcoded_set,
)
from .mesh import MeshData, load_mesh, quad_mesh
from .modes import (
    MODES,
    NEURAL_MODES,
    TRANSCODE_PREFIX,
    astc_block,
    loaded_on_demand,
    preset_key,
    preset_modes,
    preset_of,
    transcode_block,
)
from .neural_gl import read_decoded_chain
from .transcode import DecodedChain, expected_bytes, fingerprint, measure, transcode

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MATERIAL = ROOT / "assets" / "tiles"
DEFAULT_MESH = ROOT / "assets" / "meshes" / "material-sphere.obj"
ASTC_PRESET = "medium"


def resolve_inputs(target: Path | None, ngtc: Path | None = None) -> tuple[Path | None, Path | None]:
    """(material, ngtc) from a command-line argument: a material folder or glTF file (its `.ngtc` beside it,
    same stem, is picked up), or an `.ngtc` (its material beside it, same stem, when present)."""
    if target is None:
        target = DEFAULT_MATERIAL
        if ngtc is None and target.with_suffix(".ngtc").is_file():
            ngtc = target.with_suffix(".ngtc")
        return target, ngtc
    target = Path(target)
    if target.suffix.lower() == ".ngtc":
        if not target.is_file():
            raise ViewerError(f"{target}: no such file")
        sibling = target.with_suffix("")
        return (sibling if sibling.exists() else None), ngtc or target
    if not target.exists():
        raise ViewerError(f"{target}: no such file or folder")
    if ngtc is None:
        candidate = target.with_suffix(".ngtc") if target.is_file() else target.parent / f"{target.name}.ngtc"
        ngtc = candidate if candidate.is_file() else None
    return target, ngtc


def astc_progress(out_dir: Path, since: float, expected_bytes: int) -> float:
    """How much of an ASTC encoding into `out_dir` is written: bytes of `.astc` files newer than `since`."""
    written = 0
    for f in out_dir.glob("*.astc"):
        st = f.stat()
        if st.st_mtime >= since:
            written += st.st_size
    return min(written / max(expected_bytes, 1), 1.0)


def release_sets(sets: dict[str, TextureSet], modes: Iterable[str]) -> None:
    """Release and forget `modes`' sets; the sets that own shared GL data (the neural upload) go last."""
    for mode in sorted((m for m in modes if m in sets), key=lambda m: sets[m].owns_neural):
        sets.pop(mode).release()


class Scene:
    """`on_mesh(mesh)` runs when a mesh has loaded (the viewer frames its camera on it)."""

    def __init__(self, ctx: moderngl.Context, log: Log, on_mesh: Callable[[MeshData], None]):
        self.ctx, self.log, self.on_mesh = ctx, log, on_mesh
        self.sets: dict[str, TextureSet] = {}
        self.presets: dict[str, Path] = {}  # further .ngtc files of the material, by preset: modes "neural@<key>"
        self.failed: set[str] = set()  # modes whose loading failed: not asked for again until dismissed
        self.material = None
        self.fingerprint: str | None = None
        self.material_path: Path | None = None
        self.ngtc_path: Path | None = None
        self.mesh_path: Path | None = None
        self.mesh: MeshData | None = None
        self.quad: MeshData | None = None
        self.report: dict[str, list[float]] = {}
        self.jobs: list[Job] = []
        self.cache_mib: float | None = None  # neural-feedback's tile cache budget (None: the default)

    # ------------------------------------------------------------------------------------- jobs

    def start(self, label: str, work: Callable[[], Any], done: Callable[[Any], None], **kwargs) -> None:
        self.jobs.append(Job(label, work, done, **kwargs))

    def busy(self, label: str) -> bool:
        return any(job.label == label for job in self.jobs)

    def poll(self) -> None:
        """Finish the jobs that are done: their `done` (the GPU uploads) runs here, on the main thread."""
        for job in [j for j in self.jobs if not j.thread.is_alive()]:
            self.jobs.remove(job)
            try:
                if job.error is not None:
                    raise job.error
                job.done(job.result)
            except Exception as e:  # noqa: BLE001 - any failure: show it, keep the scene
                self.failed.update(job.modes)
                self.log.error(f"{job.label}: {one_line(e)}")

    def wait(self, shown: set[str], timeout: float = 600.0) -> None:
        """Finish every job (and whatever the `shown` modes need), uploading their results."""
        end = time.perf_counter() + timeout
        while True:
            self.ensure(shown)
            if not self.jobs:
                return
            for job in list(self.jobs):
                job.thread.join(max(0.0, end - time.perf_counter()))
            self.poll()
            if time.perf_counter() > end:
                raise ViewerError(f"loading did not finish in {timeout:.0f} s")

    # ------------------------------------------------------------------------------------- modes

    def modes(self) -> list[str]:
        return [*MODES, *(m for k in self.preset_keys() for m in preset_modes(k))]

    def preset_keys(self) -> list[str]:
        """The further presets, less the `.ngtc` the plain neural modes show."""
        primary = self.ngtc_path.resolve() if self.ngtc_path else None
        return [k for k, p in self.presets.items() if primary is None or p.resolve() != primary]

    def ensure(self, shown: set[str]) -> None:
        """Start what the `shown` modes need: ASTC encodings and further .ngtc presets load on demand (once: a
        mode that failed waits until the errors are dismissed)."""
        for mode in shown:
            if mode in self.sets or mode in self.failed:
                continue
            if astc_block(mode):
                self.request_astc(astc_block(mode))
            elif transcode_block(mode):
                self.request_transcode(transcode_block(mode))
            elif preset_of(mode):
                self.request_preset(preset_of(mode))

    def search_roots(self, *paths: Path | None) -> list[Path]:
        """Where `ngtc eval` outputs (report/astc, report/ngtc) about the scene's files may be."""
        near = [q.parent for q in (*paths, self.material_path, self.ngtc_path) if q is not None]
        return list(dict.fromkeys([Path.cwd(), ROOT, *near, *(q.parent for q in near)]))

    # ------------------------------------------------------------------------------------- loaders

    def load_material(self, path: Path | str) -> None:
        from models.astc import material_fingerprint
        from models.material import load_material

        path = Path(path)

        def work():
            material = load_material(path)
            material.mip_chain()
            fingerprint = material_fingerprint(material)
            return material, fingerprint, find_ngtc_presets(self.search_roots(path), fingerprint)

        def done(result) -> None:
            material, fingerprint, presets = result
            ref = reference_set(self.ctx, material)
            release_sets(self.sets, [m for m in self.sets if m == "reference" or loaded_on_demand(m)])
            self.sets["reference"] = ref
            self.material, self.fingerprint, self.material_path = material, fingerprint, path
            self.presets, self.failed = presets, set()
            self.quad = quad_mesh(material.width, material.height)
            self.read_reports()
            self.log.note(f"material {material.name}: {material.width}x{material.height}, "
                          f"{material.channels} channels")

        self.start(f"material {path.name}", work, done)

    def load_ngtc(self, path: Path | str, preset: str | None = None) -> None:
        """The neural modes from a `.ngtc`; with `preset`, a further set of them ("neural@<preset>", ...)."""
        from models import ngtc_file

        path = Path(path)
        modes = preset_modes(preset) if preset else NEURAL_MODES

        def done(ct) -> None:
            sets = neural_sets(self.ctx, ct, self.cache_mib)
            release_sets(self.sets, [*modes, *([] if preset else [m for m in self.sets if transcode_block(m)])])
            for s, mode in zip(sets, modes, strict=True):
                s.mode = mode
                self.sets[mode] = s
            if preset:
                self.presets[preset] = path
            else:
                self.ngtc_path = path
            self.read_reports()
            self.log.note(f"neural texture {path.name}: {ct.width}x{ct.height}, {ct.mips} mips")

        self.start(f"ngtc {path.name}", lambda: ngtc_file.load(path), done, modes=modes)

    def add_ngtc(self, path: Path | str) -> None:
        """A further `.ngtc` (another preset of the material) as extra neural modes, named after its file."""
        path = Path(path)
        if not path.is_file() or path.suffix.lower() != ".ngtc":
            self.log.error(f"{path}: not an .ngtc file")
            return
        same = [k for k, p in self.presets.items() if p.resolve() == path.resolve()]
        self.load_ngtc(path, same[0] if same else preset_key(path, self.material.name if self.material else "",
                                                             self.presets))

    def request_preset(self, key: str) -> None:
        modes = preset_modes(key)
        if any(job.label.startswith("material ") for job in self.jobs):
            return  # the presets of the material being loaded are not known yet
        if key not in self.presets:
            self.failed.update(modes)
            self.log.error(f"no .ngtc with preset {key!r} for this material (from `ngtc eval`, in report/ngtc/, "
                           f"or added with 'add .ngtc')")
        elif not self.busy(f"ngtc {self.presets[key].name}"):
            self.load_ngtc(self.presets[key], key)

    def load_mesh(self, path: Path | str) -> None:
        path = Path(path)

        def done(mesh: MeshData) -> None:
            self.mesh, self.mesh_path = mesh, path
            self.on_mesh(mesh)
            self.log.note(f"mesh {mesh.name}: {len(mesh.indices):,} triangles")

        self.start(f"mesh {path.name}", lambda: load_mesh(path), done)

    def request_astc(self, block: str, preset: str = ASTC_PRESET) -> None:
        """ASTC at `block`: from an `ngtc eval` folder when one matches the material, else encoded now (in a
        background thread; the encoder itself runs in a subprocess) into the cache."""
        mode, label = f"astc-{block}", f"ASTC {block}"
        if mode in self.sets or self.busy(label) or self.material is None:
            return
        material, material_fp, roots = self.material, self.fingerprint, self.search_roots()
        out = cache_root() / "astc" / f"{material.name}-{material_fp[:16]}" / f"{block}_{preset}"

        def work():
            found = find_astc_dir(material, block, roots, material_fp)
            if found is None:
                astc.encode_material(material, block, preset, out, material_fp)
                found = out
            chain = astc.decode_dir(found, material.maps)
            return found, psnr_per_mip(chain, material.mip_chain())

        def done(result) -> None:
            out_dir, psnr = result
            if self.material is not material:
                return  # the material changed meanwhile; ensure asks again
            tset = astc_set(self.ctx, out_dir, material.maps)
            tset.psnr = psnr
            self.sets[mode] = tset
            self.log.note(f"{label} from {out_dir}")

        self._start_encoding(label, mode, out, expected_bytes(material.maps, material.width, material.height, block),
                             work, done)

    def _start_encoding(self, label: str, mode: str, out: Path, expected: int, work: Callable[[], Any],
                        done: Callable[[Any], None]) -> None:
        """A background ASTC encoding into `out`, its progress the bytes of `.astc` files written there."""
        since = time.time() - 1.0  # file times may be rounded
        self.start(label, work, done, modes=(mode,), progress=lambda: astc_progress(out, since, expected))

    def request_transcode(self, block: str) -> None:
        """Transcoded on load at `block`: the `.ngtc`'s decoded-on-load chains read back, encoded by astcenc into the
        cache (a background thread; the encoder in a subprocess), uploaded like the ASTC modes."""
        mode, label = f"{TRANSCODE_PREFIX}{block}", f"neural -> ASTC {block}"
        neural = self.sets.get("neural")
        if mode in self.sets or self.busy(label) or any(job.label.startswith("ngtc ") for job in self.jobs):
            return
        if neural is None:
            self.failed.add(mode)
            self.log.error(f"{label}: needs an .ngtc (load one)")
            return
        decoded = self.decoded_chain(neural)
        reference = self.reference_for(decoded)
        out = cache_root() / "astc" / f"neural-{fingerprint(decoded)[:16]}" / f"{block}_{ASTC_PRESET}"

        def work():
            transcode(decoded, block, out)
            return measure(decoded.chain, astc.decode_dir(out, decoded.maps), reference)

        def done(loss) -> None:
            if self.sets.get("neural") is not neural:
                return  # another .ngtc meanwhile; ensure asks again
            self.sets[mode] = transcoded_set(self.ctx, out, neural, block, loss)
            self.log.note(f"{label}: {loss.summary()}")

        self._start_encoding(label, mode, out, expected_bytes(decoded.maps, neural.width, neural.height, block),
                             work, done)

    def decoded_chain(self, neural: TextureSet) -> DecodedChain:
        """The decoded-on-load chains of the neural set, read back from the GPU."""
        ngl = neural.neural
        name = ngl.compressed.info.material or Path(ngl.name).stem
        return DecodedChain(name, list(ngl.compressed.layout), read_decoded_chain(neural.textures, ngl.channels,
                                                                                   ngl.mips))

    def reference_for(self, decoded: DecodedChain) -> list | None:
        """The material's reference chain when it is the one the `.ngtc` holds (same size and channels)."""
        chain = self.material.mip_chain() if self.material is not None else None
        return chain if chain and chain[0].shape == decoded.texels.shape else None

    def read_reports(self) -> None:
        """PSNR per mip from an `ngtc eval` report.json about this material, when one is around."""
        candidates = [Path.cwd() / "report" / "report.json"]
        for p in (self.ngtc_path, self.material_path, *self.presets.values()):
            if p is not None:
                candidates += [p.parent / "report.json", p.parent.parent / "report.json",
                               p.parent / "report" / "report.json"]
        self.report = {}
        neural = {None: self.ngtc_path, **{k: self.presets[k] for k in self.preset_keys()}}
        for c in [c for c in dict.fromkeys(candidates) if c.is_file()]:
            for key, path in neural.items():
                for mode, values in report_psnr(c, self.fingerprint, path).items():
                    if mode == "neural":
                        for m in preset_modes(key) if key else NEURAL_MODES:
                            self.report.setdefault(m, values)
                    elif key is None:
                        self.report.setdefault(mode, values)

    def mips(self) -> int:
        return max((s.mips for s in self.sets.values()), default=1)

    def release(self) -> None:
        release_sets(self.sets, list(self.sets))
