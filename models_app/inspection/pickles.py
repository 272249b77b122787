"""Pickle, joblib and PyTorch files: flagged "executes code when loaded", never unpickled.

A static scan walks the opcodes with ``pickletools.genops`` and follows the unpickler's stack
symbolically, enough to name every global the file imports: GLOBAL and INST carry the name,
STACK_GLOBAL takes the two strings below it (pushed directly or fetched from the memo). Imports
of modules that can run commands, open files or sockets, or evaluate code are marked dangerous;
so is an import whose name the scan cannot follow.
"""

import ast
import bz2
import gzip
import io
import lzma
import pickletools
import re
import zlib
from dataclasses import dataclass, field

from models_app.inspection import allowlist, zipsafe
from models_app.inspection.base import (
    DANGER,
    INFO,
    MAX_LIST,
    BoundedReader,
    Deadline,
    Inspection,
    LimitReached,
    Malformed,
    Window,
    text,
)

# The scan reads at most this much pickle data; pickletools holds one opcode's argument in
# memory at a time, so this also bounds memory.
MAX_PICKLE_BYTES = 128 * 1024 * 1024
MAX_STACK = 1_000_000
MAX_MEMBERS = 100  # pickle names kept in a summary
MAX_NPY_HEADER = 64 * 1024
MAX_KEPT = 64  # items of a list, tuple or dict whose values the scan follows
MAX_TEXT_KEPT = 1024  # characters of a string whose value the scan follows
SNIFF_BYTES = 64 * 1024
FRAMEWORKS = {
    "sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm",
    "catboost": "catboost", "torch": "pytorch", "keras": "keras", "tensorflow": "tensorflow",
    "statsmodels": "statsmodels",
}  # fmt: skip

STRING_OPS = {
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8",
}  # fmt: skip
INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"}
MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
CALLS = {"REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST"}
JOBLIB_WRAPPERS = {
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
DTYPE = re.compile(r"[<>|=]?([a-zA-Z?])(\d*)\Z")
OPCODE_BYTES = {op.code.encode("latin-1")[0] for op in pickletools.opcodes}
_MARK = object()
_UNKNOWN = object()  # a value the scan does not follow


@dataclass(frozen=True)
class _Global:
    label: str


class _Obj:
    """What a call (REDUCE, NEWOBJ, OBJ, INST) would build: its class and arguments, and the
    state BUILD gives it; enough to read a joblib array wrapper or a numpy dtype."""

    def __init__(self, callable_, args):
        self.callable = callable_
        self.args = args
        self.state = _UNKNOWN

    @property
    def label(self) -> str:
        target = self.callable
        if (
            isinstance(target, _Global)
            and target.label == "copyreg._reconstructor"
            and isinstance(self.args, tuple)
            and self.args
        ):
            target = self.args[0]
        return target.label if isinstance(target, _Global) else ""


@dataclass
class PickleScan:
    imports: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)
    not_allowed: list[str] = field(default_factory=list)
    opcodes: int = 0
    calls: int = 0
    pickles: int = 0
    arrays: int = 0  # joblib arrays stored raw after their wrapper
    stopped: str = ""  # why the scan could not check the data to its end, if it could not
    unresolved: int = 0
    extensions: int = 0

    def note_import(self, module: str, name: str) -> None:
        label = f"{module}.{name}"
        if label in self.imports:
            return
        self.imports.append(label)
        reason = allowlist.danger_of(module, name)
        if reason:
            self.dangerous.append(f"{label}: {reason}")
        if not allowlist.allowed(module, name):
            self.not_allowed.append(label)

    @property
    def verified(self) -> bool:
        """Every opcode was read and every import is on the allowlist."""
        return not (
            self.stopped or self.dangerous or self.not_allowed or self.unresolved
            or self.extensions
        )  # fmt: skip


