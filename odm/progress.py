"""Progress of a long copy (``odm copy``): a one-line bar on a terminal, plain lines elsewhere.

On a TTY the line is redrawn in place with ``\\r`` (items done/total, rate, ETA); in a log file
or a CI job, where a redrawn line would be noise, a plain line is written every ``interval``
seconds (0: after every batch) and when each model ends.
"""

from __future__ import annotations

import time
from typing import TextIO

#: Redraws of the terminal bar are at most this often (a fast copy would otherwise spend its time drawing).
REDRAW_SECONDS = 0.1
BAR_WIDTH = 24


def duration(seconds: float) -> str:
    """``1:02:03`` / ``2:03``: an ETA as a person reads it."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Reports one model at a time: ``start``, ``advance`` after each batch, ``finish``."""

    def __init__(self, stream: TextIO, tty: bool | None = None, interval: float = 5.0) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.interval = interval
        self.name = ""
        self.total = 0
        self.done = 0
        self.resumed = 0
        self.started = 0.0
        self.shown = 0.0
        self.printed = -1

    def start(self, name: str, total: int, done: int = 0) -> None:
        """A model begins; ``done`` items were copied by an earlier, interrupted run."""
        self.name, self.total, self.done, self.resumed = name, total, done, done
        self.started = self.shown = time.monotonic()
        if self.tty:
            self._draw()
        else:
            again = f", resuming after {done}" if done else ""
            self._line(f"{name}: copying {total} items{again}")

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty:
            if now - self.shown >= REDRAW_SECONDS:
                self.shown = now
                self._draw()
        elif now - self.shown >= self.interval:
            self.shown = now
            self._line(self.text())
            self.printed = self.done

    def finish(self) -> None:
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        elif self.printed != self.done:
            self._line(self.text())

    def note(self, text: str) -> None:
        """A line of its own (between two models' bars on a terminal)."""
        self._line(text)

    def rate(self) -> float:
        """Items per second in this run (the resumed part was copied earlier)."""
        elapsed = time.monotonic() - self.started
        return (self.done - self.resumed) / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        rate = self.rate()
        left = max(self.total - self.done, 0)
        eta = duration(left / rate) if rate > 0 else "?"
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        return f"{self.name}: {self.done}/{self.total} items{share}, {rate:,.0f} items/s, ETA {eta}"

    def _draw(self) -> None:
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * min(filled, BAR_WIDTH) + "-" * max(BAR_WIDTH - filled, 0)
        self.stream.write(f"\r\x1b[K[{bar}] {self.text()}")
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
