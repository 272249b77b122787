"""Which globals a pickle in a model file may import, and which are known to be dangerous.

Unpickling calls whatever a pickle imports, so the gate passes a pickle only when every global
it imports is on the **allowlist** below: what PyTorch, numpy, scikit-learn, XGBoost and
LightGBM files legitimately contain. Anything else fails the gate by name. The **denylist**
only chooses the wording: a global known to run commands, reach files or evaluate code is
marked *dangerous*, anything else merely "not on the allowlist". docs/inspection.md explains
the choices.
"""

import re

# Exact (module, name) pairs.
ALLOWED = {
    # Containers and plain values.
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "Counter"),
    ("collections", "deque"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("builtins", "range"), ("builtins", "complex"), ("builtins", "bytearray"),
    ("builtins", "bytes"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
    ("builtins", "int"), ("builtins", "float"), ("builtins", "bool"), ("builtins", "str"),
    ("builtins", "object"),
    # What protocols 0-2 use for bytes and plain objects.
    ("_codecs", "encode"), ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
    # numpy arrays, scalars, dtypes and random states.
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy", "matrix"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.ma.core", "_mareconstruct"), ("numpy.ma.core", "MaskedArray"),
    ("numpy.matrixlib.defmatrix", "matrix"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.mtrand", "RandomState"), ("numpy.random._generator", "Generator"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._philox", "Philox"), ("numpy.random._sfc64", "SFC64"),
    # joblib's wrapper for arrays stored after it in the file.
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    # PyTorch tensors, parameters, storages and their metadata (torch.load(weights_only=True)
    # accepts the same kinds of objects).
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_sparse_tensor"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("torch._utils", "_rebuild_nested_tensor"),
    ("torch._utils", "_rebuild_wrapper_subclass"), ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.serialization", "_get_layout"), ("torch.nn.parameter", "Parameter"),
    ("torch", "Size"), ("torch", "Tensor"), ("torch", "device"), ("torch", "dtype"),
    ("torch", "strided"), ("torch", "sparse_coo"), ("torch", "sparse_csr"),
    ("torch", "contiguous_format"), ("torch", "channels_last"), ("torch", "preserve_format"),
    ("torch", "per_tensor_affine"), ("torch", "per_channel_affine"),
    ("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage"),
    # TorchScript archives (torch.jit.save): list builders of its own unpickler.
    ("torch.jit._pickle", "build_intlist"), ("torch.jit._pickle", "build_doublelist"),
    ("torch.jit._pickle", "build_boollist"), ("torch.jit._pickle", "build_tensorlist"),
    ("torch.jit._pickle", "build_tensor_from_id"), ("torch.jit._pickle", "restore_type_tag"),
    # scikit-learn helpers that only build objects: a dict with attribute access, and the
    # neighbour trees' constructor (``obj.__new__(obj)``).
    ("sklearn.utils._bunch", "Bunch"),
    ("sklearn.neighbors._binary_tree", "newObj"), ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    # scipy sparse matrices and arrays (what sparse-fitted estimators hold).
    ("scipy.sparse._csr", "csr_matrix"), ("scipy.sparse._csc", "csc_matrix"),
    ("scipy.sparse._coo", "coo_matrix"), ("scipy.sparse._csr", "csr_array"),
    ("scipy.sparse._csc", "csc_array"), ("scipy.sparse._coo", "coo_array"),
    ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse.csc", "csc_matrix"),
    ("scipy.sparse.coo", "coo_matrix"),
    # XGBoost and LightGBM models (their state is the library's own model text or bytes).
    ("xgboost.core", "Booster"), ("xgboost.sklearn", "XGBModel"),
    ("xgboost.sklearn", "XGBClassifier"), ("xgboost.sklearn", "XGBRegressor"),
    ("xgboost.sklearn", "XGBRanker"), ("xgboost.sklearn", "XGBRFClassifier"),
    ("xgboost.sklearn", "XGBRFRegressor"),
    ("lightgbm.basic", "Booster"), ("lightgbm.sklearn", "LGBMModel"),
    ("lightgbm.sklearn", "LGBMClassifier"), ("lightgbm.sklearn", "LGBMRegressor"),
    ("lightgbm.sklearn", "LGBMRanker"),
}  # fmt: skip

