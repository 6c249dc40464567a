"""The import closure of a filter: every Python module it needs inside the module.

Imports are read from source with :mod:`ast` (never by importing user code on
the host). A name is looked up, in order, among: modules built into the wasm
libpython, the filter's own folder, the ``proxywasm`` SDK (without
``proxywasm.testing``), the CPython 3.11 stdlib of the toolchain, and pure-Python
packages of the active environment.

Like ``modulefinder`` and PyInstaller's modulegraph, every ``import`` statement
is an edge, including imports inside functions; what keeps the module small is
*which* code is taken to run (function granularity, conditions evaluated for
the target) plus two short curated tables in the manner of PyInstaller's hook
files (hidden imports of C code, lazy imports that cannot run in a module):

* **Required and optional.** An import executed at module level (including
  class bodies) is required: if it cannot be frozen, neither can its importer,
  and so on up. Imports guarded by ``try/except ImportError`` (or
  ``ModuleNotFoundError``, ``Exception``) or ``with contextlib.suppress(ImportError)``,
  and imports in an ``except`` branch (an error path), are optional: frozen when
  they freeze with everything they need, skipped silently (and listed in
  :attr:`Closure.skipped_optional`) when they cannot; PyYAML's ``cyaml`` and
  ``dateutil.tz.win`` are skipped whole. The ``except ImportError`` branch of
  such a ``try`` is a fallback, followed only when an import of the ``try``
  cannot be found (``decimal`` freezes the 200 kB ``_pydecimal`` only without
  ``_decimal``). In the stdlib and the SDK, guarded and error-path imports of
  Python modules are not followed at all (the stdlib works without them by
  construction: ``tracemalloc`` in ``warnings``, Jython's ``org.python`` in
  ``copy``, ``logging`` in ``hashlib``'s missing-hash path); guarded C
  accelerators (``_json``) are linked in when present.
* **Conditions evaluated for the target.** ``if`` tests on ``sys.version_info``
  (comparisons, slices, indexes), ``sys.platform`` (``==``, ``in``,
  ``startswith``), ``os.name``, ``sys.implementation.name``, ``TYPE_CHECKING``
  and ``__name__ == "__main__"``, with ``and``/``or``/``not`` and module
  constants bound once to such a test (``PY_3_14 = sys.version_info >= (3, 14)``),
  are evaluated for CPython 3.11 on ``wasi`` (``posix``): only the branch that
  runs is followed. Other conditions: both branches, required in the filter and
  site-packages, optional in the stdlib (which guards platform code with flags
  such as ``subprocess._mswindows``).
* **Imports inside functions, at function granularity.** Imports inside
  functions are optional. In the filter's own modules every function counts.
  In the stdlib, the SDK and site-packages a function's imports are followed
  only when the function is *reached*, transitively: a module-level
  function when its name is mentioned (a name, an attribute, a ``from``
  import, a ``getattr`` literal) by reached code of its module or of a module
  importing it; a method when its class is so mentioned and its name is
  mentioned anywhere (dunder methods: with the class); a module
  ``__getattr__`` (PEP 562) when a name it compares against is mentioned.
  Reached code is the filter's, module-level code of frozen modules, and
  reached functions (``typing_extensions.deprecated``'s lazy ``asyncio`` stays
  out of a PyYAML filter: 139 -> 71 modules). A module-level assignment without calls is
  data: what it names is reached when the variable is (``uuid._GETTERS`` names
  the MAC-address getters that run ``subprocess``). A Python function rebound
  at module level by ``from <C module> import`` is dead (``warnings.warn``).
  ``Counter.most_common`` thus brings ``heapq`` when something calls
  ``most_common``, ``uuid.uuid5`` brings ``hashlib``; ``uuid.uuid4`` brings
  neither. :data:`NOT_FOLLOWED` lists the few lazy imports that cannot run on
  the target.
* **Literal dynamic imports.** ``importlib.import_module("x")`` (also
  ``(".x", __name__)``) and ``__import__("x")`` are imports like any other;
  :data:`DYNAMIC_IMPORTS` lists computed names (sysconfig's build data).
* **Codecs by name**, resolved as CPython's codec search does
  (``encodings.search_function``: ``normalize_encoding``, then
  ``encodings.aliases``, then the module of that name): a string literal that
  names a text codec, in the filter's code, a site-package or a reached stdlib
  function (not stdlib data tables such as ``locale``'s aliases), freezes that
  ``encodings`` module: ``"utf-16-le"``, ``"us-ascii"`` (``ElementTree.write``),
  ``"utf-8-sig"``, ``"cp1252"``, ``"latin-1"``, ``"idna"`` (with ``punycode``
  and ``stringprep``), ``"unicode_escape"``. Bytes-to-bytes codecs (``hex``,
  ``base64``, ``zlib``, ``rot13``...) count only as an argument of a codec call
  (``codecs.encode(b, "hex")``), since those words are common in other
  strings. A name computed at run time is not seen: freeze its module as an
  extra module of the build (``encodings.cp1252``).
* **C code's imports.** :data:`C_HIDDEN_IMPORTS` lists the Python modules the
  wasm libpython's C modules import themselves (``time.strptime`` and
  ``datetime.strptime`` import ``_strptime``; ``_zoneinfo`` imports
  ``datetime``, ``weakref`` and ``zoneinfo._common``).

A needed import that cannot be frozen (a C extension, a module the wasm
CPython lacks, a missing package) fails the build: the message names the
module, who imports it, the file and line, the chain from the filter, and the
fix (:data:`FIXES`). For the 190 top-level modules of the wasm stdlib this
verdict matches what ``import`` does in the wasm CPython.

What the rules cost ``examples/add_header`` (``proxywasm build``, bytes and
frozen modules): 5,750,096 / 38 before; function granularity +22 kB (+1:
``warnings``, which ``EnumType.__contains__`` imports); codecs +36 kB (+9:
``json.loads`` decodes bytes in the UTF-16/32 flavour its BOM names, and
``ascii``, ``latin_1``); together 5,808,600 / 48 (+1 %). Following every import inside
a function of a frozen stdlib module instead: 11,688,404 / 219.
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
import sysconfig
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .grammar import ParseFn, host_parse

__all__ = ["Closure", "ClosureError", "SourceModule", "resolve_closure"]

SDK_DIR = Path(__file__).resolve().parents[2] / "sdk" / "proxywasm"
#: Never frozen: the native test harness and the SDK's native host stand-in.
EXCLUDED = ("proxywasm.testing", "proxywasm._nullhost")
#: Modules libpython keeps frozen itself or that have no use inside Envoy.
SKIPPED = frozenset(
    {"__main__", "_frozen_importlib", "_frozen_importlib_external", "_proxywasm", "_pw_boot"}
    # importlib/__init__ registers _frozen_importlib under these names before it
    # imports from them: a frozen copy would never run (and its exec kept the compiler).
    | {"importlib._bootstrap", "importlib._bootstrap_external"}
)
#: Where imports inside functions are followed at function granularity (the
#: filter's own modules: every function).
GRANULAR_ORIGINS = ("stdlib", "sdk", "site-packages")
#: SDK modules whose functions are all entry points (the host calls them through the C glue).
ENTRY_MODULES = frozenset({"proxywasm.dispatcher"})

#: The target the conditions are evaluated for.
TARGET_VERSION = (3, 11, 0, "final", 0)
TARGET_PLATFORM = "wasi"
TARGET_OS_NAME = "posix"

#: Python modules the built-in C modules import from C, as (C module, the name
#: that must be mentioned for the import to happen or "" for always, module).
C_HIDDEN_IMPORTS: tuple[tuple[str, str, str], ...] = (
    ("time", "strptime", "_strptime"),
    ("_datetime", "strptime", "_strptime"),
    ("_pickle", "", "copyreg"),
    ("_pickle", "", "_compat_pickle"),
    ("_elementtree", "", "xml.etree.ElementPath"),
    ("_pickle", "", "functools"),
    ("_elementtree", "", "copy"),
    ("_decimal", "", "numbers"),
    ("_decimal", "", "collections"),
    ("_zoneinfo", "", "datetime"),  # PyDateTime_IMPORT
    ("_zoneinfo", "", "weakref"),
    ("_zoneinfo", "", "zoneinfo._common"),
    ("_zoneinfo", "", "zoneinfo._tzpath"),
)

#: Lazy stdlib imports never followed (importer, module): why they cannot run in a module.
NOT_FOLLOWED: dict[tuple[str, str], str] = {
    # The caret anchors under a traceback line parse the line's source; frozen
    # modules have none, and ast would keep the compiler in.
    ("traceback", "ast"): "frozen modules have no source lines to parse",
    # _syscmd_ver runs `ver` on win32/win16/dos only (uname() reaches it in general).
    ("platform", "subprocess"): "platform runs commands on Windows and DOS only",
}

#: Python code importing a computed name, as (module, function, stdlib file pattern):
#: sysconfig reads the build's configuration from ``_sysconfigdata_<abi>_<platform>``.
DYNAMIC_IMPORTS: tuple[tuple[str, str, str], ...] = (
    ("sysconfig", "_init_posix", "_sysconfigdata_*"),
)

#: Bytes-to-bytes and text-to-text codecs: by name only as a codec call's argument.
TRANSFORM_CODECS = frozenset(
    {"base64_codec", "bz2_codec", "hex_codec", "quopri_codec", "rot_13", "uu_codec", "zlib_codec"}
)
#: Calls whose string arguments name codecs.
_CODEC_CALLS = frozenset(
    {
        "encode",
        "decode",
        "lookup",
        "getencoder",
        "getdecoder",
        "getincrementalencoder",
        "getincrementaldecoder",
        "getreader",
        "getwriter",
        "iterencode",
        "iterdecode",
        "EncodedFile",
    }
)

#: Frozen in place of a stdlib module when the wasm CPython lacks the C module it
#: needs (module -> that C module): the names import, their use explains itself.
STAND_INS: dict[str, str] = {"ssl": "_ssl"}
STAND_IN_DIR = Path(__file__).resolve().parent / "standins"

#: The real fix for modules that cannot be frozen, by top-level name.
FIXES: dict[str, str] = {
    "zlib": "zlib is not in the wasm libpython (nor gzip, zipfile or tarfile's compression, "
    "which need it); compress outside the filter, or let Envoy's compressor filter do it",
    "_ssl": "there is no TLS inside a filter: Envoy terminates TLS; make outbound calls "
    "through the host (dispatch_http_call) instead of ssl/urllib",
    "ssl": "there is no TLS inside a filter: Envoy terminates TLS; make outbound calls "
    "through the host (dispatch_http_call) instead of ssl/urllib",
    "_ctypes": "ctypes cannot load native libraries inside wasm",
    "_hashlib": "hashlib works without OpenSSL (md5, sha1, sha2, sha3, blake2 are built in)",
    "_bz2": "bz2 is not in the wasm libpython",
    "_lzma": "lzma is not in the wasm libpython",
    "_sqlite3": "sqlite3 is not in the wasm libpython",
    "_multiprocessing": "a filter has no processes or threads of its own",
    "pydantic_core": "pydantic 2 needs pydantic_core (compiled Rust); use dataclasses, attrs "
    "or a pydantic 1.x release (pure Python when installed with --no-binary pydantic)",
    "rpds": "jsonschema needs rpds-py (compiled Rust) through referencing; use fastjsonschema, "
    "which is pure Python",
    "_cffi_backend": "cffi is native code; look for the package's pure-Python variant",
    "yaml._yaml": "PyYAML's libyaml binding is optional: import yaml and use yaml.safe_load "
    "(pure Python), not yaml.CSafeLoader",
    "charset_normalizer": "install charset-normalizer's pure-Python wheel "
    "(pip install --no-binary charset-normalizer charset-normalizer)",
    "ujson": "use the stdlib json",
    "orjson": "use the stdlib json",
}
_GENERIC_EXTENSION_FIX = (
    "only pure-Python modules can be frozen into a module: use the package's "
    "pure-Python fallback (often a build option or an environment variable at install "
    "time) or a pure-Python alternative"
)


class ClosureError(RuntimeError):
    """A module cannot be frozen; the message names it, its importer and the fix."""


@dataclass(frozen=True)
class SourceModule:
    """One module to freeze."""

    name: str
    path: Path
    is_package: bool
    origin: str  # "filter", "sdk", "stdlib", "site-packages"


@dataclass
class Closure:
    """The modules found, in discovery order, and the optional ones skipped."""

    modules: dict[str, SourceModule] = field(default_factory=dict)
    builtins_used: set[str] = field(default_factory=set)
    #: C modules imported lazily or guarded by the stdlib (accelerators such as
    #: _json): linked in when present, never required.
    optional_builtins: set[str] = field(default_factory=set)
    #: Optional imports that could not be frozen: name -> "path:line" of the import.
    skipped_optional: dict[str, str] = field(default_factory=dict)
    #: Why each module is in: the first import that brought it, "importer (path:line)".
    imported_by: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Import:
    name: str
    optional: bool
    line: int
    fromlist: tuple[str, ...] = ()
    #: under an ``if`` that cannot be evaluated for the target
    conditional: bool = False
    #: inside ``try: ... except ImportError`` or ``with suppress(ImportError)``
    guarded: bool = False
    #: in the ``except ImportError`` branch of a try importing these: a fallback
    fallback_for: tuple[str, ...] = ()


@dataclass
class _Scope:
    """Module-level code or one function (with everything nested in it)."""

    name: str
    cls: str | None
    imports: list[_Import] = field(default_factory=list)
    mentions: set[str] = field(default_factory=set)
    literals: set[str] = field(default_factory=set)
    codec_args: set[str] = field(default_factory=set)
    #: a module ``__getattr__``: the names it compares ``name`` against
    serves: frozenset[str] | None = None
    #: a module-level variable holding data (its strings are data, not codec names)
    data: bool = False


@dataclass
class _Summary:
    top: _Scope
    functions: list[_Scope]
    shadowed: dict[str, str]


_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")


def _names_of(node: ast.expr | None) -> list[str]:
    if node is None:
        return []
    out: list[str] = []
    for n in node.elts if isinstance(node, ast.Tuple) else [node]:
        if isinstance(n, ast.Name):
            out.append(n.id)
        elif isinstance(n, ast.Attribute):
            out.append(n.attr)
    return out


def _is_import_error_handler(handler: ast.ExceptHandler) -> bool:
    return handler.type is None or any(n in _IMPORT_ERRORS for n in _names_of(handler.type))


def _is_suppress_import_error(item: ast.withitem) -> bool:
    call = item.context_expr
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return fname == "suppress" and any(
        n in _IMPORT_ERRORS for arg in call.args for n in _names_of(arg)
    )


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


_VALUES: dict[str, object] = {
    "sys.platform": TARGET_PLATFORM,
    "platform": TARGET_PLATFORM,
    "os.name": TARGET_OS_NAME,
    "sys.implementation.name": "cpython",
    "sys.version_info": TARGET_VERSION,
    "version_info": TARGET_VERSION,
    "sys.version_info.major": TARGET_VERSION[0],
    "sys.version_info.minor": TARGET_VERSION[1],
    "sys.hexversion": 0x030B00F0,
    "__name__": "<imported module>",
    "TYPE_CHECKING": False,
    "typing.TYPE_CHECKING": False,
    "t.TYPE_CHECKING": False,
}
_UNKNOWN = object()


def _value(node: ast.expr, env: dict[str, object] | None = None) -> object:
    """The value of an expression on the target, or _UNKNOWN."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        items = [_value(e, env) for e in node.elts]
        return _UNKNOWN if any(i is _UNKNOWN for i in items) else tuple(items)
    dotted = _dotted(node)
    if dotted is not None:
        if dotted in _VALUES:
            return _VALUES[dotted]
        return (env or {}).get(dotted, _UNKNOWN)  # a constant of the module
    if isinstance(node, ast.Subscript):
        base = _value(node.value, env)
        if not isinstance(base, (tuple, str)):
            return _UNKNOWN
        sl = node.slice
        if isinstance(sl, ast.Slice):
            lo = _value(sl.lower, env) if sl.lower else None
            hi = _value(sl.upper, env) if sl.upper else None
            if (lo is None or isinstance(lo, int)) and (hi is None or isinstance(hi, int)):
                return base[lo:hi]
            return _UNKNOWN
        idx = _value(sl, env)
        return base[idx] if isinstance(idx, int) and -len(base) <= idx < len(base) else _UNKNOWN
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        base = _value(node.func.value, env)
        args = [_value(a, env) for a in node.args]
        if (
            isinstance(base, str)
            and node.func.attr in ("startswith", "endswith")
            and len(args) == 1
            and isinstance(args[0], (str, tuple))
            and not node.keywords
        ):
            return getattr(base, node.func.attr)(args[0])
    return _UNKNOWN