def scan(
    stream,
    *,
    deadline: Deadline,
    limit: int = MAX_PICKLE_BYTES,
    many: int | None = None,
    joblib: bool = True,
) -> PickleScan:
    """Scan the consecutive pickles of ``stream`` (read through a byte cap) to its end, or the
    first ``many`` of them when raw data follows (legacy PyTorch files). Whatever stops the
    walk before that is recorded in ``stopped``: the file is then not verified."""
    reader = BoundedReader(stream, limit, deadline)
    result = PickleScan()
    while many is None or result.pickles < many:
        try:
            if reader.peek_eof():
                if not result.pickles:
                    result.stopped = "no pickle data"
                elif many is not None:
                    result.stopped = f"{result.pickles} of the {many} pickles the format has"
                break
            _scan_one(reader, result, deadline, joblib=joblib)
        except (ValueError, EOFError, UnicodeDecodeError, OverflowError, IndexError) as e:
            if reader.asked_past_limit:
                raise LimitReached(f"pickle data over {limit:,} bytes") from None
            result.stopped = f"not a valid pickle at byte {reader.tell():,} ({text(e, 120)})"
            break
        except LimitReached:
            if reader.asked_past_limit:
                raise LimitReached(f"pickle data over {limit:,} bytes") from None
            raise
        result.pickles += 1
    return result


def looks_like_pickle(data: bytes, deadline: Deadline) -> bool:
    """Whether the first bytes of a file without a pickle protocol header (protocols 0 and 1)
    are pickle instructions: they reach STOP, or fill the whole sample, or call something they
    imported, each opcode valid on the unpickler's stack. Text and raw numbers fail within a
    few bytes."""
    if not data or data[0] not in OPCODE_BYTES:
        return False
    reader = BoundedReader(io.BytesIO(data), len(data), deadline)
    sample = PickleScan()
    try:
        _scan_one(reader, sample, deadline, joblib=False, strict=True)
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError, IndexError, KeyError):
        # A call of something imported ran before the error: pickle.load would run it too.
        return (sample.calls > 0 and bool(sample.imports)) or (
            reader.tell() >= len(data) and len(data) >= SNIFF_BYTES and sample.opcodes > 2
        )
    return True


def _string(arg):
    if isinstance(arg, bytes):
        arg = arg.decode("latin-1")
    return arg if isinstance(arg, str) and len(arg) <= MAX_TEXT_KEPT else _UNKNOWN


def _kept(items: list) -> list:
    return items[:MAX_KEPT]


