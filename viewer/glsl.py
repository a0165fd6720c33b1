"""Shader loading: a tiny `#include` preprocessor, generated `#define`s, and readable compile errors.

Shaders live in `shaders/` (or a caller's folder, searched first). `#include "file"` is resolved from
there, each file at most once per shader, so shared code such as `ngtc_decode.glsl` is included, never
copied. `#version` stays the first line;
the generated `#define`s follow it, so included files can test them with `#ifdef`/`#ifndef`.
On a compile or link failure, `ShaderError` carries the driver's log and the offending lines of the
final source, numbered, with the file and line each came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import moderngl

SHADER_DIR = Path(__file__).resolve().parents[1] / "shaders"

Defines = Mapping[str, object]

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
_VERSION = re.compile(r"^\s*#\s*version\b")
# Line numbers in driver logs: Mesa "0:12(5): error", AMD/Intel "ERROR: 0:12:", NVIDIA "0(12) : error".
_LOG_LINE = (re.compile(r"^\s*(?:ERROR:\s*|WARNING:\s*)?\d+:(\d+)"), re.compile(r"^\s*\d+\((\d+)\)"))
CONTEXT_LINES = 2  # source lines shown either side of each line the log names


class ShaderError(RuntimeError):
    """A shader that cannot be preprocessed, compiled or linked; the message is ready to print."""


@dataclass
class Source:
    """Preprocessed GLSL and, for each of its lines, the (file, line) it came from."""

    text: str
    origins: list[tuple[str, int]]

    def numbered(self, lines: set[int] | None = None) -> str:
        """The source with line numbers; only `lines` (1-based) and their context if given."""
        rows = self.text.split("\n")
        keep = range(1, len(rows) + 1) if lines is None else sorted(
            {n for line in lines for n in range(line - CONTEXT_LINES, line + CONTEXT_LINES + 1)
             if 1 <= n <= len(rows)})
        out, last = [], 0
        for n in keep:
            if last and n != last + 1:
                out.append("     ...")
            file, line = self.origins[n - 1]
            mark = ">>" if lines and n in lines else "  "
            out.append(f"{mark}{n:4d} | {file}:{line:<4d} | {rows[n - 1]}")
            last = n
        return "\n".join(out)


def format_define(value: object) -> str:
    """A Python value as a GLSL literal: ints stay ints, floats always get a point."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = f"{value:.9g}"
        return text if any(c in text for c in ".eEn") else text + ".0"
    return str(value)


def preprocess(name: str, defines: Defines | None = None, shader_dir: Path | None = None) -> Source:
    """Resolve includes of shader `name` and insert `defines` right after its `#version` line.

    Files are looked up in `shader_dir` first, then in `shaders/`.
    """
    lines: list[tuple[str, tuple[str, int]]] = []
    dirs = tuple(dict.fromkeys(d for d in (shader_dir, SHADER_DIR) if d is not None))
    _expand(name, dirs, lines, included=set(), stack=())
    if not lines or not _VERSION.match(lines[0][0]):
        raise ShaderError(f"{name}: the first line must be #version")
    generated = [(f"#define {k} {format_define(v)}", ("<defines>", i + 1))
                 for i, (k, v) in enumerate((defines or {}).items())]
    lines[1:1] = generated
    return Source("\n".join(t for t, _ in lines) + "\n", [o for _, o in lines])


def _expand(name: str, dirs: tuple[Path, ...], out: list, included: set[str], stack: tuple[str, ...]) -> None:
    path = next((d / name for d in dirs if (d / name).is_file()), dirs[0] / name)
    try:
        text = path.read_text()
    except OSError as e:
        where = f" (included from {stack[-1]})" if stack else ""
        raise ShaderError(f"cannot read shader {path}{where}: {e.strerror}") from None
    included.add(name)
    for i, line in enumerate(text.splitlines(), 1):
        m = _INCLUDE.match(line)
        if m is None:
            if stack and _VERSION.match(line):
                raise ShaderError(f"{name}:{i}: #version in an included file")
            out.append((line, (name, i)))
        elif m.group(1) not in included:  # once per shader: includes need no guards, cycles stop
            _expand(m.group(1), dirs, out, included, (*stack, name))


def _stage_logs(message: str) -> dict[str, str]:
    """moderngl's error text ("GLSL Compiler failed\\n\\n<stage>\\n=====\\n<log>") split per stage."""
    parts = re.split(r"^(\w+)\n=+\n", message, flags=re.M)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def _log_lines(log: str) -> set[int]:
    found = set()
    for row in log.splitlines():
        for pattern in _LOG_LINE:
            m = pattern.match(row)
            if m:
                found.add(int(m.group(1)))
                break
    return found


def explain(error: Exception, sources: Mapping[str, tuple[str, Source]]) -> ShaderError:
    """Turn moderngl's error into one naming the shader files, with the offending lines numbered.

    `sources` maps moderngl's stage name (e.g. "fragment_shader") to (shader file, preprocessed source).
    """
    message = str(error)
    logs = _stage_logs(message)
    parts = [message.splitlines()[0] if message else "shader error"]
    for stage, log in logs.items():
        if stage not in sources:  # the link log ("Program"): no single source to point into
            parts.append(f"{stage} ({', '.join(n for n, _ in sources.values())}):\n{log}")
            continue
        name, src = sources[stage]
        lines = {n for n in _log_lines(log) if 1 <= n <= len(src.origins)}
        parts.append(f"{stage} {name}:\n{log}\n\n{src.numbered(lines or None)}")
    if not logs:
        parts.append(message)
    return ShaderError("\n\n".join(parts))


def compile_program(ctx: moderngl.Context, *, vertex: str, fragment: str | None = None,
                    geometry: str | None = None, defines: Defines | None = None, shader_dir: Path | None = None,
                    **kwargs) -> moderngl.Program:
    """A program from shader files (see `preprocess`); extra kwargs go to `ctx.program` (varyings...)."""
    stages = {"vertex_shader": vertex, "fragment_shader": fragment, "geometry_shader": geometry}
    sources = {k: (v, preprocess(v, defines, shader_dir)) for k, v in stages.items() if v is not None}
    try:
        return ctx.program(**{k: s.text for k, (_, s) in sources.items()}, **kwargs)
    except moderngl.Error as e:
        raise explain(e, sources) from None


def compile_compute(ctx: moderngl.Context, name: str, defines: Defines | None = None,
                    shader_dir: Path | None = None) -> moderngl.ComputeShader:
    """A compute shader from a shader file (see `preprocess`)."""
    src = preprocess(name, defines, shader_dir)
    try:
        return ctx.compute_shader(src.text)
    except moderngl.Error as e:
        raise explain(e, {"compute_shader": (name, src)}) from None