def _truth(node: ast.expr, env: dict[str, object] | None = None) -> bool | None:
    """Whether an ``if`` test holds on the target (3.11, wasi), or None if unknown."""
    if isinstance(node, ast.BoolOp):
        values = [_truth(v, env) for v in node.values]
        if isinstance(node.op, ast.And):
            if False in values:
                return False
            return True if all(v is True for v in values) else None
        if True in values:
            return True
        return False if all(v is False for v in values) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _truth(node.operand, env)
        return None if inner is None else not inner
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _value(node.left, env), _value(node.comparators[0], env)
        if left is _UNKNOWN or right is _UNKNOWN:
            return None
        op = node.ops[0]
        try:
            if isinstance(op, ast.Eq):
                return bool(left == right)
            if isinstance(op, ast.NotEq):
                return bool(left != right)
            if isinstance(op, ast.In):
                return bool(left in right)  # type: ignore[operator]
            if isinstance(op, ast.NotIn):
                return bool(left not in right)  # type: ignore[operator]
            if isinstance(op, ast.Lt):
                return bool(left < right)  # type: ignore[operator]
            if isinstance(op, ast.LtE):
                return bool(left <= right)  # type: ignore[operator]
            if isinstance(op, ast.Gt):
                return bool(left > right)  # type: ignore[operator]
            if isinstance(op, ast.GtE):
                return bool(left >= right)  # type: ignore[operator]
        except TypeError:
            return None
        return None
    value = _value(node, env)
    if value is _UNKNOWN:
        return None
    return bool(value)