def _scan_one(
    reader: BoundedReader,
    result: PickleScan,
    deadline: Deadline,
    *,
    joblib: bool = True,
    strict: bool = False,
) -> None:
    """Walk one pickle to its STOP, following the values the unpickler's stack would hold
    (strings, numbers, tuples, lists, dicts, imported globals, the objects calls build)."""
    stack: list = []
    memo: dict = {}
    for op, arg, _pos in pickletools.genops(reader):
        result.opcodes += 1
        if result.opcodes % 4096 == 0:
            deadline.check()
            if len(stack) > MAX_STACK or len(memo) > MAX_STACK:
                raise LimitReached(f"the pickle stack or memo grew past {MAX_STACK:,} items")
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "MARK":
            stack.append(_MARK)
            continue
        if name == "STOP":
            if not stack or stack[-1] is _MARK:
                raise ValueError("STOP on an empty stack")
            return
        if name == "MEMOIZE":
            if not stack:
                raise ValueError("MEMOIZE on an empty stack")
            memo[len(memo)] = stack[-1]
            continue
        if name in MEMO_PUTS:
            if not stack:
                raise ValueError("PUT on an empty stack")
            memo[arg] = stack[-1]
            continue
        if name in MEMO_GETS:
            if arg not in memo:
                if strict:
                    raise ValueError("memo key missing")
                stack.append(_UNKNOWN)
            else:
                stack.append(memo[arg])
            continue
        if name == "DUP":
            if not stack:
                raise ValueError("DUP on an empty stack")
            stack.append(stack[-1])
            continue
        if name == "POP":
            if not stack:
                raise ValueError("POP on an empty stack")
            stack.pop()
            continue
        if name == "POP_MARK":
            _to_mark(stack)
            continue
        if name in STRING_OPS:
            stack.append(_string(arg))
            continue
        if name in INT_OPS:
            stack.append(arg)
            continue
        if name == "NONE":
            stack.append(None)
            continue
        if name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
            continue
        if name == "EMPTY_TUPLE":
            stack.append(())
            continue
        if name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = _pop_n(stack, n)
            stack.append(tuple(items))
            continue
        if name == "TUPLE":
            stack.append(tuple(_kept(_to_mark(stack))))
            continue
        if name == "EMPTY_LIST":
            stack.append([])
            continue
        if name == "LIST":
            stack.append(_kept(_to_mark(stack)))
            continue
        if name == "APPEND":
            (item,) = _pop_n(stack, 1)
            target = _container(stack, list)
            if isinstance(target, list) and len(target) < MAX_KEPT:
                target.append(item)
            continue
        if name == "APPENDS":
            items = _to_mark(stack)
            target = _container(stack, list)
            if isinstance(target, list):
                target.extend(items[: max(0, MAX_KEPT - len(target))])
            continue
        if name == "EMPTY_DICT":
            stack.append({})
            continue
        if name in ("DICT", "SETITEMS", "SETITEM"):
            items = _pop_n(stack, 2) if name == "SETITEM" else _to_mark(stack)
            if len(items) % 2:
                raise ValueError("odd number of items for a dict")
            target = {} if name == "DICT" else _container(stack, dict)
            if isinstance(target, dict):
                for key, value in zip(items[::2], items[1::2], strict=True):
                    if isinstance(key, str | int) and len(target) < MAX_KEPT:
                        target[key] = value
            if name == "DICT":
                stack.append(target)
            continue
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            if strict and not (IDENTIFIER.match(module) and IDENTIFIER.match(attr)):
                raise ValueError("not an importable name")
            result.note_import(module, attr)
            target = _Global(f"{module}.{attr}")
            if name == "GLOBAL":
                stack.append(target)
            else:
                result.calls += 1
                stack.append(_Obj(target, tuple(_kept(_to_mark(stack)))))
            continue
        if name == "STACK_GLOBAL":
            module, attr = _pop_n(stack, 2)
            if isinstance(module, str) and isinstance(attr, str):
                result.note_import(module, attr)
                stack.append(_Global(f"{module}.{attr}"))
            else:
                result.unresolved += 1
                stack.append(_UNKNOWN)
            continue
        if name in ("EXT1", "EXT2", "EXT4"):
            result.extensions += 1
            stack.append(_UNKNOWN)
            continue
        if name in ("REDUCE", "NEWOBJ"):
            result.calls += 1
            target, args = _pop_n(stack, 2)
            stack.append(_Obj(target, args))
            continue
        if name == "NEWOBJ_EX":
            result.calls += 1
            target, args, _kwargs = _pop_n(stack, 3)
            stack.append(_Obj(target, args))
            continue
        if name == "OBJ":
            result.calls += 1
            items = _to_mark(stack)
            if not items:
                raise ValueError("OBJ without a class")
            stack.append(_Obj(items[0], tuple(_kept(items[1:]))))
            continue
        if name == "BUILD":
            result.calls += 1
            (state,) = _pop_n(stack, 1)
            if not stack or stack[-1] is _MARK:
                raise ValueError("BUILD on an empty stack")
            target = stack[-1]
            if isinstance(target, _Obj):
                target.state = state
                if joblib and target.label in JOBLIB_WRAPPERS:
                    _joblib_array(reader, result, deadline, state)
            continue
        # Anything else (bytes, sets, buffers, persistent ids): its stack effect only.
        _pop_effect(stack, op.stack_before)
        stack.extend([_UNKNOWN] * len(op.stack_after))
    raise ValueError("no STOP opcode: the pickle is truncated")


def _pop_n(stack: list, n: int) -> list:
    if n > len(stack) or any(item is _MARK for item in stack[len(stack) - n :]):
        raise ValueError("stack underflow")
    items = stack[len(stack) - n :]
    del stack[len(stack) - n :]
    return items


def _to_mark(stack: list) -> list:
    items = []
    while stack and stack[-1] is not _MARK:
        items.append(stack.pop())
    if not stack:
        raise ValueError("MARK missing")
    stack.pop()
    items.reverse()
    return items


def _container(stack: list, kind: type):
    if not stack or stack[-1] is _MARK:
        raise ValueError("stack underflow")
    return stack[-1] if isinstance(stack[-1], kind) else None


def _pop_effect(stack: list, before: list) -> None:
    if pickletools.markobject in before:
        _to_mark(stack)
        below = before.index(pickletools.markobject)
    else:
        below = len(before)
    _pop_n(stack, below)