TORCH_DTYPES = {
    "float64", "float32", "float16", "bfloat16", "complex128", "complex64", "complex32",
    "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool",
    "qint8", "quint8", "qint32", "quint4x2", "float8_e4m3fn", "float8_e5m2",
}  # fmt: skip
ALLOWED |= {("torch", name) for name in TORCH_DTYPES}
TORCH_STORAGES = {
    "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexDouble", "ComplexFloat", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
}  # fmt: skip
ALLOWED |= {("torch", f"{name}Storage") for name in TORCH_STORAGES}

# Module families whose *classes* a model legitimately pickles. Only class names are admitted
# (a capital first letter, as every estimator, transformer, tree and loss class is named):
# functions of the same modules, which could be called with the file's arguments, are not.
# scikit-learn is listed family by family, never as "sklearn.*": sklearn.utils, .datasets,
# .externals and .metrics hold helpers that call functions, fetch data or run code.
CLASS_FAMILIES = (
    "numpy.dtypes",
    "sklearn.base", "sklearn.calibration", "sklearn.cluster", "sklearn.compose",
    "sklearn.covariance", "sklearn.cross_decomposition", "sklearn.decomposition",
    "sklearn.discriminant_analysis", "sklearn.dummy", "sklearn.ensemble",
    "sklearn.feature_extraction", "sklearn.feature_selection", "sklearn.gaussian_process",
    "sklearn.impute", "sklearn.isotonic", "sklearn.kernel_approximation",
    "sklearn.kernel_ridge", "sklearn.linear_model", "sklearn.manifold", "sklearn.mixture",
    "sklearn.model_selection", "sklearn.frozen",
    "sklearn.multiclass", "sklearn.multioutput", "sklearn.naive_bayes", "sklearn.neighbors",
    "sklearn.neural_network", "sklearn.pipeline", "sklearn.preprocessing",
    "sklearn.random_projection", "sklearn.semi_supervised", "sklearn.svm", "sklearn.tree",
    "sklearn._loss", "sklearn.metrics._dist_metrics",
    # TorchScript types: the TorchScript unpickler resolves them itself, and no Python module
    # of that name exists for pickle.load to import.
    "__torch__",
)  # fmt: skip
# A class name, or the constructor Cython writes for a class's pickling (it builds an instance
# of the class it is given and sets its state).
CLASS_NAME = re.compile(r"([A-Z][A-Za-z0-9_]*|__pyx_unpickle_[A-Za-z0-9_]+)\Z")

# Whole modules (and their submodules) whose import is dangerous in a model file.
DANGEROUS_MODULES = {
    "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "sys", "shutil", "socket",
    "socketserver", "runpy", "importlib", "imp", "pty", "ctypes", "code", "codeop", "commands",
    "popen2", "webbrowser", "marshal", "pickle", "_pickle", "cPickle", "dill", "shelve",
    "multiprocessing", "signal", "pdb", "bdb", "timeit", "asyncio", "urllib", "urllib2",
    "urllib3", "http", "httplib", "requests", "ftplib", "smtplib", "telnetlib", "io", "_io",
    "zipimport", "pkgutil", "_posixsubprocess", "_thread", "threading", "types", "cloudpickle",
    "joblib.externals.cloudpickle", "cProfile", "profile", "_osx_support", "pydoc", "imaplib",
    "poplib", "nntplib", "trace", "doctest", "idlelib", "distutils", "setuptools", "pip",
    "venv", "ensurepip", "tempfile",
    "glob", "pathlib", "fileinput", "zipfile", "tarfile", "sqlite3", "dbm", "logging.config",
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
    ("torch.jit", "load"), ("torch.storage", "_load_from_bytes"),
}  # fmt: skip
BUILTIN_MODULES = {"builtins", "__builtin__", "__builtins__"}


def canonical(module: str) -> str:
    return "builtins" if module in BUILTIN_MODULES else module


def allowed(module: str, name: str) -> bool:
    """Whether a model file may import ``module.name`` (see the module's docstring)."""
    module = canonical(module)
    if (module, name) in ALLOWED:
        return True
    if not CLASS_NAME.match(name):
        return False
    return any(module == f or module.startswith(f"{f}.") for f in CLASS_FAMILIES)


def danger_of(module: str, name: str) -> str | None:
    """Why importing ``module.name`` from a model file is known to be dangerous, or None."""
    module = canonical(module)
    if (module, name) in DANGEROUS_NAMES:
        return f"{module}.{name} can evaluate code or reach files"
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in DANGEROUS_MODULES:
            return f"the {module} module can run commands, open files or build code"
    if module == "__main__":
        return "refers to code of whatever program loads the file"
    return None
