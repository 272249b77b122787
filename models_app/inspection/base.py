"""What every format reader shares: the result, the caps, and reads that never leave the file.

Nothing here executes or imports anything from a file. Readers raise ``Malformed`` for a file
that breaks its format and ``LimitReached`` when a cap (size, count, time) is hit; the
dispatcher in ``__init__`` turns both into findings, so a bad file never crashes an upload.
"""

import time
from dataclasses import dataclass, field
from typing import BinaryIO

DANGER = "danger"  # loading the file runs code that can harm the machine
WARNING = "warning"  # worth a reviewer's look (unusual content, a cap was hit)
ERROR = "error"  # the file does not follow its format
INFO = "info"  # a fact worth stating (e.g. "executes code when loaded")

MAX_SECONDS = 5.0  # per file
MAX_LIST = 100  # names, inputs, imports… kept in a summary
MAX_FINDINGS = 50
MAX_BLOCKING = 20  # reasons kept for the approval gate
MAX_TEXT = 300  # characters of any string value copied into a summary


class Malformed(Exception):
    """The file does not follow its format; the message says where."""


class LimitReached(Exception):
    """A size, count or time cap was reached; the message says which."""


@dataclass
class Inspection:
    format: str
    summary: dict = field(default_factory=dict)
    findings: list[dict] = field(default_factory=list)
    dangerous: bool = False

    def add(self, level: str, message: str) -> None:
        if level == DANGER:
            self.dangerous = True
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append({"level": level, "message": message})
        elif len(self.findings) == MAX_FINDINGS:
            self.findings.append({"level": WARNING, "message": "More findings left out."})

    def block(self, message: str) -> None:
        """An error that fails the approval gate "No file runs dangerous code when loaded":
        kept in the summary too, so that no cap on findings can drop it."""
        self.add(ERROR, message)
        reasons = self.summary.setdefault("fails_gate", [])
        if len(reasons) < MAX_BLOCKING:
            reasons.append(message)

    def not_verified(self, reason: str) -> None:
        """The file may run code when loaded and could not be checked to its end."""
        self.block(f"Not verified: {reason}.")

    @property
    def failed(self) -> bool:
        return any(f["level"] == ERROR for f in self.findings)

    def framework(self) -> tuple[str, str]:
        """(framework, version) the file shows, ("", "") when it says nothing reliable."""
        if self.failed:
            return "", ""
        return self.summary.get("framework", ""), self.summary.get("framework_version", "")

    def as_artifact_fields(self) -> dict:
        return {
            "format": self.format,
            "inspection": self.summary,
            "findings": self.findings,
            "dangerous": self.dangerous,
        }


class Deadline:
    def __init__(self, seconds: float = MAX_SECONDS):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise LimitReached(f"inspection stopped after {self.seconds:g} s")


def text(value, limit: int = MAX_TEXT) -> str:
    """A value as bounded text for a summary."""
    value = value if isinstance(value, str) else str(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


class Window:
    """Reads inside ``[0, size)`` of an open binary file only: a read that would pass the end
    is refused as truncated, whatever length or offset the file itself claims."""

    CACHE = 64 * 1024

    def __init__(self, f: BinaryIO, size: int, deadline: Deadline):
        self.f = f
        self.size = size
        self.deadline = deadline
        self._cache_at = -1
        self._cache = b""

    def read(self, offset: int, length: int, what: str = "data") -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise Malformed(
                f"truncated: {what} needs bytes {offset:,}–{offset + length:,} "
                f"but the file has {self.size:,}"
            )
        start = self._cache_at
        if start >= 0 and start <= offset and offset + length <= start + len(self._cache):
            return self._cache[offset - start : offset - start + length]
        if length >= self.CACHE:
            self.f.seek(offset)
            data = self.f.read(length)
        else:
            self.f.seek(offset)
            self._cache = self.f.read(min(self.CACHE, self.size - offset))
            self._cache_at = offset
            data = self._cache[:length]
        if len(data) != length:
            raise Malformed(f"truncated: could not read {what} at byte {offset:,}")
        return data


class BoundedReader:
    """A file-like view of a stream that hands out at most ``limit`` bytes in total and never
    asks the stream for more than it may hand out (a pickle's claimed length of 2**63 bytes
    must not become an allocation)."""

    def __init__(self, stream, limit: int, deadline: Deadline | None = None):
        self.stream = stream
        self.left = limit
        self.pos = 0
        self.deadline = deadline
        self.asked_past_limit = False

    def read(self, n: int = -1) -> bytes:
        if self.deadline is not None:
            self.deadline.check()
        if n is None or n < 0 or n > self.left:
            self.asked_past_limit = self.asked_past_limit or (n is not None and n > self.left)
            n = self.left
        data = self.stream.read(n) if n else b""
        self.left -= len(data)
        self.pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        cap = 64 * 1024 if limit is None or limit < 0 else min(limit, 64 * 1024)
        cap = min(cap, self.left)
        out = bytearray()
        while len(out) < cap:
            ch = self.stream.read(1)
            if not ch:
                break
            out += ch
            if ch == b"\n":
                break
        self.left -= len(out)
        self.pos += len(out)
        return bytes(out)

    def tell(self) -> int:
        return self.pos

    def skip(self, n: int) -> int:
        """Pass over ``n`` bytes that are not pickle data (raw array bytes), outside the cap;
        returns how many there were."""
        done = 0
        while done < n:
            if self.deadline is not None:
                self.deadline.check()
            data = self.stream.read(min(n - done, 1024 * 1024))
            if not data:
                break
            done += len(data)
        self.pos += done
        return done

    def peek_eof(self) -> bool:
        """True when nothing is left to read (consumes nothing on seekable streams). Data left
        past the byte cap is not the end: it is the cap."""
        if self.left <= 0:
            if self._stream_has_more():
                self.asked_past_limit = True
                raise LimitReached("more data than the scan reads")
            return True
        return not self._stream_has_more()

    def _stream_has_more(self) -> bool:
        if hasattr(self.stream, "peek"):
            return bool(self.stream.peek(1))
        if hasattr(self.stream, "seek") and hasattr(self.stream, "tell"):
            here = self.stream.tell()
            more = self.stream.read(1)
            self.stream.seek(here)
            return bool(more)
        raise TypeError("the stream can neither peek nor seek")