def _joblib_array(reader: BoundedReader, result: PickleScan, deadline: Deadline, state) -> None:
    """joblib writes each numpy array right after its wrapper: raw bytes (after a padding
    length byte and padding) or, for arrays of objects, a pickle of its own. The raw bytes are
    passed over, but only after checking that ``pickle.load`` would not read them as
    instructions (it does not know the wrapper and carries on reading opcodes there)."""
    if not isinstance(state, dict):
        raise ValueError("a joblib array wrapper without its state")
    shape, dtype = state.get("shape"), state.get("dtype")
    if not (isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ValueError("a joblib array wrapper with an unreadable shape")
    if not (
        isinstance(dtype, _Obj)
        and dtype.label == "numpy.dtype"
        and isinstance(dtype.args, tuple)
        and dtype.args
        and isinstance(dtype.args[0], str)
    ):
        raise ValueError("a joblib array wrapper with an unreadable dtype")
    dstate = dtype.state
    if isinstance(dstate, tuple) and len(dstate) >= 5 and (dstate[2], dstate[4]) != (None, None):
        raise ValueError("a joblib array of a structured dtype, which the scan does not read")
    match = DTYPE.match(dtype.args[0])
    if not match:
        raise ValueError(f"a joblib array of dtype {text(dtype.args[0], 40)!r}")
    kind, size = match.group(1), match.group(2)
    result.arrays += 1
    if kind == "O":
        # An array of Python objects: a complete pickle follows, loaded with pickle.load.
        _scan_one(reader, result, deadline, joblib=False)
        return
    if not size:
        raise ValueError(f"a joblib array of dtype {text(dtype.args[0], 40)!r}")
    count = 1
    for d in shape:
        count *= d
    length = count * int(size) * (4 if kind == "U" else 1)
    if state.get("numpy_array_alignment_bytes") is not None:
        # joblib >= 1.2 writes one byte of padding length (1-16) first: pickle.load stops at
        # it, since no opcode is below 0x28.
        padding = reader.stream.read(1)
        reader.pos += len(padding)
        if len(padding) != 1:
            raise ValueError("the joblib array's padding is missing")
        if padding[0] > 16:
            raise ValueError(f"a joblib array padding of {padding[0]} bytes")
        length += padding[0]
    else:
        sample = reader.stream.read(min(length, SNIFF_BYTES))
        reader.pos += len(sample)
        if _instructions(sample, whole=len(sample) == length):
            raise ValueError("joblib array data that pickle.load would run as instructions")
        length -= len(sample)
    skipped = reader.skip(length)
    if skipped != length:
        raise ValueError("the joblib array's data is truncated")


def _instructions(data: bytes, *, whole: bool) -> bool:
    """Whether raw bytes read as opcodes import something before they fail or stop (or are
    valid opcodes all the way through a partial sample)."""
    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name in ("GLOBAL", "INST", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4"):
                return True
            if op.name == "STOP":
                return False
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError, IndexError):
        return False
    return not whole


# ---------------------------------------------------------------------------------------------
# The inspectors


EXECUTES_CODE = (
    "Executes code when loaded: unpickling can run any Python code. Load it only if you trust "
    "whoever made it."
)


PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".sav", ".cloudpickle")


def report(found: PickleScan, result: Inspection, where: str = "") -> None:
    """A scan's imports and findings on the file's inspection. Imports off the allowlist,
    extension codes and a scan that could not read to the end fail the approval gate."""
    prefix = f"{where}: " if where else ""
    summary = result.summary
    summary["executes_code"] = True
    summary["allowlist_checked"] = True
    imports = summary.setdefault("imports", [])
    for label in found.imports:
        if label not in imports and len(imports) < MAX_LIST:
            imports.append(label)
    for reason in found.dangerous[:20]:
        result.add(DANGER, f"{prefix}imports {reason}.")
    for label in found.not_allowed[:20]:
        result.block(f"{prefix}imports {label}, which is not on the allowlist of model formats.")
    if len(found.not_allowed) > 20:
        result.block(
            f"{prefix}imports {len(found.not_allowed) - 20} more global(s) not on the allowlist."
        )
    if found.unresolved:
        result.add(
            DANGER,
            f"{prefix}{found.unresolved} import(s) built from values the scan cannot "
            "follow (a common way to hide a dangerous import).",
        )
    if found.extensions:
        result.block(
            f"{prefix}uses {found.extensions} copyreg extension code(s), which name no "
            "import the allowlist could check."
        )
    if found.stopped:
        result.not_verified(f"{prefix}scan stopped: {found.stopped}")
    summary["opcodes"] = summary.get("opcodes", 0) + found.opcodes
    if found.arrays:
        summary["joblib_arrays"] = summary.get("joblib_arrays", 0) + found.arrays
    tops = {label.split(".")[0] for label in found.imports}
    for top, framework in FRAMEWORKS.items():
        if top in tops and "framework" not in summary:
            summary["framework"] = framework


