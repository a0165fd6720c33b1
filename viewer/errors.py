"""The viewer's one error type: something it cannot show, said in one line."""

from __future__ import annotations


class ViewerError(ValueError):
    """Something the viewer cannot show (one line); the CLI prints it and exits with status 2."""


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) < 400 else text[:400] + "..."
