"""A small protobuf wire-format reader over a file window, for the few fields we want.

Messages are walked field by field; length-delimited fields are not read unless asked for, so
a 2 GB initializer costs one varint and a skip. Every length is checked against the enclosing
message and the file, and the number of fields walked is capped.
"""

from collections.abc import Iterator

from models_app.inspection.base import LimitReached, Malformed, Window

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_FIELDS = 2_000_000
MAX_STRING = 64 * 1024


class Budget:
    def __init__(self, fields: int = MAX_FIELDS):
        self.left = fields

    def spend(self, window: Window) -> None:
        self.left -= 1
        if self.left < 0:
            raise LimitReached(f"more than {MAX_FIELDS:,} protobuf fields")
        if self.left % 4096 == 0:
            window.deadline.check()


class Message:
    """The bytes ``[start, end)`` of the window, read as one protobuf message."""

    def __init__(self, window: Window, start: int, end: int, budget: Budget):
        if not 0 <= start <= end <= window.size:
            raise Malformed(f"a message spans bytes {start:,}–{end:,} outside the file")
        self.window, self.start, self.end, self.budget = window, start, end, budget

    def _varint(self, pos: int) -> tuple[int, int]:
        value = shift = 0
        for i in range(10):
            if pos + i >= self.end:
                raise Malformed(f"truncated varint at byte {pos:,}")
            byte = self.window.read(pos + i, 1, "a varint")[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value & 0xFFFFFFFFFFFFFFFF, pos + i + 1
            shift += 7
        raise Malformed(f"varint longer than 10 bytes at byte {pos:,}")

    def fields(self) -> Iterator[tuple[int, int, object]]:
        """(field number, wire type, value): an int for numbers, a Message-like span
        ``(start, end)`` for length-delimited fields."""
        pos = self.start
        while pos < self.end:
            self.budget.spend(self.window)
            key, pos = self._varint(pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise Malformed(f"field number 0 at byte {pos:,}")
            if wire == VARINT:
                value, pos = self._varint(pos)
            elif wire == I64:
                if pos + 8 > self.end:
                    raise Malformed(f"truncated 64-bit field at byte {pos:,}")
                value = int.from_bytes(self.window.read(pos, 8), "little")
                pos += 8
            elif wire == I32:
                if pos + 4 > self.end:
                    raise Malformed(f"truncated 32-bit field at byte {pos:,}")
                value = int.from_bytes(self.window.read(pos, 4), "little")
                pos += 4
            elif wire == LEN:
                length, pos = self._varint(pos)
                if pos + length > self.end:
                    raise Malformed(
                        f"field {number} claims {length:,} bytes at byte {pos:,}, past the end "
                        "of its message"
                    )
                value = (pos, pos + length)
                pos += length
            else:
                raise Malformed(f"unsupported wire type {wire} at byte {pos:,}")
            yield number, wire, value

    def sub(self, span: tuple[int, int]) -> "Message":
        return Message(self.window, span[0], span[1], self.budget)

    def string(self, span: tuple[int, int], limit: int = MAX_STRING) -> str:
        start, end = span
        data = self.window.read(start, min(end - start, limit), "a string")
        return data.decode("utf-8", errors="replace") + ("…" if end - start > limit else "")

    def packed_varints(self, span: tuple[int, int], limit: int = 64) -> list[int]:
        values, pos = [], span[0]
        while pos < span[1] and len(values) < limit:
            value, pos = Message(self.window, pos, span[1], self.budget)._varint(pos)
            values.append(value)
        return values


def signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
