"""Pickle, joblib and PyTorch files: flagged "executes code when loaded", never unpickled.

A static scan walks the opcodes with ``pickletools.genops`` and follows the unpickler's stack
symbolically, enough to name every global the file imports: GLOBAL and INST carry the name,
STACK_GLOBAL takes the two strings below it (pushed directly or fetched from the memo). Imports
of modules that can run commands, open files or sockets, or evaluate code are marked dangerous;
so is an import whose name the scan cannot follow.
"""

import bz2
import gzip
import lzma
import pickletools
import zlib
from dataclasses import dataclass, field

from models_app.inspection import zipsafe
from models_app.inspection.base import (
    DANGER,
    ERROR,
    INFO,
    MAX_LIST,
    WARNING,
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
MAX_MEMBERS = 16  # pickles scanned inside one PyTorch zip

# Whole modules (and their submodules) whose import is dangerous in a model file.
DANGEROUS_MODULES = {
    "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "sys", "shutil", "socket",
    "socketserver", "runpy", "importlib", "imp", "pty", "ctypes", "code", "codeop", "commands",
    "popen2", "webbrowser", "marshal", "pickle", "_pickle", "cPickle", "dill", "shelve",
    "multiprocessing", "signal", "pdb", "bdb", "timeit", "asyncio", "urllib", "urllib2",
    "urllib3", "http", "httplib", "requests", "ftplib", "smtplib", "telnetlib", "io", "_io",
    "zipimport", "pkgutil", "_posixsubprocess", "_thread", "threading", "types", "cloudpickle",
    "joblib.externals.cloudpickle",
}  # fmt: skip
# Single callables of otherwise ordinary modules.
DANGEROUS_NAMES = {
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "compile"), ("builtins", "open"),
    ("builtins", "__import__"), ("builtins", "getattr"), ("builtins", "setattr"),
    ("builtins", "delattr"), ("builtins", "globals"), ("builtins", "locals"),
    ("builtins", "vars"), ("builtins", "breakpoint"), ("builtins", "input"),
    ("builtins", "execfile"), ("builtins", "file"), ("builtins", "apply"),
    ("operator", "attrgetter"), ("operator", "methodcaller"), ("_operator", "attrgetter"),
    ("_operator", "methodcaller"), ("functools", "reduce"),
    ("numpy.testing._private.utils", "runstring"), ("numpy", "load"), ("numpy", "fromfile"),
    ("torch", "load"), ("torch.serialization", "load"), ("torch.hub", "load"),
    ("torch.jit", "load"),
}  # fmt: skip
BUILTIN_MODULES = {"builtins", "__builtin__", "__builtins__"}
FRAMEWORKS = {
    "sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm",
    "catboost": "catboost", "torch": "pytorch", "keras": "keras", "tensorflow": "tensorflow",
    "statsmodels": "statsmodels",
}  # fmt: skip

STRING_OPS = {
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8",
}  # fmt: skip
MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_MARK = object()


def danger_of(module: str, name: str) -> str | None:
    """Why importing ``module.name`` from a model file is dangerous, or None."""
    if module in BUILTIN_MODULES:
        module = "builtins"
    if (module, name) in DANGEROUS_NAMES:
        return f"{module}.{name} can evaluate code or reach files"
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in DANGEROUS_MODULES:
            return f"the {module} module can run commands, open files or build code"
    if module == "__main__":
        return "refers to code of whatever program loads the file"
    return None


@dataclass
class PickleScan:
    imports: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)
    opcodes: int = 0
    pickles: int = 0
    stopped: str = ""  # why the scan ended before the end of the data, if it did
    unresolved: int = 0
    extensions: int = 0

    def note_import(self, module: str, name: str) -> None:
        label = f"{module}.{name}"
        if label not in self.imports:
            self.imports.append(label)
            reason = danger_of(module, name)
            if reason:
                self.dangerous.append(f"{label}: {reason}")


def scan(stream, *, deadline: Deadline, limit: int = MAX_PICKLE_BYTES, many: int = 1):
    """Scan up to ``many`` consecutive pickles of ``stream`` (read through a byte cap)."""
    reader = BoundedReader(stream, limit, deadline)
    result = PickleScan()
    for _ in range(many):
        if reader.peek_eof():
            break
        try:
            _scan_one(reader, result, deadline)
        except (ValueError, EOFError, UnicodeDecodeError, OverflowError, IndexError) as e:
            if reader.asked_past_limit:
                raise LimitReached(f"pickle data over {limit:,} bytes") from None
            result.stopped = f"not a valid pickle at byte {reader.tell():,} ({text(e, 120)})"
            break
        result.pickles += 1
    return result