class _Scanner:
    """Splits a module into module-level code and functions, collecting imports and names."""

    def __init__(self, package: str | None) -> None:
        self.package = package
        self.functions: list[_Scope] = []
        self.defined: set[str] = set()
        #: module-level names bound once to a value known on the target
        self.consts: dict[str, object] = {}
        self.unstable: set[str] = set()
        #: module-level functions rebound later by ``from X import name`` (name -> X)
        self.shadowed: dict[str, str] = {}

    def constant(self, name: str, value: ast.expr, conditional: bool) -> None:
        """Remember ``NAME = <condition on the target>`` (``PY_3_14 = sys.version_info >= ...``)."""
        known = _value(value, self.consts)
        if known is _UNKNOWN or not isinstance(known, (bool, int, str, tuple)):
            truth = _truth(value, self.consts)
            known = _UNKNOWN if truth is None else truth
        if (
            conditional
            or name in self.unstable
            or (name in self.consts and self.consts[name] != known)
        ):
            known = _UNKNOWN  # assigned in a branch, or twice: not a constant
        if known is _UNKNOWN:
            self.unstable.add(name)
            self.consts.pop(name, None)
        else:
            self.consts[name] = known

    def resolve(self, module: str | None, level: int) -> str | None:
        if level == 0:
            return module
        if self.package is None:
            return None
        parts = self.package.split(".")
        if level - 1 > len(parts) - 1 and level > 1:
            return None
        base = parts[: len(parts) - (level - 1)] if level > 1 else parts
        return ".".join(base + ([module] if module else []))

    def scan(self, tree: ast.Module) -> _Summary:
        top = _Scope("<module>", None)
        for stmt in tree.body:
            self.visit(stmt, top, None, optional=False, conditional=False, fallback=())
        return _Summary(top, self.functions, self.shadowed)

    def visit(
        self,
        node: ast.AST,
        scope: _Scope,
        cls: str | None,
        *,
        optional: bool,
        conditional: bool,
        fallback: tuple[str, ...],
        guarded: bool = False,
    ) -> None:
        def go(
            child: ast.AST,
            s: _Scope = scope,
            c: str | None = cls,
            optional: bool = optional,
            conditional: bool = conditional,
            fallback: tuple[str, ...] = fallback,
            guarded: bool = guarded,
        ) -> None:
            self.visit(
                child,
                s,
                c,
                optional=optional or guarded,
                conditional=conditional,
                fallback=fallback,
                guarded=guarded,
            )

        def add(name: str, line: int, fromlist: tuple[str, ...] = ()) -> None:
            imp = _Import(name, optional or guarded, line, fromlist, conditional, guarded, fallback)
            scope.imports.append(imp)

        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, ())
                scope.mentions.add(alias.asname or alias.name.split(".")[0])
            return
        if isinstance(node, ast.ImportFrom):
            target = self.resolve(node.module, node.level)
            if target:
                add(target, node.lineno, tuple(a.name for a in node.names))
                if scope.name == "<module>" and cls is None:
                    for a in node.names:
                        if (a.asname or a.name) in self.defined:
                            self.shadowed[a.asname or a.name] = target
            scope.mentions.update(a.name for a in node.names)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                go(dec)
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    go(default)
            if scope.name != "<module>":
                inner = scope  # nested in a function: part of it
            else:
                inner = _Scope(node.name, cls)
                self.functions.append(inner)
                if cls is None:
                    self.defined.add(node.name)
                if node.name == "__getattr__" and cls is None:
                    inner.serves = frozenset(
                        c.value
                        for n in ast.walk(node)
                        if isinstance(n, ast.Compare)
                        for c in [n.left, *n.comparators]
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    )
            # code inside a function runs later: its imports are optional
            for stmt in node.body:
                go(stmt, inner, cls, optional=True)
            return
        if (
            isinstance(node, ast.Assign)
            and scope.name == "<module>"
            and cls is None
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            self.constant(node.targets[0].id, node.value, conditional or optional)
        if (
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and scope.name == "<module>"
            and cls is None
            and node.value is not None
            and not any(isinstance(n, ast.Call) for n in ast.walk(node.value))
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) for t in targets):
                # Data, not code run at import (`_GETTERS = [_unix_getnode, ...]`):
                # what it names is reached when the variable is.
                for t in targets:
                    assert isinstance(t, ast.Name)
                    var = _Scope(t.id, None, data=True)
                    self.functions.append(var)
                    go(node.value, var)
                return
        if isinstance(node, ast.Lambda):
            go(node.body, optional=True)
            return
        if isinstance(node, ast.ClassDef):
            for expr in [*node.bases, *node.decorator_list, *(k.value for k in node.keywords)]:
                go(expr)
            inner_cls = node.name if scope.name == "<module>" else cls
            for stmt in node.body:
                go(stmt, scope, inner_cls)
            return
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            assert isinstance(node, ast.Try)
            catches = any(_is_import_error_handler(h) for h in node.handlers)
            before = len(scope.imports)
            for stmt in node.body:
                go(stmt, guarded=True) if catches else go(stmt)
            tried = tuple(i.name for i in scope.imports[before:])
            for h in node.handlers:
                if catches and _is_import_error_handler(h) and tried:
                    go(h, fallback=tried)  # the fallback of the imports tried
                else:
                    go(h, guarded=True)  # an error path: runs only when something failed
            for stmt in [*node.orelse, *node.finalbody]:
                go(stmt)
            return
        if isinstance(node, (ast.With, ast.AsyncWith)):
            catches = any(_is_suppress_import_error(i) for i in node.items)
            for item in node.items:
                go(item)
            for stmt in node.body:
                go(stmt, guarded=True) if catches else go(stmt)
            return
        if isinstance(node, ast.If):
            truth = _truth(node.test, self.consts)
            go(node.test)
            if truth is not False:
                for stmt in node.body:
                    go(stmt, conditional=conditional or truth is None)
            if truth is not True:
                for stmt in node.orelse:
                    go(stmt, conditional=conditional or truth is None)
            return
        if isinstance(node, ast.Name):
            scope.mentions.add(node.id)
        elif isinstance(node, ast.Attribute):
            scope.mentions.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if len(node.value) <= 40:
                scope.literals.add(node.value)
        elif isinstance(node, ast.Call):
            self.call(node, scope, add)
        for child in ast.iter_child_nodes(node):
            go(child)

    def call(
        self, node: ast.Call, scope: _Scope, add: Callable[[str, int, tuple[str, ...]], None]
    ) -> None:
        func = node.func
        fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        strings = [
            a.value
            for a in [*node.args, *(k.value for k in node.keywords)]
            if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        if fname in _CODEC_CALLS or any(k.arg == "encoding" for k in node.keywords):
            scope.codec_args.update(strings)
        if fname in ("getattr", "hasattr", "setattr") and len(node.args) >= 2:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                scope.mentions.add(attr.value)
        if fname in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                return
            name = first.value
            if name.startswith("."):
                package = node.args[1] if len(node.args) > 1 else None
                for k in node.keywords:
                    if k.arg == "package":
                        package = k.value
                if isinstance(package, ast.Name) and package.id in ("__name__", "__package__"):
                    level = len(name) - len(name.lstrip("."))
                    resolved = self.resolve(name[level:] or None, level)
                    if resolved:
                        add(resolved, node.lineno, ())
                elif isinstance(package, ast.Constant) and isinstance(package.value, str):
                    level = len(name) - len(name.lstrip("."))
                    parts = package.value.split(".")
                    base = parts[: len(parts) - (level - 1)]
                    tail = [name[level:]] if name[level:] else []
                    add(".".join(base + tail), node.lineno, ())
            elif all(p.isidentifier() for p in name.split(".")):
                add(name, node.lineno, ())


def _summarize(tree: ast.Module, package: str | None) -> _Summary:
    return _Scanner(package).scan(tree)


def _host_stdlib_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths[k]).resolve() for k in ("stdlib", "platstdlib") if k in paths]


