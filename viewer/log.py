"""What the panel reports: errors (in red, until dismissed) and the last few messages."""

from __future__ import annotations

from collections import deque

MAX_ERRORS = 8
MAX_MESSAGES = 5


class Log:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.messages: deque[str] = deque(maxlen=MAX_MESSAGES)

    def error(self, message: str) -> None:
        self.errors.append(message)
        del self.errors[:-MAX_ERRORS]

    def note(self, message: str) -> None:
        self.messages.append(message)