def _scan_one(reader: BoundedReader, result: PickleScan, deadline: Deadline) -> None:
    stack: list = []
    memo: dict = {}
    for op, arg, _pos in pickletools.genops(reader):
        result.opcodes += 1
        if result.opcodes % 4096 == 0:
            deadline.check()
            if len(stack) > MAX_STACK:
                raise LimitReached(f"the pickle stack grew past {MAX_STACK:,} items")
        name = op.name
        if name == "MARK":
            stack.append(_MARK)
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
            continue
        if name in MEMO_PUTS:
            memo[arg] = stack[-1] if stack else None
            continue
        if name == "DUP":
            stack.append(stack[-1] if stack else None)
            continue
        if name == "POP" and stack and stack[-1] is _MARK:
            stack.pop()
            continue
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            result.note_import(module, attr)
        elif name == "STACK_GLOBAL":
            module, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
            if isinstance(module, str) and isinstance(attr, str):
                result.note_import(module, attr)
            else:
                result.unresolved += 1
        elif name in ("EXT1", "EXT2", "EXT4"):
            result.extensions += 1
        _pop(stack, op.stack_before)
        if name == "STOP":
            return
        value = None
        if name in STRING_OPS:
            value = arg if isinstance(arg, str) else None
        elif name in MEMO_GETS:
            value = memo.get(arg)
        stack.extend([value] * len(op.stack_after))
    raise ValueError("no STOP opcode: the pickle is truncated")


def _pop(stack: list, before: list) -> None:
    if pickletools.markobject in before:
        while stack and stack[-1] is not _MARK:
            stack.pop()
        if not stack:
            raise ValueError("MARK missing")
        stack.pop()
        below = before.index(pickletools.markobject)
    else:
        below = len(before)
    if below > len(stack):
        raise ValueError("stack underflow")
    if below:
        del stack[-below:]


# ---------------------------------------------------------------------------------------------
# The inspectors


EXECUTES_CODE = (
    "Executes code when loaded: unpickling can run any Python code. Load it only if you trust "
    "whoever made it."
)


def report(scan_result: PickleScan, result: Inspection, where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    imports = result.summary.setdefault("imports", [])
    for label in scan_result.imports:
        if label not in imports and len(imports) < MAX_LIST:
            imports.append(label)
    for reason in scan_result.dangerous[:20]:
        result.add(DANGER, f"{prefix}imports {reason}.")
    if scan_result.unresolved:
        result.add(
            DANGER,
            f"{prefix}{scan_result.unresolved} import(s) built from values the scan cannot "
            "follow (a common way to hide a dangerous import).",
        )
    if scan_result.extensions:
        result.add(WARNING, f"{prefix}uses {scan_result.extensions} copyreg extension code(s).")
    if scan_result.stopped:
        level = ERROR if not scan_result.pickles else WARNING
        result.add(level, f"{prefix}scan stopped: {scan_result.stopped}.")
    result.summary["opcodes"] = result.summary.get("opcodes", 0) + scan_result.opcodes
    tops = {label.split(".")[0] for label in scan_result.imports}
    for top, framework in FRAMEWORKS.items():
        if top in tops and "framework" not in result.summary:
            result.summary["framework"] = framework


def _decompressed(f, head: bytes):
    """joblib compresses with zlib, gzip, bz2 or xz: a stream of the decompressed bytes."""
    f.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), "gzip"
    if head[:3] == b"BZh":
        return bz2.BZ2File(f, mode="rb"), "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(f, mode="rb"), "xz"
    if head[:1] == b"\x78" and (head[0] * 256 + head[1]) % 31 == 0:
        return _ZlibStream(f), "zlib"
    if head[:4] in (b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18"):
        raise Malformed("compressed with zstd or lz4, which the scan cannot read")
    return f, ""


class _ZlibStream:
    def __init__(self, f):
        self.f = f
        self.d = zlib.decompressobj()
        self.buffer = b""

    def read(self, n: int = -1) -> bytes:
        n = 1 << 30 if n is None or n < 0 else n
        while len(self.buffer) < n and not self.d.eof:
            data = self.d.unconsumed_tail or self.f.read(64 * 1024)
            if not data:
                break
            self.buffer += self.d.decompress(data, n - len(self.buffer))
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


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
    if not found.pickles and not found.stopped:
        raise Malformed("empty file")
    report(found, result)


def inspect_pytorch(f, window: Window, path: str, result: Inspection) -> None:
    head = window.read(0, min(8, window.size), "the first bytes")
    result.summary["executes_code"] = True
    result.add(INFO, EXECUTES_CODE)
    result.summary["framework"] = "pytorch"
    if zipsafe.is_zip(head):
        archive = zipsafe.open_zip(f, window, result)
        infos = archive.infolist()
        pickles = [i for i in infos if i.filename.endswith(".pkl")]
        if not pickles:
            raise Malformed("a zip without data.pkl: not a PyTorch file")
        result.summary["layout"] = "zip"
        result.summary["pickles"] = [text(i.filename, 120) for i in pickles[:MAX_MEMBERS]]
        result.summary["storages"] = sum(1 for i in infos if "/data/" in i.filename)
        if any("/code/" in i.filename for i in infos):
            result.add(INFO, "TorchScript code: it runs when loaded with torch.jit.load.")
        for info in pickles[:MAX_MEMBERS]:
            with zipsafe.open_entry(archive, info) as member:
                report(scan(member, deadline=window.deadline), result, info.filename)
    elif head[:1] == b"\x80":
        result.summary["layout"] = "legacy"
        # Legacy files are four pickles (magic number, protocol, system info, the model) and
        # then raw storage bytes, which are not pickle opcodes.
        f.seek(0)
        report(scan(f, deadline=window.deadline, many=4), result)
    else:
        raise Malformed("neither a PyTorch zip nor a pickle")