class _Finder:
    def __init__(self, filter_dir: Path, stdlib_dir: Path, builtins: frozenset[str]) -> None:
        self.filter_dir = filter_dir
        self.stdlib_dir = stdlib_dir
        self.builtins = builtins
        host_std = _host_stdlib_dirs()
        self.site_paths = [
            Path(p)
            for p in sys.path
            if p
            and Path(p).is_dir()
            and Path(p).resolve() not in host_std
            and not any(
                Path(p).resolve().is_relative_to(h) and "site-packages" not in p for h in host_std
            )
        ]

    @staticmethod
    def _in(root: Path, name: str) -> tuple[Path, bool] | None:
        base = root.joinpath(*name.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py", True
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), False
        return None

    def find(self, name: str) -> SourceModule | str | None:
        """A SourceModule; "builtin"; an error string for a C extension; None if missing."""
        top = name.split(".")[0]
        if name in self.builtins:
            return "builtin"
        if top == "proxywasm":
            if name.startswith(EXCLUDED):
                return None
            found = self._in(SDK_DIR.parent, name)
            return SourceModule(name, found[0], found[1], "sdk") if found else None
        found = self._in(self.filter_dir, name)
        if found:
            return SourceModule(name, found[0], found[1], "filter")
        ext = self._extension(self.filter_dir, name)
        if ext:
            return ext
        needs = STAND_INS.get(name)
        if needs is not None and needs not in self.builtins:
            return SourceModule(name, STAND_IN_DIR / f"{name}.py", False, "stdlib")
        found = self._in(self.stdlib_dir, name)
        if found:
            return SourceModule(name, found[0], found[1], "stdlib")
        if top in sys.stdlib_module_names:
            return None  # a stdlib module the wasm CPython does not have (e.g. _socket)
        for root in self.site_paths:
            found = self._in(root, name)
            if found:
                return SourceModule(name, found[0], found[1], "site-packages")
            ext = self._extension(root, name)
            if ext:
                return ext
        return None

    @staticmethod
    def _extension(root: Path, name: str) -> str | None:
        """An error message if ``name`` is a compiled extension under ``root``."""
        base = root.joinpath(*name.split("."))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for candidate in (base.with_name(base.name + suffix), base / f"__init__{suffix}"):
                if candidate.is_file():
                    return (
                        f"{name} is a C extension ({candidate}); only pure-Python modules can be "
                        "frozen into a module (look for a pure-Python alternative)"
                    )
        return None


