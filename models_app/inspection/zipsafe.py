"""Reading zip-based model files (Keras ``.keras``, PyTorch ``.pt``) without trusting them.

The entry count is read from the end-of-central-directory record before Python's zipfile
builds its index (a million-entry directory would otherwise cost gigabytes of memory). Entry
names that would escape a folder when extracted, entries whose sizes claim a zip-bomb ratio,
and entries that overlap are findings. Entries are read through a byte cap, never extracted.
"""

import struct
import zipfile

from models_app.inspection.base import (
    DANGER,
    WARNING,
    Inspection,
    LimitReached,
    Malformed,
    Window,
    text,
)

MAX_ENTRIES = 10_000
MAX_CENTRAL_DIRECTORY = 16 * 1024 * 1024
MAX_RATIO = 100  # uncompressed / compressed, for entries over RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_TOTAL_UNCOMPRESSED = 64 * 1024**3

EOCD = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"


def is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _entry_count(window: Window) -> int:
    tail_size = min(window.size, 22 + 65535)
    tail = window.read(window.size - tail_size, tail_size, "the end of the zip directory")
    at = tail.rfind(EOCD)
    if at < 0 or at + 22 > len(tail):
        raise Malformed("no zip end-of-directory record: not a zip file, or truncated")
    entries = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    cd_size = struct.unpack("<I", tail[at + 12 : at + 16])[0]
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and at >= 20:
        locator = tail[at - 20 : at]
        if locator[:4] == ZIP64_LOCATOR:
            (record_at,) = struct.unpack("<Q", locator[8:16])
            record = window.read(record_at, 56, "the zip64 directory record")
            if record[:4] != b"PK\x06\x06":
                raise Malformed("the zip64 directory record is missing")
            entries, cd_size = struct.unpack("<QQ", record[32:48])
    if entries > MAX_ENTRIES:
        raise LimitReached(f"the zip lists {entries:,} entries; more than {MAX_ENTRIES:,}")
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise LimitReached(f"the zip directory is {cd_size:,} bytes; over the cap")
    return entries


def unsafe_name(name: str) -> str | None:
    """Why extracting an entry by this name could write outside its folder, or None."""
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "uses backslashes"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "climbs out of the folder with '..'"
    return None


def open_zip(f, window: Window, result: Inspection) -> zipfile.ZipFile:
    """The file as a ZipFile after its entries are checked; problems become findings."""
    count = _entry_count(window)
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error) as e:
        raise Malformed(f"not a readable zip ({text(e, 120)})") from None
    infos = archive.infolist()
    if len(infos) > max(count, 1) * 2:
        raise LimitReached("the zip directory holds more entries than it declares")
    total = 0
    bad_names = 0
    for info in infos:
        window.deadline.check()
        reason = unsafe_name(info.filename)
        if reason:
            bad_names += 1
            if bad_names <= 5:
                result.add(
                    DANGER,
                    f"Zip entry {text(info.filename, 120)!r} {reason}: extracting the file "
                    "would write outside its folder.",
                )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            result.add(
                WARNING,
                f"Zip entry {text(info.filename, 120)!r} expands {info.compress_size:,} bytes "
                f"to {info.file_size:,} (a zip bomb?); it is not read.",
            )
        total += info.file_size
    if total > MAX_TOTAL_UNCOMPRESSED:
        result.add(WARNING, f"The zip expands to {total:,} bytes in total (a zip bomb?).")
    spans = sorted((i.header_offset, i.header_offset + i.compress_size, i) for i in infos)
    for (_, end, info), (start, _, following) in zip(spans, spans[1:], strict=False):
        if start < end:
            result.add(
                WARNING,
                f"Zip entries {text(info.filename, 80)!r} and {text(following.filename, 80)!r} "
                "overlap (a zip bomb?).",
            )
            break
    result.summary["entries"] = len(infos)
    result.summary["uncompressed_bytes"] = total
    return archive


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """An entry's bytes, refused if it claims or turns out to be more than ``cap``."""
    if info.flag_bits & 0x1:
        raise Malformed(f"{text(info.filename, 120)!r} is encrypted")
    if info.file_size > cap or (
        info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1)
    ):
        raise LimitReached(f"{text(info.filename, 120)!r} is too large to read ({cap:,} cap)")
    try:
        with archive.open(info) as f:
            data = f.read(cap + 1)
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError) as e:
        raise Malformed(f"cannot read {text(info.filename, 120)!r} ({text(e, 120)})") from None
    if len(data) > cap:
        raise LimitReached(f"{text(info.filename, 120)!r} expands past {cap:,} bytes")
    return data


def open_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    """A stream of one entry (for the pickle scanner, which caps what it reads itself)."""
    if info.flag_bits & 0x1:
        raise Malformed(f"{text(info.filename, 120)!r} is encrypted")
    try:
        return archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, ValueError) as e:
        raise Malformed(f"cannot read {text(info.filename, 120)!r} ({text(e, 120)})") from None
