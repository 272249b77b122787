"""safetensors: an 8-byte little-endian header length, a JSON header, then raw tensor bytes.

Only the header is read. Every tensor's dtype, shape and data_offsets are checked against each
other and against the file's real size, so a header cannot point outside the file.
"""

import json
import math
import struct

from models_app.inspection.base import (
    ERROR,
    MAX_LIST,
    WARNING,
    Inspection,
    LimitReached,
    Malformed,
    Window,
    text,
)

MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_TENSORS = 1_000_000
MAX_DIMS = 64
MAX_ERRORS = 20
# Bits per element (a few recent dtypes pack several elements per byte).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16,
    "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64,
    "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
FRAMEWORKS = {"pt": "pytorch", "tf": "tensorflow", "flax": "flax", "np": "numpy", "mlx": "mlx"}


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise Malformed(f"the header names {text(key, 80)!r} twice")
        seen[key] = value
    return seen


def inspect(window: Window, path: str, result: Inspection) -> None:
    if window.size < 8:
        raise Malformed(f"truncated: {window.size} bytes, the header length alone needs 8")
    (length,) = struct.unpack("<Q", window.read(0, 8, "the header length"))
    if 8 + length > window.size:
        raise Malformed(
            f"truncated: the header claims {length:,} bytes but the file has {window.size:,}"
        )
    if length > MAX_HEADER_BYTES:
        raise LimitReached(
            f"the header claims {length:,} bytes; headers over {MAX_HEADER_BYTES:,} are refused"
        )
    raw = window.read(8, length, "the JSON header")
    window.deadline.check()
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise Malformed("the header is not UTF-8 text") from None
    except RecursionError:
        raise Malformed("the header nests too deeply") from None
    except ValueError as e:
        raise Malformed(f"the header is not valid JSON ({text(e, 120)})") from None
    if not isinstance(header, dict):
        raise Malformed("the header is not a JSON object")
    data_size = window.size - 8 - length

    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            result.add(WARNING, "__metadata__ should map text to text; it is ignored.")
            metadata = {}
        result.summary["metadata"] = {
            text(k, 100): text(v) for k, v in list(metadata.items())[:MAX_LIST]
        }
    if len(header) > MAX_TENSORS:
        raise LimitReached(f"{len(header):,} tensors; more than {MAX_TENSORS:,} are refused")

    dtypes: dict[str, int] = {}
    parameters = 0
    spans = []
    errors = 0
    for i, (name, entry) in enumerate(header.items()):
        if i % 1000 == 0:
            window.deadline.check()
        problem = _check_entry(entry, data_size)
        if isinstance(problem, str):
            errors += 1
            if errors <= MAX_ERRORS:
                result.add(ERROR, f"tensor {text(name, 80)!r}: {problem}")
            continue
        dtype, count, begin, end = problem
        dtypes[dtype] = dtypes.get(dtype, 0) + 1
        parameters += count
        spans.append((begin, end, name))
    if errors > MAX_ERRORS:
        result.add(ERROR, f"{errors - MAX_ERRORS} more tensors are invalid.")

    spans.sort()
    covered = 0
    previous_end = 0
    for begin, end, name in spans:
        if begin < previous_end:
            result.add(ERROR, f"tensor {text(name, 80)!r} overlaps another tensor's bytes")
            break
        covered += end - begin
        previous_end = end
    if not errors and covered != data_size:
        result.add(
            WARNING,
            f"{data_size - covered:,} bytes of the data section belong to no tensor",
        )
    result.summary.update(
        {
            "tensors": len(header),
            "dtypes": dict(sorted(dtypes.items())),
            "parameters": parameters,
            "header_bytes": length,
            "names": [text(n, 120) for n in list(header)[:20]],
        }
    )
    fmt = (metadata or {}).get("format", "")
    if fmt in FRAMEWORKS:
        result.summary["framework"] = FRAMEWORKS[fmt]


def _check_entry(entry, data_size: int):
    """(dtype, element count, begin, end) or a message saying what is wrong."""
    if not isinstance(entry, dict):
        return "must be an object with dtype, shape and data_offsets"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        return f"unknown dtype {text(dtype, 40)!r}"
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        return f"shape must be a list of at most {MAX_DIMS} sizes"
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return "shape sizes must be whole numbers ≥ 0"
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        return "data_offsets must be [begin, end]"
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        return f"data_offsets [{begin}, {end}] lie outside the {data_size:,} data bytes"
    count = math.prod(shape)
    bits = count * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        return f"{dtype} {shape} needs {bits / 8:,.0f} bytes but data_offsets span {end - begin:,}"
    return dtype, count, begin, end