#: Module names a filter file may not take: the SDK's own packages.
SDK_MODULES = frozenset({"proxywasm", "proxywasm_abi", "proxywasm_compiler", "_proxywasm_glue"})


def filter_module_name(filter_path: Path, builtins: frozenset[str] = frozenset()) -> str:
    """The module name of a filter file, refused (:class:`ClosureError`) when it cannot be one.

    Inside the module the filter is imported by its file's stem, beside the
    standard library and the SDK: ``json.py`` would shadow ``json`` for the
    SDK too, ``class.py`` cannot be imported at all. The message names the fix.
    """
    import keyword

    name = filter_path.stem
    fix = f"rename the file, e.g. to {_suggest(name)}.py"
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ClosureError(f"{filter_path.name}: {name!r} is not a valid Python module name: {fix}")
    if name in sys.stdlib_module_names or name in builtins:
        raise ClosureError(
            f"{filter_path.name}: the filter's module name {name!r} would shadow the standard library "
            f"module {name!r} inside the module (the SDK imports it too): {fix}"
        )
    if name in SDK_MODULES:
        raise ClosureError(f"{filter_path.name}: the module name {name!r} is the SDK's own: {fix}")
    return name


def _suggest(name: str) -> str:
    import keyword
    import re

    cleaned = re.sub(r"\W+", "_", name).strip("_") or "my"
    if cleaned[0].isdigit():
        cleaned = "f_" + cleaned
    if (
        cleaned != name
        and not keyword.iskeyword(cleaned)
        and cleaned not in sys.stdlib_module_names
    ):
        return cleaned
    return f"{cleaned}_filter"


