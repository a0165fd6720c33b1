"""The panel's glTF scene section: the scene, each material's facts (click a row or a mesh to select it), the
compression of missing `.ngtc` files, and the GPU bytes of the whole scene in each mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .modes import MODES, mode_label

if TYPE_CHECKING:
    from .app import Viewer


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def scene_section(v: Viewer) -> None:
    g = v.gltf
    data, materials = g.data, g.materials
    imgui.text(f"{data.path.name}: {len(data.primitives)} primitives, {len(data.materials)} materials, "
               f"{len(data.mesh.indices):,} triangles")
    imgui.text(f"draws last pass: {g.draw.draws} (one per primitive + the depth pre-pass)")
    imgui.push_text_wrap_pos(0.0)
    imgui.text_disabled(f"missing .ngtc files: from an `ngtc compress` folder beside the scene, else compressed here "
                        f"in {materials.budget_text()}, one material at a time. Click a mesh to select its material.")
    imgui.pop_text_wrap_pos()
    for job in materials.jobs():
        fraction = job.fraction()
        overlay = f"{job.label}: {job.elapsed:.0f} s" if fraction is None else f"{job.label}: {fraction:.0%}"
        imgui.progress_bar(-1.0 * imgui.get_time() if fraction is None else fraction, imgui.ImVec2(-1, 0), overlay)
    _materials_table(v)
    _bytes_table(v)


def _materials_table(v: Viewer) -> None:
    g = v.gltf
    flags = imgui.TableFlags_.borders_inner_h | imgui.TableFlags_.row_bg | imgui.TableFlags_.sizing_fixed_fit
    if not imgui.begin_table("scene materials", 4, flags):
        return
    for title in ("material", "size, maps", ".ngtc", "alpha"):
        imgui.table_setup_column(title)
    imgui.table_headers_row()
    for index, facts in sorted(g.data.materials.items()):
        scene = g.materials.scenes.get(index)
        imgui.table_next_row()
        imgui.table_next_column()
        if imgui.selectable(f"{facts.name}##m{index}", g.selected == index,
                            imgui.SelectableFlags_.span_all_columns)[0]:
            g.select(index)
        imgui.table_next_column()
        m = scene.material if scene is not None else None
        imgui.text(f"{m.width}x{m.height} {','.join(x.name for x in m.maps if x.constant is None)}" if m
                   else "loading" if scene is not None else "factors only")
        imgui.table_next_column()
        neural = scene.sets.get("neural") if scene is not None else None
        imgui.text(f"{neural.bits_per_texel:.2f} bpp" if neural is not None and neural.bits_per_texel else
                   "compressing" if scene is not None and any(j.label.startswith("compress ") for j in scene.jobs)
                   else "-")
        if neural is not None and imgui.is_item_hovered():
            psnr = neural.psnr or []
            imgui.set_tooltip(f"{scene.ngtc_path}\nPSNR mip 0: {psnr[0]:.2f} dB" if psnr else str(scene.ngtc_path))
        imgui.table_next_column()
        imgui.text(facts.alpha_mode.lower())
    imgui.end_table()


def _bytes_table(v: Viewer) -> None:
    materials = v.gltf.materials
    rows = [(mode, *materials.gpu_bytes(mode)) for mode in MODES]
    rows = [r for r in rows if r[2]]
    flags = imgui.TableFlags_.borders_inner_h | imgui.TableFlags_.row_bg | imgui.TableFlags_.sizing_fixed_fit
    if not rows or not imgui.begin_table("scene bytes", 3, flags):
        return
    for title in ("whole scene, mode", "on GPU", "materials"):
        imgui.table_setup_column(title)
    imgui.table_headers_row()
    total = len(materials.scenes)
    for mode, size, loaded in rows:
        imgui.table_next_row()
        imgui.table_next_column()
        imgui.text(mode)
        if imgui.is_item_hovered():
            imgui.set_tooltip(mode_label(mode))
        imgui.table_next_column()
        imgui.text(human_bytes(size))
        imgui.table_next_column()
        imgui.text(f"{loaded}/{total}")
    imgui.end_table()
