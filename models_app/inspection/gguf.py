"""GGUF (llama.cpp): magic, version, tensor count, metadata key/value count and a few keys.

Every count and length is checked against the file's size before anything is read; arrays are
skipped by their length, string arrays walked under a cap.
"""

import struct

from models_app.inspection.base import Inspection, LimitReached, Malformed, Window, text

MAGIC = b"GGUF"
MAX_KEY = 64 * 1024
MAX_KV = 100_000
MAX_STRING = 64 * 1024 * 1024
MAX_WALK = 5_000_000  # string array elements walked in total
KEEP_PREFIXES = ("general.",)
KEEP_SUFFIXES = (".context_length", ".block_count", ".embedding_length", ".head_count")
KEEP_KEYS = {"tokenizer.ggml.model"}
# type id -> (struct format, size) for fixed-size scalars
SCALARS = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}  # fmt: skip
STRING, ARRAY = 8, 9


class _Cursor:
    def __init__(self, window: Window, pos: int):
        self.window, self.pos, self.walked = window, pos, 0

    def take(self, n: int, what: str) -> bytes:
        data = self.window.read(self.pos, n, what)
        self.pos += n
        return data

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]

    def skip(self, n: int, what: str) -> None:
        if self.pos + n > self.window.size:
            raise Malformed(f"truncated: {what} runs past the end of the file")
        self.pos += n

    def string(self, limit: int, what: str, keep: bool) -> str:
        length = self.u64(f"the length of {what}")
        if length > limit:
            raise LimitReached(f"{what} claims {length:,} bytes")
        if not keep:
            self.skip(length, what)
            return ""
        return self.take(length, what).decode("utf-8", errors="replace")


def inspect(window: Window, path: str, result: Inspection) -> None:
    cursor = _Cursor(window, 0)
    if cursor.take(4, "the magic") != MAGIC:
        raise Malformed("no GGUF magic")
    version = cursor.u32("the version")
    if version not in (1, 2, 3):
        raise Malformed(f"unknown GGUF version {version}")
    if version == 1:
        tensors, kv_count = cursor.u32("the tensor count"), cursor.u32("the metadata count")
    else:
        tensors, kv_count = cursor.u64("the tensor count"), cursor.u64("the metadata count")
    # Each tensor description takes at least 24 bytes, each key/value at least 13.
    if tensors * 24 > window.size or kv_count * 13 > window.size:
        raise Malformed(
            f"claims {tensors:,} tensors and {kv_count:,} metadata entries, more than "
            f"{window.size:,} bytes can hold"
        )
    if kv_count > MAX_KV:
        raise LimitReached(f"{kv_count:,} metadata entries")
    result.summary.update({"gguf_version": version, "tensors": tensors, "metadata_count": kv_count})
    kept: dict[str, object] = {}
    for i in range(kv_count):
        if i % 256 == 0:
            window.deadline.check()
        key = cursor.string(MAX_KEY, "a metadata key", keep=True)
        vtype = cursor.u32(f"the type of {text(key, 80)}")
        keep = (
            key.startswith(KEEP_PREFIXES) or key.endswith(KEEP_SUFFIXES) or key in KEEP_KEYS
        ) and len(kept) < 60
        value = _value(cursor, vtype, key, keep, depth=0)
        if keep and value is not None:
            kept[text(key, 100)] = value
    result.summary["metadata"] = kept
    result.summary["framework"] = "llama.cpp"
    if isinstance(kept.get("general.architecture"), str):
        result.summary["architecture"] = kept["general.architecture"]


def _value(cursor: _Cursor, vtype: int, key: str, keep: bool, depth: int):
    what = f"the value of {text(key, 80)}"
    if vtype in SCALARS:
        fmt, size = SCALARS[vtype]
        raw = cursor.take(size, what)
        return struct.unpack(fmt, raw)[0] if keep else None
    if vtype == STRING:
        value = cursor.string(MAX_STRING, what, keep)
        return text(value) if keep else None
    if vtype == ARRAY:
        if depth > 2:
            raise Malformed(f"{what}: arrays nested too deeply")
        item_type = cursor.u32(f"the item type of {text(key, 80)}")
        count = cursor.u64(f"the length of {text(key, 80)}")
        if item_type in SCALARS:
            cursor.skip(count * SCALARS[item_type][1], what)
        elif item_type in (STRING, ARRAY):
            if count * 8 > cursor.window.size:
                raise Malformed(f"{what} claims {count:,} items")
            for j in range(count):
                cursor.walked += 1
                if cursor.walked > MAX_WALK:
                    raise LimitReached("metadata arrays too long to walk")
                if j % 4096 == 0:
                    cursor.window.deadline.check()
                _value(cursor, item_type, key, False, depth + 1)
        else:
            raise Malformed(f"{what}: unknown item type {item_type}")
        return f"[{count:,} items]" if keep else None
    raise Malformed(f"{what}: unknown type {vtype}")