def _normalize_encoding(name: str) -> str:
    """``encodings.normalize_encoding`` of a lower-cased name (as the codec registry does)."""
    chars: list[str] = []
    punct = False
    for c in name.lower():
        if c.isalnum() or c == ".":
            if punct and chars:
                chars.append("_")
            if c.isascii():
                chars.append(c)
            punct = False
        else:
            punct = True
    return "".join(chars)


class _Codecs:
    """Codec names -> ``encodings`` modules, as ``encodings.search_function`` finds them."""

    def __init__(self, stdlib_dir: Path) -> None:
        folder = stdlib_dir / "encodings"
        self.modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        self.aliases: dict[str, str] = {}
        aliases = folder / "aliases.py"
        if aliases.is_file():
            for node in ast.parse(aliases.read_bytes()).body:
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                    value = ast.literal_eval(node.value)
                    if isinstance(value, dict):
                        self.aliases.update({str(k): str(v) for k, v in value.items()})

    def module(self, name: str, *, transforms: bool) -> str | None:
        """The ``encodings`` module that codec ``name`` resolves to, if any."""
        if not name or len(name) > 40 or not name.isascii():
            return None
        norm = _normalize_encoding(name)
        aliased = self.aliases.get(norm) or self.aliases.get(norm.replace(".", "_"))
        for candidate in [aliased, norm] if aliased else [norm]:
            if not candidate or "." in candidate or candidate not in self.modules:
                continue
            if candidate in ("aliases", "mbcs", "oem") or (
                candidate in TRANSFORM_CODECS and not transforms
            ):
                return None
            return f"encodings.{candidate}"
        return None


@dataclass(frozen=True)
class _Edge:
    target: str
    required: bool
    where: str
    #: ``from pkg import name``: ``name`` may be an attribute, not a module
    member: bool = False


@dataclass(frozen=True)
class _Failure:
    """Why a module cannot be frozen: the import that fails, and the chain above it."""

    name: str
    importer: str
    where: str
    reason: str
    chain: tuple[str, ...]


def _fix_for(name: str, found: str | None, stdlib: bool) -> str:
    top = name.split(".")[0]
    fix = FIXES.get(name) or FIXES.get(top)
    if isinstance(found, str):  # a C extension
        return f"{found}; {fix or _GENERIC_EXTENSION_FIX}"
    if stdlib or top in sys.stdlib_module_names:
        return (
            f"{name!r} is part of CPython but not of its wasm32-wasi build"
            f"{': ' + fix if fix else ''}"
        )
    return (
        f"no module named {name!r} (not in the filter's folder, the CPython 3.11 stdlib for "
        f"wasm, or the active environment: pip install it here)" + (f"; {fix}" if fix else "")
    )