def _decompressed(f, head: bytes):
    """joblib compresses with zlib, gzip, bz2 or xz: a stream of the decompressed bytes."""
    f.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), "gzip"
    if head[:3] == b"BZh":
        return bz2.BZ2File(f, mode="rb"), "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(f, mode="rb"), "xz"
    if len(head) > 1 and head[:1] == b"\x78" and (head[0] * 256 + head[1]) % 31 == 0:
        return io.BufferedReader(_ZlibStream(f)), "zlib"
    if head[:4] in (b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18"):
        raise Malformed("compressed with zstd or lz4, which the scan cannot read")
    return f, ""


def compressed_pickle(f, head: bytes, deadline: Deadline) -> bool:
    """Whether a file compressed the way joblib compresses holds a pickle."""
    if not (
        head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00"
        or (len(head) > 1 and head[:1] == b"\x78" and (head[0] * 256 + head[1]) % 31 == 0)
    ):  # fmt: skip
        return False
    try:
        stream, _ = _decompressed(f, head)
        sample = stream.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, Malformed):
        return False
    return is_pickle(sample, deadline)


def is_pickle(sample: bytes, deadline: Deadline) -> bool:
    """A pickle by content: a protocol 2-5 header, or protocol 0/1 instructions."""
    if sample[:1] == b"\x80" and len(sample) > 1 and sample[1] <= 5:
        return True
    return looks_like_pickle(sample, deadline)


class _ZlibStream(io.RawIOBase):
    def __init__(self, f):
        self.f = f
        self.d = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.d.eof:
                return 0
            data = self.d.unconsumed_tail or self.f.read(64 * 1024)
            if not data:
                return 0
            out = self.d.decompress(data, len(buffer))
            if out:
                buffer[: len(out)] = out
                return len(out)


def inspect_pickle(f, window: Window, path: str, result: Inspection) -> None:
    head = window.read(0, min(8, window.size), "the first bytes")
    stream, compression = _decompressed(f, head)
    if compression:
        result.summary["compression"] = compression
    result.summary["executes_code"] = True
    result.add(INFO, EXECUTES_CODE)
    try:
        found = scan(stream, deadline=window.deadline)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise Malformed(f"cannot decompress ({text(e, 120)})") from None
    report(found, result)


def _torch_storage(name: str) -> bool:
    """PyTorch keeps tensor bytes in ``<archive>/data/<key>``: raw, never unpickled."""
    folder, _, key = name.rpartition("/")
    return folder.endswith("data") and folder.rsplit("/", 1)[-1] == "data" and key.isalnum()


def scan_archive(archive, result: Inspection, deadline: Deadline, *, raw=lambda name: False):
    """Every entry of a zip that is a pickle (by name or by content) or a numpy array is
    scanned, however many there are; ``raw(name)`` names entries the format never loads as
    objects (PyTorch tensor data)."""
    scanned = []
    for info in archive.infolist():
        deadline.check()
        if info.is_dir() or raw(info.filename):
            continue
        name = text(info.filename, 120)
        with zipsafe.open_entry(archive, info) as entry:
            sample = entry.read(SNIFF_BYTES)
        if sample[:6] == b"\x93NUMPY":
            with zipsafe.open_entry(archive, info) as entry:
                numpy_array(entry, result, deadline, info.filename)
            continue
        if not (info.filename.lower().endswith(PICKLE_SUFFIXES) or is_pickle(sample, deadline)):
            continue
        scanned.append(name)
        with zipsafe.open_entry(archive, info) as entry:
            report(scan(entry, deadline=deadline), result, info.filename)
    if scanned:
        result.summary["pickles"] = scanned[:MAX_MEMBERS]
        result.summary["pickle_count"] = len(scanned)
        result.add(INFO, EXECUTES_CODE)
    return scanned