class _Walk:
    """The closure's state: modules found, their import edges, the names reached."""

    def __init__(
        self,
        finder: _Finder,
        codecs: _Codecs,
        builtins: frozenset[str],
        parse: ParseFn = host_parse,
    ) -> None:
        self.finder = finder
        #: the grammar sources are read with (the target Python's, see grammar.py)
        self.parse = parse
        self.codecs = codecs
        self.builtins = builtins
        self.lookups: dict[str, SourceModule | str | None] = {}
        self.order: list[str] = []
        self.modules: dict[str, SourceModule] = {}
        self.edges: dict[str, list[_Edge]] = {}
        self.broken: dict[str, _Failure] = {}
        self.pending: list[tuple[SourceModule, _Scope]] = []
        self.queue: list[SourceModule] = []
        self.mentions: set[str] = set()
        #: the names each module's reached code mentions, and who imports each module
        self.mentions_by: dict[str, set[str]] = {}
        self.importers: dict[str, set[str]] = {}
        self.optional_builtins: set[str] = set()
        self.reached_funcs: set[tuple[str, str]] = set()

    def lookup(self, name: str) -> SourceModule | str | None:
        if name not in self.lookups:
            self.lookups[name] = self.finder.find(name)
        return self.lookups[name]

    def discover(self, mod: SourceModule) -> None:
        if mod.name not in self.modules:
            self.modules[mod.name] = mod
            self.order.append(mod.name)
            self.edges[mod.name] = []
            self.queue.append(mod)

    def edge(
        self, mod: SourceModule, target: str, required: bool, where: str, member: bool
    ) -> None:
        if target in SKIPPED or target.startswith(EXCLUDED) or target == mod.name:
            return
        self.edges[mod.name].append(_Edge(target, required, where, member))
        self.importers.setdefault(target, set()).add(mod.name)
        found = self.lookup(target)
        if isinstance(found, SourceModule):
            self.discover(found)

    def process(self, mod: SourceModule, scope: _Scope, *, literals: bool) -> None:
        """Follow one reached scope of ``mod``: its names, imports and codec names."""
        self.mentions |= scope.mentions
        self.mentions_by.setdefault(mod.name, set()).update(scope.mentions)
        library = mod.origin in ("stdlib", "sdk")
        for imp in scope.imports:
            if imp.fallback_for and all(
                isinstance(self.lookup(n), SourceModule) or self.lookup(n) == "builtin"
                for n in imp.fallback_for
            ):
                continue  # the guarded import works: its fallback is not needed
            optional = imp.optional or (library and imp.conditional)
            if (mod.name, imp.name) in NOT_FOLLOWED:
                continue
            if library and imp.guarded and self.lookup(imp.name) != "builtin":
                # The stdlib works without what it guards (tracemalloc in warnings,
                # Jython's org.python in copy): not followed; C accelerators are.
                continue
            where = f"{mod.path}:{imp.line}"
            parts = imp.name.split(".")
            for i in range(len(parts)):
                self.edge(mod, ".".join(parts[: i + 1]), not optional, where, False)
            for member in imp.fromlist:
                if member != "*":
                    self.edge(mod, f"{imp.name}.{member}", not optional, where, True)
        names = {c for c in scope.codec_args if self.codecs.module(c, transforms=True)}
        if literals:
            names |= {c for c in scope.literals if self.codecs.module(c, transforms=False)}
        for literal in sorted(names):
            codec = self.codecs.module(literal, transforms=True)
            if codec:
                self.edge(mod, codec, False, f"{mod.path} (the codec name {literal!r})", False)

    def read(self, mod: SourceModule) -> None:
        try:
            tree = self.parse(mod.path.read_bytes(), str(mod.path))
        except SyntaxError as exc:
            self.broken[mod.name] = _Failure(
                mod.name,
                mod.name,
                f"{exc.filename}:{exc.lineno}:{exc.offset or 0}",
                f"syntax error: {exc.msg}",
                (),
            )
            return
        package = mod.name if mod.is_package else mod.name.rpartition(".")[0] or None
        summary = _summarize(tree, package)
        parents = mod.name.split(".")[:-1]
        for i in range(len(parents)):  # a submodule needs its parent packages
            self.edge(mod, ".".join(parents[: i + 1]), True, str(mod.path), False)
        library = mod.origin in ("stdlib", "sdk") and mod.name not in ENTRY_MODULES
        if library:
            # Guarded C accelerators anywhere in the module (`from _json import ...`)
            # are linked in when present, as before function granularity.
            for scope in [summary.top, *summary.functions]:
                for imp in scope.imports:
                    if imp.optional and imp.name in self.builtins:
                        self.optional_builtins.add(imp.name)
        self.process(mod, summary.top, literals=not library)
        granular = mod.origin in GRANULAR_ORIGINS and mod.name not in ENTRY_MODULES
        for func in summary.functions:
            accelerated = summary.shadowed.get(func.name) if func.cls is None else None
            if granular and accelerated and self.lookup(accelerated) == "builtin":
                continue  # replaced by the C accelerator's (warnings.warn by _warnings.warn)
            if granular:
                self.pending.append((mod, func))
            else:
                self.process(mod, func, literals=not func.data)

    def visible(self, module: str) -> set[str]:
        """Names that can refer to ``module``'s globals: mentioned by it or by its importers."""
        out = set(self.mentions_by.get(module, ()))
        for importer in self.importers.get(module, ()):
            out |= self.mentions_by.get(importer, set())
        return out

    def reached(self, mod: SourceModule, func: _Scope, visible: set[str]) -> bool:
        if func.serves is not None:  # a module __getattr__
            return not func.serves or bool(func.serves & visible)
        if func.cls is None:
            return func.name in visible or func.name.startswith("__")
        if func.cls not in visible:
            return False  # no code reached makes or subclasses the class
        if func.name.startswith("__") and func.name.endswith("__"):
            return True
        return func.name in self.mentions  # a method: called on an instance, anywhere

    def run(self) -> None:
        """Read modules and reach functions until nothing new is found."""
        hidden_done: set[tuple[str, str, str]] = set()
        while True:
            while self.queue:
                self.read(self.queue.pop(0))
            progress = False
            still: list[tuple[SourceModule, _Scope]] = []
            visible: dict[str, set[str]] = {}
            for mod, func in self.pending:
                if mod.name not in visible:
                    visible[mod.name] = self.visible(mod.name)
                if self.reached(mod, func, visible[mod.name]):
                    self.reached_funcs.add((mod.name, func.name))
                    self.process(mod, func, literals=not func.data)
                    progress = True
                else:
                    still.append((mod, func))
            self.pending = still
            used = {e.target for edges in self.edges.values() for e in edges} | {
                n for n, f in self.lookups.items() if f == "builtin"
            }
            for entry in C_HIDDEN_IMPORTS:
                cmod, trigger, target = entry
                if entry in hidden_done or cmod not in used or self.lookup(cmod) != "builtin":
                    continue
                if trigger and trigger not in self.mentions:
                    continue
                hidden_done.add(entry)
                importer = next(
                    self.modules[m]
                    for m in self.order
                    if any(e.target == cmod for e in self.edges[m])
                )
                where = f"{importer.path} (the C module {cmod} imports {target})"
                for i, _ in enumerate(parts := target.split(".")):
                    self.edge(importer, ".".join(parts[: i + 1]), False, where, False)
                progress = True
            for entry in DYNAMIC_IMPORTS:
                module, function, pattern = entry
                if entry in hidden_done or (module, function) not in self.reached_funcs:
                    continue
                hidden_done.add(entry)
                importer = self.modules[module]
                for path in sorted(self.finder.stdlib_dir.glob(f"{pattern}.py")):
                    where = f"{importer.path} ({function} imports {path.stem} by a computed name)"
                    self.edge(importer, path.stem, False, where, False)
                progress = True
            if not progress and not self.queue:
                return

    def failures(self) -> None:
        """Mark every module that cannot be imported: a required import of it fails."""
        changed = True
        while changed:
            changed = False
            for name in self.order:
                if name in self.broken:
                    continue
                for e in self.edges[name]:
                    if not e.required:
                        continue
                    found = self.lookup(e.target)
                    if isinstance(found, SourceModule):
                        below = self.broken.get(e.target)
                        if below is None:
                            continue
                        failure = _Failure(
                            below.name,
                            below.importer,
                            below.where,
                            below.reason,
                            (e.target, *below.chain),
                        )
                    elif found == "builtin" or (found is None and e.member):
                        continue
                    else:
                        reason = _fix_for(e.target, found, self.modules[name].origin == "stdlib")
                        failure = _Failure(e.target, name, e.where, reason, ())
                    self.broken[name] = failure
                    changed = True
                    break

    def closure(self, roots: Iterable[str]) -> Closure:
        """The modules reachable from ``roots`` through imports that work."""
        self.failures()
        out = Closure()
        keep: set[str] = set()
        todo = list(roots)
        for root in todo:
            if root in self.broken:
                f = self.broken[root]
                chain = " -> ".join((root, *f.chain))
                via = f" (needed through {chain})" if f.chain else ""
                raise ClosureError(
                    f"cannot freeze {f.name!r}, imported by {f.importer} ({f.where}){via}: "
                    f"{f.reason}"
                )
        while todo:
            name = todo.pop(0)
            if name in keep:
                continue
            keep.add(name)
            origin = self.modules[name].origin
            library = origin in ("stdlib", "sdk")
            for e in self.edges[name]:
                found = self.lookup(e.target)
                if found == "builtin":
                    if e.required or not library:
                        out.builtins_used.add(e.target)
                    else:
                        out.optional_builtins.add(e.target)
                elif isinstance(found, SourceModule) and e.target not in self.broken:
                    todo.append(e.target)
                    out.imported_by.setdefault(e.target, f"{name} ({e.where})")
                elif not (found is None and e.member) and e.target not in keep:
                    out.skipped_optional.setdefault(e.target, e.where)
        out.modules = {n: self.modules[n] for n in self.order if n in keep}
        out.optional_builtins |= self.optional_builtins
        out.builtins_used -= SKIPPED
        return out


def resolve_closure(
    filter_path: Path,
    stdlib_dir: Path,
    builtins: frozenset[str],
    extra: tuple[str, ...] = (),
    *,
    parse: ParseFn = host_parse,
) -> tuple[str, Closure]:
    """Walk the imports of ``filter_path``; returns (the filter's module name, the closure).

    ``parse`` reads each module's source with the target Python's grammar
    (:mod:`.grammar`): the host's ``ast`` by default.
    """
    filter_path = filter_path.resolve()
    if not filter_path.is_file():
        raise ClosureError(f"no such filter file: {filter_path}")
    if filter_path.suffix != ".py":
        raise ClosureError(f"{filter_path} is not a .py file")
    modname = filter_module_name(filter_path, builtins)
    finder = _Finder(filter_path.parent, stdlib_dir, builtins)
    walk = _Walk(finder, _Codecs(stdlib_dir), builtins, parse)
    root = SourceModule(modname, filter_path, False, "filter")
    walk.lookups[modname] = root
    walk.discover(root)
    roots = [modname]
    for name in extra:
        found = walk.lookup(name)
        if found == "builtin":
            continue
        if not isinstance(found, SourceModule):
            raise ClosureError(
                f"cannot freeze {name!r}, needed by the build ({name}): "
                + _fix_for(name, found if isinstance(found, str) else None, False)
            )
        walk.discover(found)
        roots.append(name)
    walk.run()
    return modname, walk.closure(roots)