def inspect_pytorch(f, window: Window, path: str, result: Inspection) -> None:
    head = window.read(0, min(8, window.size), "the first bytes")
    result.summary["executes_code"] = True
    result.summary["framework"] = "pytorch"
    if zipsafe.is_zip(head):
        archive = zipsafe.open_zip(f, window, result)
        infos = archive.infolist()
        if not any(i.filename.endswith(".pkl") for i in infos):
            raise Malformed("a zip without data.pkl: not a PyTorch file")
        result.summary["layout"] = "zip"
        result.summary["storages"] = sum(1 for i in infos if _torch_storage(i.filename))
        if any("/code/" in i.filename for i in infos):
            result.add(INFO, "TorchScript code: it runs when loaded with torch.jit.load.")
        scan_archive(archive, result, window.deadline, raw=_torch_storage)
        return
    result.add(INFO, EXECUTES_CODE)
    f.seek(0)
    if head[:1] == b"\x80":
        result.summary["layout"] = "legacy"
        # Legacy files are five pickles (magic number, protocol, system info, the model, the
        # storage keys) and then raw storage bytes, which are not pickle opcodes.
        report(scan(f, deadline=window.deadline, many=5, joblib=False), result)
    else:
        # Anything else torch.load reads as one or more pickles (protocols 0 and 1 included).
        report(scan(f, deadline=window.deadline), result)


def inspect_zip(f, window: Window, path: str, result: Inspection) -> None:
    """A zip not named as a known format: its pickles and arrays are what could load code."""
    archive = zipsafe.open_zip(f, window, result)
    scan_archive(archive, result, window.deadline)


def numpy_array(f, result: Inspection, deadline: Deadline, where: str = "") -> None:
    """A ``.npy`` array: a header, then raw data, or for arrays of Python objects (which
    ``numpy.load(allow_pickle=True)`` unpickles) a pickle, scanned like any other."""
    prefix = f"{where}: " if where else ""
    magic = f.read(8)
    if magic[:6] != b"\x93NUMPY" or len(magic) < 8:
        raise Malformed(f"{prefix}not a numpy array file")
    major = magic[6]
    size_bytes = 2 if major == 1 else 4
    raw_size = f.read(size_bytes)
    if len(raw_size) != size_bytes:
        raise Malformed(f"{prefix}truncated numpy header")
    length = int.from_bytes(raw_size, "little")
    if length > MAX_NPY_HEADER:
        raise LimitReached(f"{prefix}a numpy header of {length:,} bytes")
    header = f.read(length)
    if len(header) != length:
        raise Malformed(f"{prefix}truncated numpy header")
    try:
        fields = ast.literal_eval(header.decode("latin-1").strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        raise Malformed(f"{prefix}the numpy header is not a literal") from None
    if not isinstance(fields, dict) or "descr" not in fields or "shape" not in fields:
        raise Malformed(f"{prefix}the numpy header lacks descr or shape")
    arrays = result.summary.setdefault("arrays", [])
    objects = _has_objects(fields["descr"])
    if len(arrays) < MAX_LIST:
        arrays.append(
            {"name": text(where or "array", 120), "dtype": text(fields["descr"], 80),
             "shape": text(fields["shape"], 80), "objects": objects}
        )  # fmt: skip
    if objects:
        result.add(
            INFO,
            f"{prefix}an array of Python objects: numpy.load(allow_pickle=True) unpickles it.",
        )
        report(scan(f, deadline=deadline, many=1, joblib=False), result, where)


def _has_objects(descr) -> bool:
    if isinstance(descr, str):
        return "O" in descr
    if isinstance(descr, list | tuple):
        return any(_has_objects(part) for part in descr)
    return True  # a description the scan does not understand counts as objects


def inspect_numpy(f, window: Window, path: str, result: Inspection) -> None:
    """``.npy`` arrays and ``.npz`` zips of them."""
    head = window.read(0, min(8, window.size), "the first bytes")
    result.summary["framework"] = "numpy"
    if zipsafe.is_zip(head):
        archive = zipsafe.open_zip(f, window, result)
        scan_archive(archive, result, window.deadline)
        return
    f.seek(0)
    numpy_array(f, result, window.deadline)
