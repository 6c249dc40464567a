"""The compact backend's frontend: mypy's typed AST of a filter -> :mod:`.ir`.

mypy checks the filter against the real SDK (the same check the user runs);
``result.types`` gives the type of every expression, ``TypeInfo`` the
classes. The walk below is explicit (mypy is compiled with mypyc: an
interpreted subclass of its visitors fails). Anything outside the subset
raises :class:`CompactError` naming file:line and the construct.

One whole-program refinement: ``HttpContext.root`` is typed as the plugin's
registered root class (the only class a compact module can create roots of),
so ``self.root.value`` type-checks where plain mypy sees ``RootContext``; the
constructor checks it at run time.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import os
from collections.abc import Callable
from pathlib import Path

from mypy import nodes as n
from mypy import types as mt
from mypy.build import build as mypy_build
from mypy.modulefinder import BuildSource
from mypy.options import Options
from mypy.plugin import AttributeContext, Plugin

from . import ir
from .ir import BOOL, BYTES, DYN, FLOAT, INT, NONE, STR, Ty

__all__ = ["CompactError", "lower_module", "typecheck"]

HINT = "use `--backend cpython` for this filter"
SDK_ROOT = "proxywasm.contexts.RootContext"
SDK_HTTP = "proxywasm.contexts.HttpContext"
SDK_TCP = "proxywasm.contexts.StreamContext"
SDK_CLASSES = {SDK_ROOT: "root", SDK_HTTP: "http", SDK_TCP: "tcp"}
#: Modules a compact filter may import; typing ones for annotations only (a use at run time is an error).
ALLOWED_IMPORTS = frozenset(
    {
        "json",
        "proxywasm",
        "typing",
        "__future__",
        "proxywasm.types",
        "collections.abc",
        "proxywasm.metrics",
        "proxywasm.hostcalls",
        "proxywasm.views",
        "proxywasm.calls",
    }
)
#: SDK helper modules written in the subset: compiled from their Python source with the filter.
COMPILED_SDK_MODULES = frozenset({"proxywasm.shared"})
#: Builtin exception classes the runtime knows (their C descriptors are ``pw_<Name>``).
BUILTIN_EXCEPTIONS = frozenset(
    {
        "BaseException",
        "Exception",
        "TypeError",
        "ValueError",
        "AttributeError",
        "KeyError",
        "IndexError",
        "OverflowError",
        "ZeroDivisionError",
        "RuntimeError",
        "MemoryError",
        "LookupError",
        "ArithmeticError",
        "UnicodeDecodeError",
        "UnicodeError",
        "NotImplementedError",
        "StopIteration",
        "AssertionError",
        "RecursionError",
    }
)
SDK_EXCEPTIONS = {
    "json.decoder.JSONDecodeError": "pw_JSONDecodeError",
    "proxywasm.types.ConfigError": "pw_ConfigError",
    "proxywasm.types.HostCallError": "pw_HostCallError",
    "proxywasm.types.ProxyWasmError": "pw_ProxyWasmError",
    "proxywasm.types.CasMismatchError": "pw_CasMismatchError",
}
#: isinstance() of a builtin type: the runtime tags it matches (see pw_rt.h).
_TAGS = {
    "NoneType": 1,
    "bool": 2,
    "int": 3,
    "float": 4,
    "str": 5,
    "bytes": 6,
    "list": 7,
    "dict": 8,
    "tuple": 11,
    "set": 12,
}
ISINSTANCE_MASKS = {
    "builtins.bool": 1 << 2,
    "builtins.int": (1 << 2) | (1 << 3),
    "builtins.float": 1 << 4,
    "builtins.str": 1 << 5,
    "builtins.bytes": 1 << 6,
    "builtins.list": 1 << 7,
    "builtins.dict": 1 << 8,
    "builtins.tuple": 1 << 11,
    "builtins.set": 1 << 12,
    "builtins.object": 0xFFFFFFFF,
}
#: The views of ``proxywasm.views`` (``self.request``, ``self.response``): implemented in C
#: (runtime/pw_views.c) with the semantics of their Python source; their C descriptors.
VIEW_CLASSES = {
    "proxywasm.views.HeaderMap": "pw_cls_HeaderMap",
    "proxywasm.views.Body": "pw_cls_Body",
    "proxywasm.views.Request": "pw_cls_Request",
    "proxywasm.views.Response": "pw_cls_Response",
    "proxywasm.views.FrozenHeaders": "pw_cls_FrozenHeaders",
    "proxywasm.calls.HttpResponse": "pw_cls_HttpResponse",
}
#: Attributes (properties) of ``Request`` / ``Response``, read with ``pw_view_getattr``.
VIEW_ATTRIBUTES = frozenset(
    {"headers", "trailers", "body", "method", "path", "authority", "scheme", "status"}
)
#: The views' attributes and methods with a C function of their own (runtime/pw_views.c), called
#: when mypy types the receiver: no name compared at run time. The rest go by name.
VIEW_DIRECT_ATTRIBUTES = {
    "headers": "pw_view_headers",
    "trailers": "pw_view_trailers",
    "body": "pw_view_body",
}
HEADER_MAP = "proxywasm.views.HeaderMap"
#: HeaderMap methods: C function and the number of arguments it takes (a missing optional one
#: is passed as None, or NULL for ``pop``'s).
HEADER_MAP_DIRECT = {
    "get": ("pw_hm_get", 1, 2, "None"),
    "pop": ("pw_hm_pop", 1, 2, "NULL"),
    "add": ("pw_hm_add", 2, 2, ""),
    "__getitem__": ("pw_hm_getitem", 1, 1, ""),
    "__setitem__": ("pw_hm_setitem", 2, 2, ""),
    "__delitem__": ("pw_hm_delitem", 1, 1, ""),
    "__contains__": ("pw_hm_contains", 1, 1, ""),
}
#: ``ctx.request.headers`` and the like as IR: (C function of the attribute, is-trailers)
_CTX_MAPS = {"pw_view_headers": 0, "pw_view_trailers": 1}
#: Attributes of a callout's answer (``proxywasm.calls.HttpResponse``).
RESPONSE_ATTRIBUTES = frozenset({"status", "headers", "body", "trailers"})
#: Callback slots whose result the host gets as an action: a method typed ``Action | None``
#: (or not typed) fills them through a thunk that converts its result (None continues).
ACTION_SLOTS = frozenset(
    {
        "on_http_request_headers",
        "on_http_request_body",
        "on_http_request_trailers",
        "on_http_response_headers",
        "on_http_response_body",
        "on_http_response_trailers",
        "on_new_connection",
        "on_downstream_data",
        "on_upstream_data",
    }
)
#: Callbacks that may be ``async def``: the stream direction each pauses (-1: a root's).
ASYNC_SLOTS = {
    "on_http_request_headers": 0,
    "on_http_request_body": 0,
    "on_http_request_trailers": 0,
    "on_http_response_headers": 1,
    "on_http_response_body": 1,
    "on_http_response_trailers": 1,
    "on_new_connection": 2,
    "on_downstream_data": 2,
    "on_upstream_data": 3,
    "on_tick": -1,
}
#: What an ``await`` may wait for (``self.http_call(...)``, ``proxywasm.gather(...)``).
AWAITABLES = frozenset({"proxywasm.calls.HttpCall", "proxywasm.calls._Gather"})
#: SDK classes made by the runtime (metrics): constructor C descriptors.
SDK_VALUE_CLASSES = {
    "proxywasm.metrics.Counter": "pw_cls_Counter",
    "proxywasm.metrics.Gauge": "pw_cls_Gauge",
    "proxywasm.metrics.Histogram": "pw_cls_Histogram",
}


class CompactError(Exception):
    """A filter the compact backend cannot compile; the message names file:line."""


# -- mypy ---------------------------------------------------------------------------


def _root_names(source: Path) -> list[str]:
    """Names of the classes passed to ``set_root_context`` at module level (read with ast)."""
    names: list[str] = []
    for stmt in ast.parse(source.read_text(), str(source)).body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname == "set_root_context" and stmt.value.args:
                arg = stmt.value.args[0]
                if isinstance(arg, ast.Name):
                    names.append(arg.id)
    return names


class _RootPlugin(Plugin):
    """Types ``<stream context>.root`` as the registered root class (see the module doc)."""

    root_fullname: str | None = None

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], mt.Type] | None:
        if fullname != "proxywasm.contexts._StreamContext.root" or self.root_fullname is None:
            return None
        root = self.root_fullname

        def hook(ctx: AttributeContext) -> mt.Type:
            if str(ctx.type).startswith("proxywasm."):
                return ctx.default_attr_type
            try:
                return ctx.api.named_generic_type(root, [])
            except Exception:  # noqa: BLE001  # the class is not analysed yet: no refinement
                return ctx.default_attr_type

        return hook


def _search_paths() -> list[str]:
    import proxywasm
    import proxywasm_abi  # type: ignore[import-not-found]

    return [
        str(Path(proxywasm.__file__).resolve().parent.parent),
        str(Path(proxywasm_abi.__file__).resolve().parent),
    ]


def typecheck(source: Path, modname: str) -> tuple[n.MypyFile, dict[n.Expression, mt.Type]]:
    """Run mypy on ``source`` (module ``modname``); raise CompactError with its messages."""
    files, types = typecheck_program(source, modname)
    return files[modname], types


def typecheck_program(
    source: Path, modname: str
) -> tuple[dict[str, n.MypyFile], dict[n.Expression, mt.Type]]:
    """Run mypy on ``source``: every module it analysed (by name) and the type of every expression."""
    options = Options()
    options.preserve_asts = True
    options.export_types = True
    options.incremental = False
    options.cache_dir = os.devnull
    options.check_untyped_defs = True
    options.python_version = (3, 11)
    options.mypy_path = _search_paths()
    options.enable_error_code = ["possibly-undefined"]
    options.process_error_codes(error_callback=lambda msg: None)
    plugin = _RootPlugin(options)
    roots = _root_names(source)
    if len(roots) == 1:
        plugin.root_fullname = f"{modname}.{roots[0]}"
    result = mypy_build([BuildSource(str(source), modname)], options, extra_plugins=[plugin])
    errors = [e for e in result.errors if ": error:" in e]
    if errors:
        raise CompactError(
            "mypy rejects the filter (the compact backend compiles what mypy types):\n"
            + "\n".join(result.errors)
        )
    return dict(result.files), result.types


# -- types ------------------------------------------------------------------------------

_BUILTIN_TYPES = {
    "builtins.int": INT,
    "builtins.bool": BOOL,
    "builtins.float": FLOAT,
    "builtins.str": STR,
    "builtins.bytes": BYTES,
    "builtins.object": DYN,
}


def _intenum(fullname: str) -> bool:
    mod, _, name = fullname.rpartition(".")
    if not mod.startswith("proxywasm"):
        return False
    try:
        obj = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type) and issubclass(obj, enum.IntEnum)


#: TypeInfo of every class a Ty names (to find methods of a union's common base).
_TYPEINFOS: dict[str, n.TypeInfo] = {}


def _common_base(items: list[mt.ProperType]) -> n.TypeInfo | None:
    """The nearest class every item (all instances) derives from, unless that is ``object``."""
    if not items or not all(isinstance(i, mt.Instance) for i in items):
        return None
    infos = [i.type for i in items if isinstance(i, mt.Instance)]
    for cand in infos[0].mro:
        if cand.fullname == "builtins.object":
            return None
        if all(info.has_base(cand.fullname) for info in infos):
            return cand
    return None


def to_ty(t: mt.Type | None) -> Ty:
    """The compact type of a mypy type (``dyn`` for what has no closer one)."""
    p = mt.get_proper_type(t)
    if p is None or isinstance(p, mt.AnyType):
        return DYN
    if isinstance(p, mt.NoneType):
        return NONE
    if isinstance(p, mt.LiteralType):
        return to_ty(p.fallback)
    if isinstance(p, mt.Instance):
        name = p.type.fullname
        if p.type.has_base("builtins.BaseException"):
            _TYPEINFOS[name] = p.type
            return Ty("exc", cls=name)
        if name in _BUILTIN_TYPES:
            return _BUILTIN_TYPES[name]
        if p.type.is_enum and _intenum(name):
            return INT
        if p.type.fullname.startswith(("builtins.", "typing.", "collections.")):
            return DYN
        _TYPEINFOS[name] = p.type
        return Ty("inst", cls=name)
    if isinstance(p, mt.UnionType):
        items = [to_ty(i) for i in p.items]
        real = [i for i in items if i.kind != "none"]
        if len(set(real)) == 1 and len(real) < len(items):
            return ir.opt(real[0])
        if len(set(items)) == 1:
            return items[0]
        base = _common_base([mt.get_proper_type(i) for i in p.items])
        if base is not None and all(i.kind == "inst" for i in items):
            _TYPEINFOS[base.fullname] = base
            return Ty("inst", cls=base.fullname)
        return DYN
    return DYN


def _absolute_import(tree: n.MypyFile, stmt: n.ImportFrom) -> str:
    """The module ``from <stmt.id> import ...`` names, relative imports resolved."""
    if not stmt.relative:
        return stmt.id
    parts = tree.fullname.split(".")
    if not tree.is_package_init_file():
        parts = parts[:-1]
    parts = parts[: len(parts) - (stmt.relative - 1)]
    return ".".join(parts + ([stmt.id] if stmt.id else []))


def _type_checking_only(stmt: n.Statement) -> bool:
    """``if TYPE_CHECKING:`` holding only imports (names for annotations, never run)."""
    if not isinstance(stmt, n.IfStmt) or len(stmt.expr) != 1:
        return False
    if stmt.else_body is not None and stmt.else_body.body:
        return False
    test = stmt.expr[0]
    return (
        isinstance(test, n.NameExpr)
        and test.name == "TYPE_CHECKING"
        and all(isinstance(x, (n.Import, n.ImportFrom)) for b in stmt.body for x in b.body)
    )


def _view_aliases(source: str, fdef: n.FuncDef) -> set[tuple[int, int]]:
    """(line, column) of the statements ``h = ctx.request.headers`` (``.response``, ``.trailers``)
    at the top of ``fdef``'s body that can stay aliases: ``h`` names that expression everywhere
    (it is the same object each time; making it has no effect a filter can see), so each use of
    ``h`` is the expression itself and calls on it need no view made (``pw_ctx_hm_*``).

    Read with ast: ``h`` is bound there only and read only after that statement; ``ctx`` is a
    parameter never rebound; no nested scope. Anything else keeps ``h`` a plain local.
    """
    try:
        tree = ast.parse(Path(source).read_text(), source)
    except (OSError, SyntaxError):
        return set()
    fn = next(
        (
            x
            for x in ast.walk(tree)
            if isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef))
            and x.name == fdef.name
            and x.lineno == fdef.line
        ),
        None,
    )
    if fn is None:
        return set()
    bound: dict[str, int] = {}
    for x in ast.walk(fn):
        names: list[str] = []
        if x is not fn and isinstance(
            x, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
        ):
            return set()
        if isinstance(x, ast.Name) and not isinstance(x.ctx, ast.Load):
            names = [x.id]
        elif isinstance(x, ast.ExceptHandler) and x.name:
            names = [x.name]
        elif isinstance(x, (ast.Global, ast.Nonlocal)):
            names = list(x.names)
        elif isinstance(x, (ast.Import, ast.ImportFrom)):
            names = [a.asname or a.name.split(".")[0] for a in x.names]
        elif isinstance(x, (ast.MatchAs, ast.MatchStar)) and x.name:
            names = [x.name]
        elif isinstance(x, ast.MatchMapping) and x.rest:
            names = [x.rest]
        for name in names:
            bound[name] = bound.get(name, 0) + 1
    args = fn.args
    params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    out: set[tuple[int, int]] = set()
    for i, st in enumerate(fn.body):
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            target, value = st.targets[0], st.value
        elif isinstance(st, ast.AnnAssign) and st.simple and st.value is not None:
            target, value = st.target, st.value
        else:
            continue
        if not (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Attribute)
            and value.attr in ("headers", "trailers")
            and isinstance(value.value, ast.Attribute)
            and value.value.attr in ("request", "response")
            and isinstance(value.value.value, ast.Name)
        ):
            continue
        alias, ctx = target.id, value.value.value.id
        if bound.get(alias) != 1 or ctx not in params or ctx in bound:
            continue
        if any(
            isinstance(x, ast.Name) and x.id == alias and isinstance(x.ctx, ast.Load)
            for earlier in fn.body[: i + 1]
            for x in ast.walk(earlier)
        ):
            continue
        out.add((st.lineno, st.col_offset))
    return out


def _is_text(v: ir.Expr) -> bool:
    """``v`` (maybe boxed to ``dyn``) is a str or bytes by its static type."""
    while isinstance(v, ir.Convert) and not v.truth:
        v = v.value
    return v.ty.kind in ("str", "bytes")


@dataclasses.dataclass
class _DefaultInit:
    """In a module body: evaluate a parameter default (``expr``) into the hidden global ``cname``."""

    cname: str
    expr: n.Expression
    ty: Ty


_BodyItem = n.Statement | _DefaultInit


def _compiled_helpers(files: dict[str, n.MypyFile], main: n.MypyFile) -> list[n.MypyFile]:
    """The SDK helper modules ``main`` imports (directly or through each other), dependencies first."""
    order: list[n.MypyFile] = []
    seen: set[str] = set()

    def visit(tree: n.MypyFile) -> None:
        for stmt in tree.defs:
            mods: list[str] = []
            if isinstance(stmt, n.Import):
                mods = [m for m, _ in stmt.ids]
            elif isinstance(stmt, n.ImportFrom):
                mods = [_absolute_import(tree, stmt)]
            for mod in mods:
                if mod in COMPILED_SDK_MODULES and mod in files and mod not in seen:
                    seen.add(mod)
                    visit(files[mod])
                    order.append(files[mod])

    visit(main)
    return order


# -- the SDK surface ----------------------------------------------------------------------

#: (method, C default, parameter types, result type) of the SDK callbacks, in slot order.
BASE_SLOTS: list[tuple[str, str, list[Ty], Ty]] = [
    ("on_done", "pw_default_on_done", [], BOOL),
    ("on_log", "pw_default_on_void", [], NONE),
    ("on_delete", "pw_default_on_void", [], NONE),
    ("on_http_call_response", "pw_default_on_http_call_response", [INT, INT, INT, INT], NONE),
]
ROOT_SLOTS = BASE_SLOTS + [
    ("on_vm_start", "pw_default_on_start", [INT], BOOL),
    ("on_configure", "pw_default_on_start", [INT], BOOL),
    ("on_tick", "pw_default_on_tick", [], NONE),
    ("create_http_context", "pw_default_create_http_context", [INT], Ty("inst", cls=SDK_HTTP)),
    ("create_stream_context", "pw_default_create_stream_context", [INT], Ty("inst", cls=SDK_TCP)),
]
TCP_SLOTS = BASE_SLOTS + [
    ("on_new_connection", "pw_default_on_new_connection", [], INT),
    ("on_downstream_data", "pw_default_on_headers", [INT, BOOL], INT),
    ("on_downstream_close", "pw_default_on_close", [INT], NONE),
    ("on_upstream_data", "pw_default_on_headers", [INT, BOOL], INT),
    ("on_upstream_close", "pw_default_on_close", [INT], NONE),
]
HTTP_SLOTS = BASE_SLOTS + [
    ("on_http_request_headers", "pw_default_on_headers", [INT, BOOL], INT),
    ("on_http_request_body", "pw_default_on_headers", [INT, BOOL], INT),
    ("on_http_request_trailers", "pw_default_on_trailers", [INT], INT),
    ("on_http_response_headers", "pw_default_on_headers", [INT, BOOL], INT),
    ("on_http_response_body", "pw_default_on_headers", [INT, BOOL], INT),
    ("on_http_response_trailers", "pw_default_on_trailers", [INT], INT),
]

_REQ, _RESP = 0, 2  # proxy_map_type_t
_LOG_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4, "critical": 5}


def _async_what(fdef: n.FuncDef) -> str:
    """What the build error for an ``async def`` (or a generator) names."""
    if fdef.is_coroutine and not fdef.is_generator:
        return (
            f"async def or a generator ({fdef.name}: only the SDK callbacks, such as "
            "on_http_request_headers, may be async def; awaits elsewhere are not compiled yet)"
        )
    return f"async def or a generator ({fdef.name})"


def fn_type(params: list[Ty], ret: Ty) -> str:
    """The C function-pointer type of a method with these (non-self) parameters."""
    ret_c = "void" if ret.kind == "none" else ret.c
    return f"{ret_c} (*)({', '.join(['pw_obj *'] + [p.c for p in params])})"


class _Class:
    """What the frontend knows of a class while laying out the module."""

    def __init__(
        self,
        fullname: str,
        kind: str,
        fields: list[tuple[str, Ty]],
        slots: list[tuple[str, str, list[Ty], Ty]],
        cname: str,
    ) -> None:
        self.fullname = fullname
        self.kind = kind
        self.fields = fields
        self.slots = [(name, impl, params, ret) for name, impl, params, ret in slots]
        self.cname = cname
        self.init: tuple[str, n.FuncDef] | None = None  # user __init__ (C name, node)
        self.info: n.TypeInfo | None = None

    def field(self, name: str) -> tuple[int, Ty] | None:
        for i, (fname, ty) in enumerate(self.fields):
            if fname == name:
                return i, ty
        return None

    def slot(self, name: str) -> int | None:
        for i, s in enumerate(self.slots):
            if s[0] == name:
                return i
        return None


# -- lowering -----------------------------------------------------------------------------


class Lowerer:
    """Lowers one typed mypy module into a :class:`ir.ModuleIR`."""

    def __init__(
        self,
        path: str,
        tree: n.MypyFile,
        types: dict[n.Expression, mt.Type],
        helpers: list[n.MypyFile] | None = None,
    ) -> None:
        self.path = path
        self.tree = tree
        self.main_path = path
        self.main_tree = tree
        #: SDK helper modules compiled with the filter (imported ones first), see COMPILED_SDK_MODULES
        self.helpers = list(helpers or [])
        self.prefix = ""  # C names of a helper module's definitions carry its name
        self.types = types
        self.classes: dict[str, _Class] = {
            SDK_ROOT: _Class(
                SDK_ROOT, "root", [("context_id", INT)], ROOT_SLOTS, "pw_cls_RootContext"
            ),
            SDK_HTTP: _Class(
                SDK_HTTP,
                "http",
                # fields 2, 3: the self.request / self.response views, made on first use
                [
                    ("context_id", INT),
                    ("root", Ty("inst", cls=SDK_ROOT)),
                    ("_pw_request", DYN),
                    ("_pw_response", DYN),
                ],
                HTTP_SLOTS,
                "pw_cls_HttpContext",
            ),
            SDK_TCP: _Class(
                SDK_TCP,
                "tcp",
                [("context_id", INT), ("root", Ty("inst", cls=SDK_ROOT))],
                TCP_SLOTS,
                "pw_cls_StreamContext",
            ),
            "builtins.object": _Class("builtins.object", "plain", [], [], "pw_cls_object"),
        }
        self.exc_classes: dict[str, str] = {}  # user exception class -> its C descriptor
        self.exc_types: list[tuple[str, str, str]] = []
        self.globals: dict[str, Ty] = {}  # module global C name -> type
        self.global_cname: dict[str, str] = {}  # module global fullname -> its C name
        #: (id of a FuncDef, parameter index) -> the hidden global holding its default (evaluated at def time)
        self.default_globals: dict[tuple[int, int], tuple[str, Ty]] = {}
        self.init_body: list[ir.Stmt] = []
        self.thunks: dict[str, str] = {}
        self.renames: dict[
            int, str
        ] = {}  # id of a comprehension variable's Var -> its local  # "Class.method" -> C thunk of its bound method
        #: the method being lowered: statements ``h = self.request.headers`` kept as aliases
        #: (see _view_aliases), and each alias's Var (by id) -> the expression it names
        self.alias_sites: set[tuple[int, int]] = set()
        self.aliases: dict[int, n.Expression] = {}
        self.user_order: list[str] = []
        self.functions: list[ir.FuncIR] = []
        self.root: str | None = None
        self.module_funcs: dict[str, str] = {}
        self.base_of: dict[str, _Class] = {}
        self.fail_open: dict[str, bool] = {}
        #: id of a method's FuncDef -> its C name (when a thunk fills its vtable slot)
        self.method_cname: dict[int, str] = {}
        #: C names of the create_*_context functions made for `http_context = C`
        self.factory_thunks: set[str] = set()
        #: id of an async callback's FuncDef -> how its slot starts it
        self.coroutines: dict[int, ir.Coroutine] = {}
        #: inside an async callback: None where an await may stand, else where we are
        self.await_here: str | None = "a function that is not an async SDK callback"
        self.defaults: dict[str, list[tuple[int, ir.Const]]] = {}
        # per function
        self.locals: dict[str, Ty] = {}
        self.ret: Ty = NONE
        self.cur_class: _Class | None = None
        self.cur_func: n.FuncDef | None = None
        self._uid = 0
        self.finally_depth = 0
        self.loop_finally: list[int] = []

    # -- errors and helpers --

    def error(self, node: n.Context, what: str) -> CompactError:
        return CompactError(
            f"{self.path}:{node.line}: {what} is not supported by the compact backend yet; {HINT}"
        )

    def ty(self, e: n.Expression) -> Ty:
        return to_ty(self.types.get(e))

    def cname(self, *parts: str) -> str:
        self._uid += 1
        prefix = [self.prefix] if self.prefix else []
        return "_".join(["u"] + prefix + [p.replace(".", "_") for p in parts])

    # -- module --

    def module(self) -> ir.ModuleIR:
        units: list[tuple[str, n.MypyFile, list[n.ClassDef], list[n.FuncDef], list[_BodyItem]]] = []
        # helper modules first: their classes (exception bases) and bodies come before the filter's
        for tree in [*self.helpers, self.main_tree]:
            self.enter_module(tree)
            units.append((self.path, tree, *self.scan(tree)))
        for path, tree, _, func_defs, _ in units:
            self.enter_module(tree)
            for fdef in func_defs:
                self.functions.append(self.function(fdef, self.module_funcs[fdef.fullname], None))
        for path, tree, class_defs, _, _ in units:
            self.enter_module(tree)
            for cdef in class_defs:
                self.methods(cdef)
        init = None
        self.locals, self.ret, self.cur_class, self.cur_func = {}, NONE, None, None
        body: list[ir.Stmt] = []
        for path, tree, _, _, module_body in units:
            self.enter_module(tree)
            for item in module_body:
                if isinstance(item, _DefaultInit):
                    value = self.convert(self.expr(item.expr), item.ty)
                    body.append(ir.GlobalSet(item.expr.line, item.cname, value))
                else:
                    body.extend(self.stmt(item))
        self.enter_module(self.main_tree)
        if body:
            init = ir.FuncIR(
                "pw_module_body", "<module>", [], NONE, dict(self.locals), body, 1, self.path
            )
        if self.root is None:
            raise CompactError(
                f"{self.path}: the module never calls proxywasm.set_root_context(YourRoot): add it at the end"
            )
        return ir.ModuleIR(
            self.path,
            [self.class_ir(self.classes[c]) for c in self.user_order],
            self.functions,
            self.classes[self.root].cname,
            globals=list(self.globals.items()),
            init=init,
            exc_types=self.exc_types,
        )

    def enter_module(self, tree: n.MypyFile) -> None:
        """Lower ``tree`` next (the filter, or one of the SDK helper modules compiled with it)."""
        self.tree = tree
        self.path = self.main_path if tree is self.main_tree else tree.path
        self.prefix = "" if tree is self.main_tree else tree.fullname.replace(".", "_")

    def import_allowed(self, mod: str) -> bool:
        return mod in ALLOWED_IMPORTS or mod in COMPILED_SDK_MODULES

    def scan(self, tree: n.MypyFile) -> tuple[list[n.ClassDef], list[n.FuncDef], list[_BodyItem]]:
        """Lay out one module's classes, name its functions and globals; its body, to lower later."""
        class_defs: list[n.ClassDef] = []
        func_defs: list[n.FuncDef] = []
        module_body: list[_BodyItem] = []
        # the module's own variables (not imported names, not __name__ and friends) are its globals
        for gname, sym in tree.names.items():
            if (
                isinstance(sym.node, n.Var)
                and not gname.startswith("__")
                and sym.node.fullname == f"{tree.fullname}.{gname}"
            ):
                cname = gname if not self.prefix else f"{self.prefix}__{gname}"
                self.global_cname[sym.node.fullname] = cname
                self.globals[cname] = to_ty(sym.node.type)
        for stmt in tree.defs:
            if isinstance(stmt, n.Import):
                for mod, _ in stmt.ids:
                    if not self.import_allowed(mod):
                        raise self.error(
                            stmt, f"importing {mod!r} (compact filters import json and proxywasm)"
                        )
            elif isinstance(stmt, n.ImportFrom):
                if not self.import_allowed(_absolute_import(tree, stmt)):
                    raise self.error(stmt, f"importing from {stmt.id!r}")
            elif isinstance(stmt, n.ClassDef):
                class_defs.append(stmt)
                self.layout(stmt)
                for fdef in stmt.defs.body:
                    if isinstance(fdef, n.FuncDef):
                        module_body += self.default_inits(fdef, method=True)
            elif isinstance(stmt, n.FuncDef):
                if stmt.is_coroutine or stmt.is_generator:
                    raise self.error(stmt, _async_what(stmt))
                func_defs.append(stmt)
                self.module_funcs[stmt.fullname] = self.cname("f", stmt.name)
                module_body += self.default_inits(stmt, method=False)
            elif isinstance(stmt, n.ExpressionStmt) and isinstance(stmt.expr, n.StrExpr):
                pass  # docstring
            elif isinstance(stmt, n.ExpressionStmt) and isinstance(stmt.expr, n.CallExpr):
                if not self.module_call(stmt.expr):
                    module_body.append(stmt)
            elif _type_checking_only(stmt):
                pass  # `if TYPE_CHECKING:` imports for annotations; mypy has read them
            elif isinstance(stmt, n.AssignmentStmt) and all(
                isinstance(t, n.NameExpr) and t.name.startswith("__") for t in stmt.lvalues
            ):
                pass  # __all__ and friends: module metadata, not state a filter reads
            elif isinstance(
                stmt,
                (
                    n.AssignmentStmt,
                    n.ForStmt,
                    n.IfStmt,
                    n.WhileStmt,
                    n.TryStmt,
                    n.OperatorAssignmentStmt,
                ),
            ):
                module_body.append(stmt)
            else:
                raise self.error(stmt, f"module-level {type(stmt).__name__}")
        return class_defs, func_defs, module_body

    def default_inits(self, fdef: n.FuncDef, method: bool) -> list[_BodyItem]:
        """Hidden globals for the parameter defaults of ``fdef`` that are not literals.

        Python evaluates a default once, when the ``def`` runs: so does the
        module body here, at the same place; a call missing the argument reads
        the hidden global.
        """
        out: list[_BodyItem] = []
        for i, a in enumerate(fdef.arguments[1 if method else 0 :]):
            if a.initializer is None or self.const(a.initializer) is not None:
                continue
            t = self.ty(a.initializer)
            cname = self.cname("default", fdef.name, str(self._uid))
            self.globals[cname] = t
            self.default_globals[(id(fdef), i)] = (cname, t)
            out.append(_DefaultInit(cname, a.initializer, t))
        return out

    def default_of(self, fdef: n.FuncDef, index: int, p: n.Argument, line: int) -> ir.Expr:
        """The value of parameter ``index`` (after self) of ``fdef`` when a call leaves it out."""
        assert p.initializer is not None
        d = self.const(p.initializer)
        if d is not None:
            return d
        hidden = self.default_globals.get((id(fdef), index))
        if hidden is None:
            raise self.error(p.initializer, "a parameter default that is not a literal")
        return ir.Global(hidden[1], line, hidden[0])

    def global_of(self, e: n.Expression) -> str | None:
        """The C name of the module global ``e`` names (the filter's or a compiled helper's)."""
        if isinstance(e, n.RefExpr) and e.kind == n.GDEF and isinstance(e.node, n.Var):
            return self.global_cname.get(e.node.fullname)
        return None

    def target_names(self, target: n.Expression) -> list[n.NameExpr]:
        if isinstance(target, n.NameExpr):
            return [target]
        if isinstance(target, (n.TupleExpr, n.ListExpr)):
            return [x for item in target.items for x in self.target_names(item)]
        raise self.error(target, f"assigning to {type(target).__name__} at module level")

    def module_call(self, call: n.CallExpr) -> bool:
        """Handle ``set_root_context(Root)``; False for another call (run by the module body)."""
        callee = call.callee
        if (
            isinstance(callee, n.RefExpr)
            and callee.fullname == "proxywasm.dispatcher.set_root_context"
        ):
            if len(call.args) != 1 or call.arg_kinds[0] != n.ARG_POS:
                raise self.error(call, "set_root_context with a root_id")
            arg = call.args[0]
            if not (
                isinstance(arg, n.NameExpr)
                and isinstance(arg.node, n.TypeInfo)
                and arg.node.fullname in self.classes
                and self.classes[arg.node.fullname].kind == "root"
            ):
                raise self.error(
                    call, "set_root_context with anything but a RootContext subclass of this module"
                )
            if self.root is not None:
                raise self.error(call, "a second set_root_context")
            self.root = arg.node.fullname
            return True
        return False

    # -- classes --

    def layout(self, cdef: n.ClassDef) -> None:
        info = cdef.info
        for b in info.mro:
            _TYPEINFOS[b.fullname] = b
        if info.has_base("builtins.BaseException"):
            self.exception_class(cdef)
            return
        if len(info.bases) != 1 or info.bases[0].type.fullname not in self.classes:
            raise self.error(
                cdef,
                f"class {cdef.name} (a class must subclass RootContext, HttpContext or one "
                "of this module's context classes)",
            )
        if cdef.decorators:
            raise self.error(cdef, "a class decorator")
        base = self.classes[info.bases[0].type.fullname]
        cls = _Class(
            info.fullname, base.kind, list(base.fields), base.slots, self.cname("cls", info.name)
        )
        cls.info = info
        cls.init = base.init
        self.base_of[info.fullname] = base
        self.fail_open[info.fullname] = self.fail_open.get(base.fullname, False)
        self.defaults[info.fullname] = list(self.defaults.get(base.fullname, []))
        for name, sym in info.names.items():
            node = sym.node
            if name in ("fail_open", "http_context", "stream_context"):
                continue
            if isinstance(node, n.Var) and not name.startswith("__"):
                if cls.field(name) is not None:
                    continue  # redeclared: the base's field
                if node.is_classvar:
                    raise self.error(cdef, f"class variable {name}")
                t = to_ty(node.type)
                cls.fields.append((name, t))
            elif isinstance(node, (n.Decorator, n.OverloadedFuncDef)):
                raise self.error(node, f"decorated or overloaded method {name}")
        if len(cls.fields) > 64:
            raise self.error(cdef, "a class with more than 64 attributes")
        factories: list[n.AssignmentStmt] = []
        for stmt in cdef.defs.body:
            if isinstance(stmt, n.AssignmentStmt):
                target = stmt.lvalues[0]
                if len(stmt.lvalues) != 1 or not isinstance(target, n.NameExpr):
                    raise self.error(stmt, "this class-body assignment")
                if isinstance(stmt.rvalue, n.TempNode):
                    continue  # an annotation only: `root: "Root"`
                if target.name in ("http_context", "stream_context") and cls.kind == "root":
                    factories.append(stmt)  # after the methods: an own create_*_context wins
                    continue
                if target.name == "fail_open":
                    if not isinstance(stmt.rvalue, n.NameExpr) or stmt.rvalue.fullname not in (
                        "builtins.True",
                        "builtins.False",
                    ):
                        raise self.error(stmt, "fail_open set to anything but True or False")
                    self.fail_open[info.fullname] = stmt.rvalue.fullname == "builtins.True"
                    continue
                value = self.const(stmt.rvalue)
                if value is None:
                    raise self.error(stmt, "a class attribute whose value is not a literal")
                slot = cls.field(target.name)
                assert slot is not None
                converted = self.convert(value, slot[1])
                if not isinstance(converted, ir.Const):
                    raise self.error(stmt, f"a class attribute default of type {slot[1].kind}")
                self.defaults[info.fullname].append((slot[0], converted))
            elif isinstance(stmt, n.FuncDef):
                if stmt.is_coroutine or stmt.is_generator:
                    if not (
                        stmt.is_coroutine
                        and not stmt.is_generator
                        and stmt.name in ASYNC_SLOTS
                        and cls.slot(stmt.name) is not None
                        and self.sdk_defines(info, stmt.name)
                    ):
                        raise self.error(stmt, _async_what(stmt))
                    self.async_callback(stmt, cls)
                    continue
                if stmt.name == "__init__":
                    cls.init = (self.cname("m", info.name, "__init__"), stmt)
                    continue
                if stmt.name.startswith("__") and stmt.name != "__bool__":
                    raise self.error(stmt, f"special method {stmt.name}")
                if stmt.is_static or stmt.is_class or stmt.is_property:
                    raise self.error(stmt, "a static, class or property method")
                params, ret = self.signature(stmt)
                impl = self.cname("m", info.name, stmt.name)
                i = cls.slot(stmt.name)
                if i is None:
                    if self.sdk_defines(info, stmt.name):
                        raise self.error(stmt, f"overriding the SDK method {stmt.name}")
                    cls.slots.append((stmt.name, impl, params, ret))
                else:
                    _, _, bparams, bret = cls.slots[i]
                    self.method_cname[id(stmt)] = impl
                    if fn_type(params, ret) != fn_type(bparams, bret):
                        thunk = self.callback_thunk(stmt, cls, impl, params, ret, bparams, bret)
                        if thunk is None:
                            raise self.error(
                                stmt,
                                f"{stmt.name} with the C signature {fn_type(params, ret)} (the base "
                                f"has {fn_type(bparams, bret)}: annotate it as the base does)",
                            )
                        cls.slots[i] = (stmt.name, thunk, bparams, bret)
                    else:
                        cls.slots[i] = (stmt.name, impl, params, ret)
            elif (
                isinstance(stmt, n.ExpressionStmt)
                and isinstance(stmt.expr, n.StrExpr)
                or isinstance(stmt, n.PassStmt)
            ):
                pass
            else:
                raise self.error(stmt, f"{type(stmt).__name__} in a class body")
        for stmt in factories:
            self.context_factory(cls, stmt)
        self.classes[info.fullname] = cls
        self.user_order.append(info.fullname)

    def async_callback(self, fdef: n.FuncDef, cls: _Class) -> None:
        """An ``async def`` SDK callback: its slot gets a start function (see :class:`ir.Coroutine`)."""
        assert cls.info is not None
        i = cls.slot(fdef.name)
        assert i is not None
        _, _, bparams, bret = cls.slots[i]
        params, _ = self.signature(fdef)
        if len(params) != len(bparams) or any(p != b and p != DYN for p, b in zip(params, bparams)):
            raise self.error(fdef, f"{fdef.name} with parameters other than the SDK's")
        impl = self.cname("m", cls.info.name, fdef.name)
        start = self.cname("co", cls.info.name, fdef.name)
        self.method_cname[id(fdef)] = impl
        self.coroutines[id(fdef)] = ir.Coroutine(
            start, fdef.name, ASYNC_SLOTS[fdef.name], bparams, bret
        )
        cls.slots[i] = (fdef.name, start, bparams, bret)

    def callback_thunk(
        self,
        fdef: n.FuncDef,
        cls: _Class,
        impl: str,
        params: list[Ty],
        ret: Ty,
        bparams: list[Ty],
        bret: Ty,
    ) -> str | None:
        """A callback whose types differ from the SDK slot's (``-> Action | None``, untyped):
        a thunk with the slot's C signature that converts the arguments and the result as the
        native dispatcher does (None continues). None when it cannot be bridged."""
        if (
            len(params) != len(bparams)
            or cls.info is None
            or not self.sdk_defines(cls.info, fdef.name)
        ):
            return None
        line = fdef.line
        recv = ir.Local(Ty("inst", cls=cls.fullname), line, "self")
        args = [
            self.convert(ir.Local(b, line, f"a{k}"), p)
            for k, (b, p) in enumerate(zip(bparams, params))
        ]
        result: ir.Expr = ir.Call(ret, line, impl, [recv, *args])
        pre: list[ir.Stmt] = []
        if bret == INT and fdef.name in ACTION_SLOTS and ret.kind == "none":
            # `-> None`: the action is CONTINUE (what pw_callback_action makes of None)
            pre, result = [ir.ExprStmt(line, result)], ir.Const(INT, line, 0)
        elif bret == INT and fdef.name in ACTION_SLOTS:
            result = ir.Call(
                INT,
                line,
                "pw_callback_action",
                [self.convert(result, DYN), recv, ir.Raw(DYN, line, f'"{fdef.name}"')],
            )
        elif bret == BOOL:
            result = self.truth(self.convert(result, DYN))
        elif bret.kind != "none":
            return None
        cname = self.cname("cb", str(cls.info.name if cls.info else ""), fdef.name)
        body: list[ir.Stmt] = pre + (
            [ir.ExprStmt(line, result)] if bret.kind == "none" else [ir.Return(line, result)]
        )
        fparams = [("self", recv.ty)] + [(f"a{k}", b) for k, b in enumerate(bparams)]
        self.functions.append(
            ir.FuncIR(cname, fdef.name, fparams, bret, {}, body, line, self.path, frame=False)
        )
        return cname

    def context_factory(self, cls: _Class, stmt: n.AssignmentStmt) -> None:
        """``http_context = Gate`` in a root class: ``create_http_context`` makes a ``Gate``."""
        target = stmt.lvalues[0]
        assert isinstance(target, n.NameExpr)
        attr = target.name
        kind, sdk = ("http", SDK_HTTP) if attr == "http_context" else ("tcp", SDK_TCP)
        rv = stmt.rvalue
        if isinstance(rv, n.NameExpr) and rv.fullname == "builtins.None":
            return
        made = (
            self.classes.get(rv.node.fullname)
            if isinstance(rv, n.RefExpr) and isinstance(rv.node, n.TypeInfo)
            else None
        )
        if made is None or made.kind != kind or made.fullname == sdk:
            raise self.error(
                stmt,
                f"{attr} set to anything but a {sdk.rsplit('.', 1)[1]} subclass of this module",
            )
        slot_name = f"create_{'http' if kind == 'http' else 'stream'}_context"
        i = cls.slot(slot_name)
        assert i is not None
        if cls.slots[i][1] not in (f"pw_default_{slot_name}", *self.factory_thunks):
            return  # the class overrides create_*_context itself: that wins, as natively
        line = stmt.line
        recv = ir.Local(Ty("inst", cls=cls.fullname), line, "self")
        ctx_id = ir.Local(INT, line, "context_id")
        if made.init is not None:
            ptypes, _ = self.signature(made.init[1])
            if len(ptypes) != 2:
                raise self.error(
                    stmt,
                    f"{attr} = {made.fullname.rsplit('.', 1)[1]} whose __init__ does not take (context_id, root)",
                )
            args = [self.convert(ctx_id, ptypes[0]), self.convert(recv, ptypes[1])]
        else:
            args = [ctx_id, recv]
        call = ir.Call(Ty("inst", cls=made.fullname), line, f"new_{made.cname}", args)
        cname = self.cname("factory", str(cls.info.name if cls.info else ""), attr)
        ret = Ty("inst", cls=sdk)
        self.functions.append(
            ir.FuncIR(
                cname,
                slot_name,
                [("self", recv.ty), ("context_id", INT)],
                ret,
                {},
                [ir.Return(line, call)],
                line,
                self.path,
                frame=False,
            )
        )
        self.factory_thunks.add(cname)
        cls.slots[i] = (slot_name, cname, [INT], ret)

    def exception_class(self, cdef: n.ClassDef) -> None:
        info = cdef.info
        if len(info.bases) != 1:
            raise self.error(cdef, f"exception class {cdef.name} with more than one base")
        base = self.exc_type_c(info.bases[0].type, cdef)
        for stmt in cdef.defs.body:
            if not (
                isinstance(stmt, n.PassStmt)
                or (isinstance(stmt, n.ExpressionStmt) and isinstance(stmt.expr, n.StrExpr))
            ):
                raise self.error(stmt, f"a body in exception class {cdef.name} (only a docstring)")
        cname = self.cname("exc", info.name)
        self.exc_classes[info.fullname] = cname
        self.exc_types.append((cname, info.name, base))

    def exc_type_c(self, info: n.TypeInfo, node: n.Context) -> str:
        """The C descriptor of an exception class."""
        name = info.fullname
        if name in self.exc_classes:
            return self.exc_classes[name]
        if name.startswith("builtins.") and info.name in BUILTIN_EXCEPTIONS:
            return f"pw_{info.name}"
        if name in SDK_EXCEPTIONS:
            return SDK_EXCEPTIONS[name]
        raise self.error(node, f"the exception class {name}")

    def sdk_defines(self, info: n.TypeInfo, name: str) -> bool:
        return any(b.fullname.startswith("proxywasm.") and name in b.names for b in info.mro[1:])

    def signature(self, fdef: n.FuncDef, method: bool = True) -> tuple[list[Ty], Ty]:
        t = fdef.type
        skip = 1 if method else 0
        if not isinstance(t, mt.CallableType):
            return [DYN for _ in fdef.arguments[skip:]], DYN
        for a in fdef.arguments:
            if a.kind not in (n.ARG_POS, n.ARG_OPT, n.ARG_NAMED, n.ARG_NAMED_OPT):
                raise self.error(fdef, "*args or **kwargs parameters")
        return [to_ty(a) for a in t.arg_types[skip:]], to_ty(t.ret_type)

    def methods(self, cdef: n.ClassDef) -> None:
        if cdef.info.fullname in self.exc_classes:
            return
        cls = self.classes[cdef.info.fullname]
        for stmt in cdef.defs.body:
            if isinstance(stmt, n.FuncDef):
                if stmt.name == "__init__":
                    assert cls.init is not None
                    self.functions.append(self.function(stmt, cls.init[0], cls))
                else:
                    i = cls.slot(stmt.name)
                    assert i is not None
                    cname = self.method_cname.get(id(stmt), cls.slots[i][1])
                    self.functions.append(self.function(stmt, cname, cls))

    def header_arg(self, v: ir.Expr, e: n.CallExpr, none_ok: bool = False) -> ir.Expr:
        """A header name or value (``str | bytes``; ``None`` removes in set_*)."""
        if v.ty.kind in ("str", "bytes") or (none_ok and v.ty.kind == "none"):
            return v
        return ir.Call(
            DYN,
            e.line,
            "pw_check_header_value" if none_ok else "pw_check_header_name",
            [self.convert(v, DYN)],
        )

    def class_ir(self, cls: _Class) -> ir.ClassIR:
        base = self.base_of[cls.fullname]
        assert cls.info is not None
        return ir.ClassIR(
            fullname=cls.fullname,
            name=cls.info.name,
            cname=cls.cname,
            base=base.cname,
            sdk_kind=cls.kind,
            fields=cls.fields,
            slots=[(impl, fn_type(p, r)) for _, impl, p, r in cls.slots],
            methods={s[0]: i for i, s in enumerate(cls.slots)},
            defaults=self.defaults[cls.fullname],
            fail_open=self.fail_open[cls.fullname],
            init=cls.init[0] if cls.init else None,
        )

    # -- functions --

    def function(self, fdef: n.FuncDef, cname: str, cls: _Class | None) -> ir.FuncIR:
        params_t, ret = self.signature(fdef, method=cls is not None)
        args = fdef.arguments[1:] if cls is not None else fdef.arguments
        if fdef.name == "__init__":
            ret = NONE
        co = self.coroutines.get(id(fdef))
        if co is not None:
            ret = DYN  # the coroutine's result, checked by the driver (None continues)
        self.await_here = None if co is not None else "a function that is not async"
        self.locals = {}
        self.ret = ret
        self.cur_class = cls
        self.cur_func = fdef
        self.alias_sites = _view_aliases(self.tree.path, fdef)
        self.aliases = {}
        params: list[tuple[str, Ty]] = []
        if cls is not None:
            self_name = fdef.arguments[0].variable.name
            params.append((self_name, Ty("inst", cls=cls.fullname)))
        for a, t in zip(args, params_t):
            params.append((a.variable.name, t))
        for name, t in params:
            self.locals[name] = t
        body = self.block(fdef.body)
        self.await_here = "a function that is not async"
        out = ir.FuncIR(
            cname,
            fdef.name,
            params,
            ret,
            {k: v for k, v in self.locals.items() if k not in dict(params)},
            body,
            fdef.line,
            self.path,
            coroutine=co,
        )
        if co is not None and len(params) + len(out.locals) > 61:
            raise self.error(fdef, "an async callback with more than 61 local variables")
        return out

    def block(self, block: n.Block | None) -> list[ir.Stmt]:
        out: list[ir.Stmt] = []
        if block is None:
            return out
        for stmt in block.body:
            out.extend(self.stmt(stmt))
        return out

    def await_(self, e: n.AwaitExpr, s: n.Context) -> tuple[list[ir.Stmt], ir.Expr]:
        """``await e`` as a statement of its own: the suspension, and the local with the answer."""
        if self.await_here is not None:
            raise self.error(s, f"an await in {self.await_here}")
        value = self.expr(e.expr)
        if value.ty.kind != "inst" or value.ty.cls not in AWAITABLES:
            raise self.error(
                e, f"awaiting a {value.ty} (await self.http_call(...) or proxywasm.gather(...))"
            )
        tmp = self.tmp_local(DYN)
        return [ir.Await(s.line, value, tmp)], ir.Local(DYN, s.line, tmp)

    def stmt(self, s: n.Statement) -> list[ir.Stmt]:
        if isinstance(s, n.ExpressionStmt):
            if isinstance(s.expr, n.StrExpr):
                return []
            if isinstance(s.expr, n.AwaitExpr):
                return self.await_(s.expr, s)[0]
            return [ir.ExprStmt(s.line, self.expr(s.expr))]
        if isinstance(s, n.AssignmentStmt):
            if len(s.lvalues) != 1:
                raise self.error(s, "chained assignment (a = b = c)")
            if isinstance(s.rvalue, n.TempNode):
                return []  # `x: int` with no value
            if isinstance(s.rvalue, n.AwaitExpr):
                pre, answer = self.await_(s.rvalue, s)
                return pre + self.assign_to(s.lvalues[0], self.convert_to(answer, s.rvalue), s)
            value = self.expr(s.rvalue)
            target = s.lvalues[0]
            if (
                (s.line, s.column) in self.alias_sites
                and isinstance(target, n.NameExpr)
                and isinstance(target.node, n.Var)
                and to_ty(target.node.type) == value.ty  # not `h: Any = ...`
                and isinstance(value, ir.Call)
                and value.func in _CTX_MAPS
                and isinstance(value.args[0], ir.Call)
                and value.args[0].func == "pw_http_view"
                and isinstance(value.args[0].args[0], ir.Local)
            ):  # h = self.request.headers: each use of h is that expression (see _view_aliases)
                self.aliases[id(target.node)] = s.rvalue
                return []
            return self.assign_to(target, value, s)
        if isinstance(s, n.OperatorAssignmentStmt):
            if (
                isinstance(s.lvalue, n.IndexExpr)
                and not self.pure(s.lvalue.base)
                or (isinstance(s.lvalue, n.IndexExpr) and not self.pure(s.lvalue.index))
            ):
                raise self.error(s, "an augmented assignment to a computed subscript")
            value = self.binop(s.op, s.lvalue, s.rvalue, s, self.ty(s.lvalue))
            return self.assign_to(s.lvalue, value, s)
        if isinstance(s, n.ForStmt):
            return self.for_stmt(s)
        if isinstance(s, n.TryStmt):
            return self.try_stmt(s)
        if isinstance(s, n.RaiseStmt):
            if s.from_expr is not None:
                raise self.error(s, "raise ... from")
            if s.expr is None:
                return [ir.Raise(s.line, None)]
            return [ir.Raise(s.line, self.exc_value(s.expr))]
        if isinstance(s, n.GlobalDecl):
            return []
        if isinstance(s, n.DelStmt) and isinstance(s.expr, n.IndexExpr):
            mapping = self.expr(s.expr.base)
            base = self.convert(mapping, DYN)
            key = self.convert(self.expr(s.expr.index), DYN)
            if mapping.ty.kind == "inst" and mapping.ty.cls == HEADER_MAP:
                call = self.header_map_call(mapping, "__delitem__", [key], s.line)
                return [ir.ExprStmt(s.line, call)]
            fn = "@view.__delitem__" if mapping.ty.cls in VIEW_CLASSES else "@dyn.pop"
            return [ir.ExprStmt(s.line, ir.Call(DYN, s.line, fn, [base, key]))]
        if isinstance(s, n.ReturnStmt) and isinstance(s.expr, n.AwaitExpr):
            pre, answer = self.await_(s.expr, s)
            return pre + [ir.Return(s.line, self.convert(answer, self.ret))]
        if isinstance(s, n.ReturnStmt):
            if s.expr is None:
                return [ir.Return(s.line, None)]
            return [ir.Return(s.line, self.convert(self.expr(s.expr), self.ret))]
        if isinstance(s, n.IfStmt):
            orelse = self.block(s.else_body)
            for test, body in reversed(list(zip(s.expr, s.body))):
                orelse = [ir.If(test.line, self.truth(self.expr(test)), self.block(body), orelse)]
            return orelse
        if isinstance(s, n.WhileStmt):
            if s.else_body is not None:
                raise self.error(s, "while ... else")
            wtest = self.truth(self.expr(s.expr))
            return [ir.While(s.line, wtest, self.loop_body(s.body))]
        if isinstance(s, n.PassStmt):
            return []
        if isinstance(s, (n.BreakStmt, n.ContinueStmt)):
            if self.finally_depth > self.loop_finally[-1] if self.loop_finally else False:
                raise self.error(s, "break or continue through a finally block")
            return [ir.Jump(s.line, "break" if isinstance(s, n.BreakStmt) else "continue")]
        names = {
            n.ForStmt: "a for loop",
            n.TryStmt: "try/except",
            n.RaiseStmt: "raise",
            n.WithStmt: "with",
            n.DelStmt: "del",
            n.AssertStmt: "assert",
            n.MatchStmt: "match",
        }
        raise self.error(s, names.get(type(s), f"the statement {type(s).__name__}"))

    def loop_body(self, body: n.Block, no_await: str | None = None) -> list[ir.Stmt]:
        self.loop_finally.append(self.finally_depth)
        saved = self.await_here
        if no_await is not None and saved is None:
            self.await_here = no_await
        try:
            return self.block(body)
        finally:
            self.loop_finally.pop()
            self.await_here = saved

    def block_no_await(self, block: n.Block | None, where: str) -> list[ir.Stmt]:
        """A block where an await cannot stand (its C temporaries do not outlive a suspension)."""
        saved = self.await_here
        if saved is None:
            self.await_here = where
        try:
            return self.block(block)
        finally:
            self.await_here = saved

    def convert_to(self, v: ir.Expr, e: n.Expression) -> ir.Expr:
        """``v`` as the type mypy gives ``e``."""
        return self.convert(v, self.ty(e))

    def lname(self, e: n.NameExpr) -> str:
        """The C-level local of a name (comprehension variables get their own: their scope is the comprehension)."""
        return self.renames.get(id(e.node), e.name)

    def tmp_local(self, ty: Ty) -> str:
        self._uid += 1
        name = f"_k{self._uid}"
        self.locals[name] = ty
        return name

    def assign_to(self, target: n.Expression, value: ir.Expr, s: n.Context) -> list[ir.Stmt]:
        """``target = value`` for any target (names, attributes, subscripts, tuples)."""
        if isinstance(target, (n.TupleExpr, n.ListExpr)):
            if any(isinstance(x, n.StarExpr) for x in target.items):
                raise self.error(s, "starred unpacking")
            names = [self.tmp_local(DYN) for _ in target.items]
            out: list[ir.Stmt] = [ir.Unpack(s.line, self.convert(value, DYN), names)]
            for item, name in zip(target.items, names):
                out += self.assign_to(item, ir.Local(DYN, s.line, name), s)
            return out
        if isinstance(target, n.IndexExpr):
            if isinstance(target.index, n.SliceExpr):
                raise self.error(s, "assigning to a slice")
            recv = self.expr(target.base)
            base = self.convert(recv, DYN)
            key = self.convert(self.expr(target.index), DYN)
            if recv.ty.kind == "inst" and recv.ty.cls == HEADER_MAP:
                call = self.header_map_call(
                    recv, "__setitem__", [key, self.convert(value, DYN)], s.line
                )
                return [ir.ExprStmt(s.line, call)]
            return [
                ir.ExprStmt(
                    s.line,
                    ir.Call(NONE, s.line, "pw_dyn_setitem", [base, key, self.convert(value, DYN)]),
                )
            ]
        gname = self.global_of(target) if isinstance(target, n.NameExpr) else None
        if gname is not None:
            return [ir.GlobalSet(s.line, gname, self.convert(value, self.globals[gname]))]
        return [self.assign(target, None, s, value)]

    def assign(
        self,
        target: n.Expression,
        rvalue: n.Expression | None,
        s: n.Context,
        value: ir.Expr | None = None,
    ) -> ir.Stmt:
        if (
            isinstance(target, n.NameExpr)
            and target.kind == n.LDEF
            and isinstance(target.node, n.Var)
        ):
            t = to_ty(target.node.type)
            name = self.lname(target)
            prev = self.locals.setdefault(name, t)
            if prev != t:
                raise self.error(s, f"variable {target.name} with two types ({prev}, {t})")
            v = value if value is not None else self.expr(rvalue) if rvalue is not None else None
            assert v is not None
            return ir.Assign(s.line, name, self.convert(v, t))
        if isinstance(target, n.MemberExpr):
            obj = self.expr(target.expr)
            cls = self.class_of(obj.ty)
            slot = cls.field(target.name) if cls else None
            if cls is None or slot is None:
                raise self.error(s, f"assigning attribute {target.name} of a {obj.ty}")
            v = value if value is not None else self.expr(rvalue) if rvalue is not None else None
            assert v is not None
            return ir.FieldSet(s.line, obj, slot[0], self.convert(v, slot[1]))
        if isinstance(target, (n.TupleExpr, n.ListExpr)):
            raise self.error(s, "tuple unpacking")
        raise self.error(s, f"assigning to {type(target).__name__}")

    def for_stmt(self, s: n.ForStmt) -> list[ir.Stmt]:
        if s.else_body is not None:
            raise self.error(s, "for ... else")
        if s.is_async:
            raise self.error(s, "async for")
        it = s.expr
        if (
            isinstance(it, n.CallExpr)
            and isinstance(it.callee, n.NameExpr)
            and it.callee.fullname == "builtins.range"
            and isinstance(s.index, n.NameExpr)
            and all(k == n.ARG_POS for k in it.arg_kinds)
            and 1 <= len(it.args) <= 3
        ):
            args = [self.convert(self.expr(a), INT) for a in it.args]
            if len(args) == 1:
                args = [ir.Const(INT, s.line, 0), args[0]]
            if len(args) == 2:
                args.append(ir.Const(INT, s.line, 1))
            var = self.tmp_local(INT)
            body = self.assign_to(s.index, ir.Local(INT, s.line, var), s) + self.loop_body(
                s.body, "a for loop (use while)"
            )
            return [ir.ForRange(s.line, var, args[0], args[1], args[2], body)]
        iterable = self.convert(self.expr(it), DYN)
        var = self.tmp_local(DYN)
        body = self.assign_to(s.index, ir.Local(DYN, s.line, var), s) + self.loop_body(
            s.body, "a for loop (use while)"
        )
        return [ir.ForIter(s.line, var, iterable, body)]

    def try_stmt(self, s: n.TryStmt) -> list[ir.Stmt]:
        if s.is_star:
            raise self.error(s, "except*")
        if s.finally_body is not None:
            self.finally_depth += 1
        body = self.block(s.body)
        handlers: list[ir.Handler] = []
        for types_e, var, hbody in zip(s.types, s.vars, s.handlers):
            types: list[str] | None = None
            if types_e is not None:
                items = types_e.items if isinstance(types_e, n.TupleExpr) else [types_e]
                types = []
                for t in items:
                    if not (isinstance(t, n.RefExpr) and isinstance(t.node, n.TypeInfo)):
                        raise self.error(
                            t, "an except clause naming anything but exception classes"
                        )
                    types.append(self.exc_type_c(t.node, t))
            name = None
            if var is not None:
                name = var.name
                vt = to_ty(var.node.type) if isinstance(var.node, n.Var) else DYN
                prev = self.locals.setdefault(name, vt)
                if prev.c != vt.c:
                    raise self.error(var, f"variable {name} with two types ({prev}, {vt})")
            handlers.append(ir.Handler(types, name, self.block_no_await(hbody, "an except clause")))
        orelse = self.block(s.else_body)
        if s.finally_body is not None:
            self.finally_depth -= 1
        final = self.block_no_await(s.finally_body, "a finally block")
        if handlers and final:
            inner = ir.Try(s.line, body, handlers, orelse, [])
            return [ir.Try(s.line, [inner], [], [], final)]
        return [ir.Try(s.line, body, handlers, orelse, final)]

    def exc_value(self, e: n.Expression) -> ir.Expr:
        """The exception object ``raise e`` raises (a class is called with no arguments)."""
        if isinstance(e, n.RefExpr) and isinstance(e.node, n.TypeInfo):
            return ir.Call(
                Ty("exc", cls=e.node.fullname),
                e.line,
                "pw_exc_new",
                [
                    ir.Raw(DYN, e.line, f"&{self.exc_type_c(e.node, e)}"),
                    ir.Raw(DYN, e.line, "NULL"),
                ],
                raises=False,
            )
        v = self.expr(e)
        if v.ty.kind not in ("exc", "dyn"):
            raise self.error(e, f"raising a {v.ty}")
        return v

    def pure(self, e: n.Expression) -> bool:
        """True when evaluating ``e`` twice is the same as once (names, attributes, literals, subscripts)."""
        if isinstance(e, (n.NameExpr, n.IntExpr, n.StrExpr, n.BytesExpr, n.FloatExpr)):
            return True
        if isinstance(e, n.MemberExpr):
            return self.pure(e.expr)
        if isinstance(e, n.IndexExpr):
            return self.pure(e.base) and (
                self.pure(e.index) if not isinstance(e.index, n.SliceExpr) else False
            )
        if isinstance(e, n.UnaryExpr):
            return self.pure(e.expr)
        return False

    def class_of(self, t: Ty) -> _Class | None:
        return self.classes.get(t.cls or "") if t.kind == "inst" else None

    # -- expressions --

    def const(self, e: n.Expression) -> ir.Const | None:
        line = e.line
        if isinstance(e, n.IntExpr):
            if not -(2**63) <= e.value < 2**63:
                raise self.error(e, f"the int literal {e.value} (ints are 64-bit)")
            return ir.Const(INT, line, e.value)
        if isinstance(e, n.StrExpr):
            return ir.Const(STR, line, e.value)
        if isinstance(e, n.BytesExpr):
            raw = e.value.encode("utf-8").decode("unicode_escape").encode("latin-1")
            return ir.Const(BYTES, line, raw)
        if isinstance(e, n.FloatExpr):
            return ir.Const(FLOAT, line, e.value)
        if isinstance(e, n.NameExpr) and e.fullname in ("builtins.True", "builtins.False"):
            return ir.Const(BOOL, line, e.fullname == "builtins.True")
        if isinstance(e, n.NameExpr) and e.fullname == "builtins.None":
            return ir.Const(NONE, line, None)
        if (
            isinstance(e, n.UnaryExpr)
            and e.op == "-"
            and isinstance(e.expr, (n.IntExpr, n.FloatExpr))
        ):
            inner = self.const(e.expr)
            assert inner is not None and isinstance(inner.value, (int, float))
            return ir.Const(inner.ty, line, -inner.value)
        if (
            isinstance(e, n.MemberExpr)
            and isinstance(e.expr, n.RefExpr)
            and isinstance(e.expr.node, n.TypeInfo)
            and e.expr.node.fullname.startswith("proxywasm.")
        ):
            mod, _, cls_name = e.expr.node.fullname.rpartition(".")
            owner = getattr(importlib.import_module(mod), cls_name, None)
            value = getattr(owner, e.name, None)
            if isinstance(value, enum.IntEnum):
                return ir.Const(INT, line, int(value))
        return None

    def expr(self, e: n.Expression) -> ir.Expr:
        c = self.const(e)
        if c is not None:
            return c
        line = e.line
        if isinstance(e, n.NameExpr):
            alias = self.aliases.get(id(e.node))
            if alias is not None:
                return self.expr(alias)
            name = self.lname(e)
            if e.kind == n.LDEF and name in self.locals:
                return self.narrow(ir.Local(self.locals[name], line, name), e)
            if e.kind == n.LDEF and isinstance(e.node, n.Var):
                t = to_ty(e.node.type)
                self.locals.setdefault(name, t)
                return self.narrow(ir.Local(t, line, name), e)
            gname = self.global_of(e)
            if gname is not None:
                return self.narrow(ir.Global(self.globals[gname], line, gname), e)
            if isinstance(e.node, n.FuncDef) and e.node.fullname in self.module_funcs:
                return self.function_value(e.node, e)
            raise self.error(e, f"the name {e.name} as a value here")
        if isinstance(e, n.MemberExpr):
            gname = self.global_of(e)
            if gname is not None:  # helper_module.NAME
                return self.narrow(ir.Global(self.globals[gname], line, gname), e)
            if isinstance(e.node, n.FuncDef) and e.node.fullname in self.module_funcs:
                return self.function_value(e.node, e)
            if (
                e.name == "__name__"
                and isinstance(e.expr, n.CallExpr)
                and isinstance(e.expr.callee, n.NameExpr)
                and e.expr.callee.fullname == "builtins.type"
                and len(e.expr.args) == 1
            ):
                return ir.Call(
                    STR,
                    line,
                    "pw_type_name_of",
                    [self.convert(self.expr(e.expr.args[0]), DYN)],
                    raises=False,
                )
            obj = self.expr(e.expr)
            cls = self.class_of(obj.ty)
            slot = cls.field(e.name) if cls else None
            if slot is None:
                view = self.view_attribute(obj, cls, e)
                if view is not None:
                    return view
            if slot is None and obj.ty.kind == "inst":
                info = _TYPEINFOS.get(str(obj.ty.cls))
                method = info.get_method(e.name) if info is not None else None
                if isinstance(method, n.FuncDef):
                    return self.bound_method(obj, e, method, cls)
            if (
                slot is None
                and obj.ty.kind == "exc"
                and e.name in ("function", "status")
                and _TYPEINFOS.get(str(obj.ty.cls)) is not None
                and _TYPEINFOS[str(obj.ty.cls)].has_base("proxywasm.types.HostCallError")
            ):  # HostCallError.function / .status, read back from its message
                which = ir.Const(INT, line, int(e.name == "status"))
                return self.convert(
                    ir.Call(DYN, line, "pw_host_error_attr", [obj, which]), self.ty(e)
                )
            if slot is None:
                raise self.error(e, f"reading attribute {e.name} of a {obj.ty}")
            t = slot[1]
            if (
                e.name == "root"
                and cls is not None
                and cls.kind == "http"
                and self.root is not None
            ):
                t = Ty("inst", cls=self.root)
            return self.narrow(ir.FieldGet(t, line, obj, slot[0], e.name), e)
        if isinstance(e, n.CallExpr):
            return self.call(e)
        if isinstance(e, n.OpExpr):
            if e.op in ("and", "or"):
                result = self.ty(e)
                left = self.expr(e.left)
                left_cls = self.class_of(left.ty)
                if left_cls is not None and left_cls.slot("__bool__") is not None:
                    raise self.error(
                        e, f"`{e.op}` on an object whose class defines __bool__ (use `if`)"
                    )
                right = self.convert(self.expr(e.right), result)
                return ir.Op(result, line, e.op, [left, right])
            return self.binop(e.op, e.left, e.right, e, self.ty(e))
        if isinstance(e, n.ComparisonExpr):
            if any(not self.pure(x) for x in e.operands[1:-1]):
                raise self.error(
                    e,
                    "a chained comparison whose middle operands are not plain names or subscripts",
                )
            chain: ir.Expr | None = None
            for i, op in enumerate(e.operators):
                one = self.compare(op, self.expr(e.operands[i]), self.expr(e.operands[i + 1]), e)
                chain = one if chain is None else ir.Op(BOOL, line, "and", [chain, one])
            assert chain is not None
            return chain
        if isinstance(e, (n.ListExpr, n.TupleExpr, n.SetExpr)):
            if any(isinstance(x, n.StarExpr) for x in e.items):
                raise self.error(e, "a starred item in a display")
            fn = {n.ListExpr: "@list", n.TupleExpr: "@tuple", n.SetExpr: "@set"}[type(e)]
            return ir.Call(
                DYN, line, fn, [self.convert(self.expr(x), DYN) for x in e.items], raises=False
            )
        if isinstance(e, n.DictExpr):
            kv: list[ir.Expr] = []
            for dk, dv in e.items:
                if dk is None:
                    raise self.error(e, "**unpacking in a dict display")
                kv += [self.convert(self.expr(dk), DYN), self.convert(self.expr(dv), DYN)]
            return ir.Call(DYN, line, "@dict", kv, raises=False)
        if isinstance(e, n.IndexExpr):
            return self.index(e)
        if isinstance(e, (n.ListComprehension, n.SetComprehension, n.GeneratorExpr)):
            gen = e if isinstance(e, n.GeneratorExpr) else e.generator
            kind = "@set" if isinstance(e, n.SetComprehension) else "@list"
            assert gen.left_expr is not None
            return self.comprehension(gen, kind, gen.left_expr, None, e)
        if isinstance(e, n.DictionaryComprehension):
            assert e.key is not None
            return self.comprehension(e, "@dict", e.key, e.value, e)
        if isinstance(e, n.UnaryExpr):
            v = self.expr(e.expr)
            if e.op == "not":
                return ir.Op(BOOL, line, "!", [self.truth(v)])
            if e.op == "-" and v.ty.kind in ("int", "bool"):
                return ir.Call(INT, line, "pw_int_neg", [self.convert(v, INT)])
            if e.op == "-" and v.ty.kind == "float":
                return ir.Op(FLOAT, line, "-", [v])
            if e.op == "+" and v.ty.kind in ("int", "float"):
                return v
            raise self.error(e, f"unary {e.op} on {v.ty}")
        if isinstance(e, n.ConditionalExpr):
            t = self.ty(e)
            return ir.Cond(
                t,
                line,
                self.truth(self.expr(e.cond)),
                self.convert(self.expr(e.if_expr), t),
                self.convert(self.expr(e.else_expr), t),
            )
        if isinstance(e, n.AwaitExpr):
            raise self.error(
                e, "an await inside an expression (give it a statement: `x = await ...`)"
            )
        names = {
            n.ListExpr: "a list display",
            n.DictExpr: "a dict display",
            n.TupleExpr: "a tuple",
            n.SetExpr: "a set display",
            n.LambdaExpr: "lambda",
            n.IndexExpr: "subscripting",
            n.ListComprehension: "a comprehension",
            n.SliceExpr: "slicing",
        }
        raise self.error(e, names.get(type(e), f"the expression {type(e).__name__}"))

    def view_attribute(self, obj: ir.Expr, cls: _Class | None, e: n.MemberExpr) -> ir.Expr | None:
        """``self.request`` / ``self.response`` of an HTTP context, and the attributes of those
        views (``.headers``, ``.body``, ``.path``, ``.status`` ...): see runtime/pw_views.c."""
        line = e.line
        if cls is not None and cls.kind == "http" and e.name in ("request", "response"):
            which = ir.Const(INT, line, int(e.name == "response"))
            return ir.Call(self.ty(e), line, "pw_http_view", [obj, which], raises=False)
        answer = obj.ty.cls == "proxywasm.calls.HttpResponse"
        if obj.ty.cls in ("proxywasm.views.Request", "proxywasm.views.Response") or answer:
            if e.name not in (RESPONSE_ATTRIBUTES if answer else VIEW_ATTRIBUTES):
                raise self.error(e, f"the attribute {e.name} of a {obj.ty}")
            if not answer and e.name in VIEW_DIRECT_ATTRIBUTES:
                direct = VIEW_DIRECT_ATTRIBUTES[e.name]
                return self.convert(ir.Call(self.ty(e), line, direct, [obj]), self.ty(e))
            get = ir.Call(DYN, line, "pw_view_getattr", [obj, ir.Raw(DYN, line, f'"{e.name}"')])
            return self.convert(get, self.ty(e))
        return None

    def header_map_call(
        self, recv: ir.Expr, method: str, args: list[ir.Expr], line: int
    ) -> ir.Expr:
        """``recv.method(*args)`` for a receiver mypy types a ``HeaderMap``: its C function
        (``HEADER_MAP_DIRECT``; arguments already ``dyn``), the optional one filled in. On
        ``ctx.request.headers`` (and the like) itself, the ``pw_ctx_hm_*`` twin, which makes
        no view objects (runtime/pw_views.c)."""
        func, _, hi, missing = HEADER_MAP_DIRECT[method]
        ty = BOOL if method == "__contains__" else DYN
        full = list(args)
        if len(full) < hi:
            full.append(
                ir.Const(NONE, line, None) if missing == "None" else ir.Raw(DYN, line, missing)
            )
        if (
            isinstance(recv, ir.Call)
            and recv.func in _CTX_MAPS
            and isinstance(recv.args[0], ir.Call)
            and recv.args[0].func == "pw_http_view"
            and isinstance(recv.args[0].args[1], ir.Const)
        ):
            ctx, which = recv.args[0].args
            assert isinstance(which, ir.Const) and isinstance(which.value, int)
            map_num = which.value * 2 + _CTX_MAPS[recv.func]
            if method in ("add", "__setitem__") and all(_is_text(a) for a in full):
                map_num |= 4  # PW_MAP_TEXT: no type test left for the runtime
            map_id = ir.Const(INT, line, map_num)
            return ir.Call(ty, line, func.replace("pw_hm_", "pw_ctx_hm_"), [ctx, map_id, *full])
        return ir.Call(ty, line, func, [recv, *full])

    def index(self, e: n.IndexExpr) -> ir.Expr:
        line = e.line
        recv = self.expr(e.base)
        base = self.convert(recv, DYN)
        if isinstance(e.index, n.SliceExpr):
            sl = e.index
            parts = [
                self.convert(self.expr(x), DYN) if x is not None else ir.Const(NONE, line, None)
                for x in (sl.begin_index, sl.end_index, sl.stride)
            ]
            return self.convert(ir.Call(DYN, line, "pw_dyn_slice", [base, *parts]), self.ty(e))
        key = self.convert(self.expr(e.index), DYN)
        if recv.ty.kind == "inst" and recv.ty.cls == HEADER_MAP:
            return self.convert(self.header_map_call(recv, "__getitem__", [key], line), self.ty(e))
        return self.convert(ir.Call(DYN, line, "pw_dyn_getitem", [base, key]), self.ty(e))

    def comprehension(
        self,
        gen: n.GeneratorExpr | n.DictionaryComprehension,
        kind: str,
        left: n.Expression,
        value: n.Expression | None,
        e: n.Expression,
    ) -> ir.Expr:
        """A comprehension as statements in an expression: loops appending to a new container."""
        line = e.line
        if any(gen.is_async):
            raise self.error(e, "an async comprehension")
        acc = self.tmp_local(DYN)
        for index in gen.indices:
            for name_e in self.target_names(index):
                if isinstance(name_e.node, n.Var):
                    self._uid += 1
                    self.renames[id(name_e.node)] = f"_c{self._uid}_{name_e.name}"
        if value is None:
            item = self.convert(self.expr(left), DYN)
            fn = "@dyn.add" if kind == "@set" else "@dyn.append"
            inner: list[ir.Stmt] = [
                ir.ExprStmt(line, ir.Call(DYN, line, fn, [ir.Local(DYN, line, acc), item]))
            ]
        else:
            k, v = self.convert(self.expr(left), DYN), self.convert(self.expr(value), DYN)
            inner = [
                ir.ExprStmt(
                    line, ir.Call(NONE, line, "pw_dyn_setitem", [ir.Local(DYN, line, acc), k, v])
                )
            ]
        # innermost first: wrap the body in each condition, then each loop, from the last sequence out
        body = inner
        levels = list(zip(gen.indices, gen.sequences, gen.condlists))
        loops: list[tuple[n.Expression, n.Expression, list[n.Expression]]] = levels
        built: list[ir.Stmt] = body
        for index, seq, conds in reversed(loops):
            for cond in reversed(conds):
                built = [ir.If(line, self.truth(self.expr(cond)), built, [])]
            var = self.tmp_local(DYN)
            built = [
                ir.ForIter(
                    line,
                    var,
                    self.convert(self.expr(seq), DYN),
                    self.assign_to(index, ir.Local(DYN, line, var), e) + built,
                )
            ]
        start = ir.Call(DYN, line, kind, [], raises=False)
        return ir.Block(DYN, line, [ir.Assign(line, acc, start), *built], ir.Local(DYN, line, acc))

    def bound_method(
        self, obj: ir.Expr, e: n.MemberExpr, fdef: n.FuncDef, cls: _Class | None
    ) -> ir.Expr:
        """``obj.method`` as a value: a bound-method object whose C thunk makes the call."""
        line = e.line
        params = fdef.arguments[1:]
        if any(p.kind not in (n.ARG_POS, n.ARG_OPT) for p in params) or len(params) > 4:
            raise self.error(
                e, f"the bound method {e.name} (more than 4 or keyword-only parameters)"
            )
        key = f"{obj.ty.cls}.{e.name}"
        nreq = sum(1 for p in params if p.initializer is None)
        if key not in self.thunks:
            cname = self.cname("thunk", *str(obj.ty.cls).split(".")[-1:], e.name)
            self.thunks[key] = cname
            args: list[ir.Expr] = []
            for i, p in enumerate(params):
                local: ir.Expr = ir.Local(DYN, line, f"a{i}")
                if p.initializer is not None:
                    d = self.default_of(fdef, i, p, line)
                    local = ir.Cond(
                        DYN,
                        line,
                        ir.Raw(BOOL, line, f"(l_a{i} == NULL)"),
                        self.convert(d, DYN),
                        local,
                    )
                args.append(local)
            recv = ir.Local(obj.ty, line, "self")
            fake = n.CallExpr(e, [], [], [])
            fake.line = line
            definer = next(b for b in _TYPEINFOS[str(obj.ty.cls)].mro if e.name in b.names)
            if definer.fullname.startswith("proxywasm."):
                lower = SDK_METHODS.get(f"{definer.fullname}.{e.name}")
                if lower is None:
                    raise self.error(e, f"the SDK method {e.name}")
                call = lower(self, recv, args, fake)
            else:
                slot = cls.slot(e.name) if cls is not None else None
                if slot is None or cls is None:
                    raise self.error(e, f"the bound method {e.name}")
                _, _, ptypes, ret = cls.slots[slot]
                call = ir.VCall(
                    ret, line, recv, slot, [self.convert(a, t) for a, t in zip(args, ptypes)]
                )
            body: list[ir.Stmt] = [ir.Return(line, self.convert(call, DYN))]
            fparams = [("self", obj.ty)] + [(f"a{i}", DYN) for i in range(len(params))]
            self.functions.append(
                ir.FuncIR(cname, e.name, fparams, DYN, {}, body, line, frame=False)
            )
        return ir.Call(
            DYN,
            line,
            "pw_bound_new",
            [
                ir.Raw(DYN, line, f"(void *){self.thunks[key]}"),
                obj,
                ir.Const(INT, line, nreq),
                ir.Const(INT, line, len(params)),
            ],
            raises=False,
        )

    def function_value(self, fdef: n.FuncDef, e: n.Expression) -> ir.Expr:
        """A module function as a value: a bound-method object (no receiver) calling it."""
        line = e.line
        params = fdef.arguments
        if any(p.kind not in (n.ARG_POS, n.ARG_OPT) for p in params) or len(params) > 4:
            raise self.error(
                e, f"the function {fdef.name} as a value (more than 4 or keyword-only parameters)"
            )
        key = fdef.fullname
        nreq = sum(1 for p in params if p.initializer is None)
        if key not in self.thunks:
            cname = self.cname("fthunk", fdef.fullname)
            self.thunks[key] = cname
            ptypes, ret = self.signature(fdef, method=False)
            args: list[ir.Expr] = []
            for i, (p, t) in enumerate(zip(params, ptypes)):
                local: ir.Expr = ir.Local(DYN, line, f"a{i}")
                if p.initializer is not None:
                    local = ir.Cond(
                        DYN,
                        line,
                        ir.Raw(BOOL, line, f"(l_a{i} == NULL)"),
                        self.convert(self.default_of(fdef, i, p, line), DYN),
                        local,
                    )
                args.append(self.convert(local, t))
            call = ir.Call(ret, line, self.module_funcs[key], args)
            body: list[ir.Stmt] = [ir.Return(line, self.convert(call, DYN))]
            fparams = [("self", DYN)] + [(f"a{i}", DYN) for i in range(len(params))]
            self.functions.append(
                ir.FuncIR(cname, fdef.name, fparams, DYN, {}, body, line, frame=False)
            )
        return ir.Call(
            DYN,
            line,
            "pw_bound_new",
            [
                ir.Raw(DYN, line, f"(void *){self.thunks[key]}"),
                ir.Raw(DYN, line, "PW_NONE_V"),
                ir.Const(INT, line, nreq),
                ir.Const(INT, line, len(params)),
            ],
            raises=False,
        )

    def narrow(self, v: ir.Expr, e: n.Expression) -> ir.Expr:
        """``v`` (of its declared type) at the type mypy narrowed ``e`` to here."""
        t = self.ty(e)
        if t == v.ty or t.kind == "dyn" or v.ty.scalar:
            return v
        if not t.scalar:
            return dataclasses.replace(v, ty=t)
        return ir.Convert(t, v.line, v)

    def binop(
        self, op: str, left_e: n.Expression, right_e: n.Expression, node: n.Context, result: Ty
    ) -> ir.Expr:
        left, right = self.expr(left_e), self.expr(right_e)
        kinds = {left.ty.kind, right.ty.kind}
        line = node.line
        if kinds <= {"int", "bool"} and result.kind == "int":
            fn = {
                "+": "pw_int_add",
                "-": "pw_int_sub",
                "*": "pw_int_mul",
                "//": "pw_int_floordiv",
                "%": "pw_int_mod",
            }.get(op)
            if fn is not None:
                return ir.Call(INT, line, fn, [self.convert(left, INT), self.convert(right, INT)])
            if op in ("&", "|", "^"):
                return ir.Op(INT, line, op, [self.convert(left, INT), self.convert(right, INT)])
        if kinds <= {"int", "bool", "float"} and result.kind == "float":
            lf, rf = self.convert(left, FLOAT), self.convert(right, FLOAT)
            if op in ("+", "-", "*"):
                return ir.Op(FLOAT, line, op, [lf, rf])
            if op == "/":
                return ir.Call(FLOAT, line, "pw_float_div", [lf, rf])
        if kinds <= {"int", "bool"} and op == "/":
            return ir.Call(
                FLOAT, line, "pw_float_div", [self.convert(left, FLOAT), self.convert(right, FLOAT)]
            )
        if op == "+" and left.ty == right.ty and left.ty.kind in ("str", "bytes"):
            return ir.Call(left.ty, line, "pw_str_concat", [left, right], raises=False)
        if op in ("+", "-", "*", "&", "|") and not (left.ty.scalar and right.ty.scalar):
            call = ir.Call(
                DYN,
                line,
                "pw_dyn_binop",
                [ir.Raw(INT, line, f"'{op}'"), self.convert(left, DYN), self.convert(right, DYN)],
            )
            return self.convert(call, result)
        raise self.error(node, f"the operator {op} on {left.ty} and {right.ty}")

    def compare(self, op: str, left: ir.Expr, right: ir.Expr, node: n.Context) -> ir.Expr:
        line = node.line
        if op in ("in", "not in"):
            test: ir.Expr = ir.Call(
                BOOL, line, "pw_contains", [self.convert(right, DYN), self.convert(left, DYN)]
            )
            if right.ty.kind == "inst" and right.ty.cls == HEADER_MAP:
                test = self.header_map_call(right, "__contains__", [self.convert(left, DYN)], line)
            return test if op == "in" else ir.Op(BOOL, line, "!", [test])
        if op in ("is", "is not"):
            if left.ty.scalar or right.ty.scalar:
                raise self.error(node, f"`{op}` with an int, float or bool operand")
            return ir.Op(BOOL, line, "==" if op == "is" else "!=", [left, right])
        kinds = {left.ty.kind, right.ty.kind}
        cop = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}.get(op)
        if cop is None:
            raise self.error(node, f"the comparison {op}")
        if kinds <= {"int", "bool"}:
            return ir.Op(BOOL, line, cop, [self.convert(left, INT), self.convert(right, INT)])
        if kinds <= {"int", "bool", "float"}:
            return ir.Op(BOOL, line, cop, [self.convert(left, FLOAT), self.convert(right, FLOAT)])
        if left.ty == right.ty and left.ty.kind in ("str", "bytes"):
            if op in ("==", "!="):
                eq = ir.Call(BOOL, line, "pw_str_eq", [left, right], raises=False)
                return eq if op == "==" else ir.Op(BOOL, line, "!", [eq])
            cmp = ir.Call(INT, line, "pw_str_cmp", [left, right], raises=False)
            return ir.Op(BOOL, line, cop, [cmp, ir.Const(INT, line, 0)])
        if (
            op in ("==", "!=")
            and not left.ty.scalar
            and not right.ty.scalar
            and ("dyn" in kinds or "opt" in kinds or "none" in kinds)
        ):
            eq = ir.Call(BOOL, line, "pw_dyn_eq", [left, right], raises=False)
            return eq if op == "==" else ir.Op(BOOL, line, "!", [eq])
        if "dyn" in kinds or "opt" in kinds:
            a, b = self.convert(left, DYN), self.convert(right, DYN)
            if op in ("==", "!="):
                eq = ir.Call(BOOL, line, "pw_dyn_eq", [a, b], raises=False)
                return eq if op == "==" else ir.Op(BOOL, line, "!", [eq])
            code = {"<": "'<'", "<=": "'l'", ">": "'>'", ">=": "'g'"}[op]
            return ir.Call(BOOL, line, "pw_dyn_compare", [ir.Raw(INT, line, code), a, b])
        raise self.error(node, f"comparing {left.ty} {op} {right.ty}")

    def truth(self, v: ir.Expr) -> ir.Expr:
        if v.ty.kind == "bool":
            return v
        if v.ty.kind == "inst" and v.ty.cls in VIEW_CLASSES:  # a mapping or a body: its len()
            return ir.Call(BOOL, v.line, "pw_truthy", [v])
        cls = self.class_of(v.ty)
        slot = cls.slot("__bool__") if cls is not None else None
        if slot is not None:
            return ir.VCall(BOOL, v.line, v, slot, [])
        return ir.Convert(BOOL, v.line, v, True)

    def convert(self, v: ir.Expr, to: Ty) -> ir.Expr:
        """``v`` in the representation of ``to`` (boxing, unboxing, checks for dynamic values)."""
        if v.ty == to:
            return v
        if to.kind in ("dyn", "opt") and not v.ty.scalar and to.kind == "dyn":
            return ir.Convert(to, v.line, v)
        if isinstance(v, ir.Const) and v.ty.kind == "int" and to.kind == "float":
            return ir.Const(FLOAT, v.line, float(v.value))  # type: ignore[arg-type]
        return ir.Convert(to, v.line, v)

    # -- calls --

    def bind(
        self, call: n.CallExpr, fdef: n.FuncDef, skip_self: bool, convert: bool = True
    ) -> list[ir.Expr]:
        """The arguments of ``call`` in ``fdef``'s parameter order, defaults filled in, converted."""
        params = fdef.arguments[1:] if skip_self else fdef.arguments
        t = fdef.type
        types = (
            [to_ty(a) for a in t.arg_types[1 if skip_self else 0 :]]
            if isinstance(t, mt.CallableType)
            else [DYN for _ in params]
        )
        slots: list[ir.Expr | None] = [None] * len(params)
        names = [p.variable.name for p in params]
        pos = 0
        npos = sum(1 for p in params if p.kind in (n.ARG_POS, n.ARG_OPT))
        for arg, kind, name in zip(call.args, call.arg_kinds, call.arg_names):
            if kind == n.ARG_POS:
                if pos >= npos:
                    raise self.error(call, "too many arguments")
                slots[pos] = self.expr(arg)
                pos += 1
            elif kind == n.ARG_NAMED and name in names:
                slots[names.index(name)] = self.expr(arg)
            else:
                raise self.error(call, "*args or **kwargs in a call")
        out: list[ir.Expr] = []
        for i, (p, v) in enumerate(zip(params, slots)):
            if v is None:
                if p.initializer is None:
                    raise self.error(call, f"a call missing the argument {p.variable.name}")
                v = self.default_of(fdef, i, p, call.line)
            out.append(self.convert(v, types[i]) if convert else v)
        return out

    def call(self, e: n.CallExpr) -> ir.Expr:
        callee = e.callee
        line = e.line
        result = self.ty(e)
        # "".join([...]) and "{:{}}".format(v, "") are what mypy makes of f-strings
        if isinstance(callee, n.MemberExpr) and isinstance(callee.expr, n.StrExpr):
            lit = self.str_method_on_literal(e, callee.expr.value, callee.name)
            if lit is not None:
                return lit
        if (
            isinstance(callee, n.NameExpr)
            and callee.fullname.startswith("builtins.")
            and not (
                isinstance(callee.node, n.TypeInfo)
                and callee.node.has_base("builtins.BaseException")
            )
        ):
            return self.builtin(e, callee.name)
        if isinstance(callee, n.RefExpr) and callee.fullname == "json.dumps":
            return self.json_dumps(e)
        if isinstance(callee, n.RefExpr) and callee.fullname in MODULE_INTRINSICS:
            args = [self.expr(a) for a in e.args]
            if any(k != n.ARG_POS for k in e.arg_kinds):
                raise self.error(e, f"keyword arguments to {callee.fullname}")
            return MODULE_INTRINSICS[callee.fullname](self, args, e)
        if isinstance(callee, n.RefExpr) and isinstance(callee.node, n.TypeInfo):
            return self.construct(e, callee.node)
        if (
            isinstance(callee, n.RefExpr)
            and isinstance(callee.node, n.FuncDef)
            and callee.fullname in HOSTCALLS
        ):
            args = self.bind(e, callee.node, skip_self=False, convert=False)
            return HOSTCALLS[callee.fullname](self, ir.Raw(DYN, line, "NULL"), args, e)
        if (
            isinstance(callee, n.RefExpr)
            and isinstance(callee.node, n.FuncDef)
            and (callee.node.fullname in self.module_funcs)
        ):
            args = self.bind(e, callee.node, skip_self=False)
            _, ret = self.signature(callee.node, method=False)
            return ir.Call(ret, line, self.module_funcs[callee.node.fullname], args)
        if isinstance(callee, n.SuperExpr):
            return self.super_call(e, callee)
        if (
            isinstance(callee, n.RefExpr)
            and isinstance(callee.node, n.FuncDef)
            and callee.node.fullname.startswith("proxywasm.")
            and callee.node.fullname not in self.module_funcs
        ):
            raise self.error(e, f"the SDK function {callee.node.fullname}")
        callee_t = mt.get_proper_type(self.types.get(callee))
        if (
            isinstance(callee_t, (mt.CallableType, mt.AnyType))
            and not (
                isinstance(callee, n.RefExpr) and isinstance(callee.node, (n.FuncDef, n.TypeInfo))
            )
            and not (isinstance(callee, n.MemberExpr) and self.is_method(callee))
        ):
            if any(k != n.ARG_POS for k in e.arg_kinds):
                raise self.error(e, "keyword arguments in a call of a function value")
            f = self.convert(self.expr(callee), DYN)
            args = [self.convert(self.expr(a), DYN) for a in e.args]
            return self.convert(ir.Call(DYN, line, "@call", [f, *args]), result)
        if isinstance(callee, n.MemberExpr):
            recv = self.expr(callee.expr)
            if recv.ty.kind == "bytes" and callee.name == "decode" and not e.args:
                return ir.Call(STR, line, "pw_bytes_decode", [recv])
            if (
                recv.ty.kind == "bytes"
                and callee.name == "decode"
                and len(e.args) == 2
                and all(k == n.ARG_POS for k in e.arg_kinds)
                and isinstance(e.args[1], n.StrExpr)
                and e.args[1].value == "replace"
            ):  # errors="replace": only this call links the replacing decoder
                return ir.Call(STR, line, "pw_bytes_decode_replace", [recv], raises=False)
            cls = self.class_of(recv.ty)
            if recv.ty.kind == "inst" and recv.ty.cls in VIEW_CLASSES:
                if any(k != n.ARG_POS for k in e.arg_kinds):
                    raise self.error(
                        e, f"keyword arguments to the method {callee.name} of a {recv.ty}"
                    )
                args = [self.convert(self.expr(a), DYN) for a in e.args]
                if recv.ty.cls == HEADER_MAP and callee.name in HEADER_MAP_DIRECT:
                    _, lo, hi, _ = HEADER_MAP_DIRECT[callee.name]
                    if lo <= len(args) <= hi:
                        return self.convert(
                            self.header_map_call(recv, callee.name, args, line), result
                        )
                call = ir.Call(DYN, line, f"@view.{callee.name}", [recv, *args])
                return self.convert(call, result)
            if cls is not None or (
                recv.ty.kind == "inst" and str(recv.ty.cls).startswith("proxywasm.")
            ):
                return self.method_call(e, recv, callee.name, cls, result)
            if recv.ty.kind in ("dyn", "str", "bytes", "opt"):
                args = [self.convert(self.expr(a), DYN) for a in e.args]
                if any(k != n.ARG_POS for k in e.arg_kinds):
                    raise self.error(
                        e, f"keyword arguments to the method {callee.name} of a {recv.ty}"
                    )
                call = ir.Call(DYN, line, f"@dyn.{callee.name}", [self.convert(recv, DYN), *args])
                return self.convert(call, result)
            raise self.error(e, f"the method {callee.name} of {recv.ty}")
        raise self.error(e, "this call")

    def json_dumps(self, e: n.CallExpr) -> ir.Expr:
        line = e.line
        opts: dict[str, ir.Expr] = {
            "ensure_ascii": ir.Const(BOOL, line, True),
            "separators": ir.Const(NONE, line, None),
            "sort_keys": ir.Const(BOOL, line, False),
        }
        value: ir.Expr | None = None
        for arg, kind, name in zip(e.args, e.arg_kinds, e.arg_names):
            if kind == n.ARG_POS and value is None:
                value = self.convert(self.expr(arg), DYN)
            elif kind == n.ARG_NAMED and name in opts:
                want = DYN if name == "separators" else BOOL
                v = self.expr(arg)
                opts[name] = self.truth(v) if want == BOOL else self.convert(v, DYN)
            else:
                raise self.error(e, f"json.dumps with the argument {name or 'beyond the first'}")
        if value is None:
            raise self.error(e, "json.dumps without a value")
        return ir.Call(
            STR,
            line,
            "pw_json_dumps",
            [value, opts["ensure_ascii"], opts["separators"], opts["sort_keys"]],
        )

    def is_method(self, callee: n.MemberExpr) -> bool:
        """True when ``callee`` (``x.name``) names a method, not an attribute holding a function."""
        t = mt.get_proper_type(self.types.get(callee.expr))
        if not isinstance(t, mt.Instance):
            return True  # str, dict, ... methods
        node = t.type.get(callee.name)
        return node is None or not isinstance(node.node, n.Var)

    def method_call(
        self, e: n.CallExpr, recv: ir.Expr, name: str, cls: _Class | None, result: Ty
    ) -> ir.Expr:
        assert recv.ty.cls is not None
        tinfo = _TYPEINFOS.get(recv.ty.cls)
        definer = next((b for b in tinfo.mro if name in b.names), None) if tinfo else None
        if definer is None:
            raise self.error(e, f"the method {name}")
        sym = definer.names[name].node
        if definer.fullname.startswith("proxywasm."):
            key = f"{definer.fullname}.{name}"
            if key not in SDK_METHODS:
                raise self.error(e, f"the SDK method {name}")
            assert isinstance(sym, n.FuncDef)
            return SDK_METHODS[key](self, recv, self.bind(e, sym, skip_self=True, convert=False), e)
        slot = cls.slot(name) if cls is not None else None
        if cls is None or slot is None or not isinstance(sym, n.FuncDef):
            raise self.error(e, f"calling {name}")
        _, _, _params, ret = cls.slots[slot]
        return ir.VCall(ret, e.line, recv, slot, self.bind(e, sym, skip_self=True))

    def construct(self, e: n.CallExpr, info: n.TypeInfo) -> ir.Expr:
        line = e.line
        if info.fullname in SDK_VALUE_CLASSES:
            if len(e.args) != 1 or e.arg_kinds[0] != n.ARG_POS:
                raise self.error(e, f"{info.name}() without exactly one positional name")
            return ir.Call(
                Ty("inst", cls=info.fullname),
                line,
                "pw_metric_new",
                [
                    ir.Raw(DYN, line, f"&{SDK_VALUE_CLASSES[info.fullname]}"),
                    self.convert(self.expr(e.args[0]), DYN),
                ],
            )
        if info.has_base("builtins.BaseException"):
            if len(e.args) > 1 or any(k != n.ARG_POS for k in e.arg_kinds):
                raise self.error(e, f"{info.name}() with more than one argument")
            msg: ir.Expr = (
                self.convert(self.expr(e.args[0]), DYN) if e.args else ir.Raw(DYN, line, "NULL")
            )
            return ir.Call(
                Ty("exc", cls=info.fullname),
                line,
                "pw_exc_new",
                [ir.Raw(DYN, line, f"&{self.exc_type_c(info, e)}"), msg],
                raises=False,
            )
        if info.fullname in _BUILTIN_CONVERSIONS:
            return self.builtin(e, info.name)
        cls = self.classes.get(info.fullname)
        if info.fullname in (SDK_HTTP, SDK_TCP) and cls is not None:
            args = self.bind(e, self.sdk_init(info), skip_self=True)
            return ir.Call(
                Ty("inst", cls=info.fullname),
                line,
                "pw_new_stream",
                [ir.Raw(DYN, line, f"&{cls.cname}"), *args],
            )
        if cls is None or cls.info is None:
            raise self.error(e, f"constructing {info.name} (only this module's classes)")
        if cls.init is None and cls.kind == "plain":
            if e.args:
                raise self.error(e, f"{info.name}() takes no arguments")
            return ir.Call(Ty("inst", cls=info.fullname), line, f"new_{cls.cname}", [])
        init = cls.init[1] if cls.init else self.sdk_init(info)
        args = self.bind(e, init, skip_self=True)
        return ir.Call(Ty("inst", cls=info.fullname), e.line, f"new_{cls.cname}", args)

    def sdk_init(self, info: n.TypeInfo) -> n.FuncDef:
        for b in info.mro:
            if b.fullname.startswith("proxywasm.") and "__init__" in b.names:
                node = b.names["__init__"].node
                assert isinstance(node, n.FuncDef)
                return node
        raise AssertionError(info.fullname)

    def super_call(self, e: n.CallExpr, sup: n.SuperExpr) -> ir.Expr:
        cls = self.cur_class
        if cls is None or self.cur_func is None or sup.call.args:
            raise self.error(e, "super() outside a method, or with arguments")
        self_local = ir.Local(
            Ty("inst", cls=cls.fullname), e.line, self.cur_func.arguments[0].variable.name
        )
        base = self.base_of[cls.fullname]
        if sup.name == "__init__":
            if base.init is None:  # the SDK's __init__
                assert cls.info is not None
                args = self.bind(e, self.sdk_init(cls.info), skip_self=True)
                return ir.Call(NONE, e.line, f"@init_{cls.kind}", [self_local, *args])
            return ir.Call(
                NONE,
                e.line,
                base.init[0],
                [self_local, *self.bind(e, base.init[1], skip_self=True)],
            )
        slot = base.slot(sup.name)
        if slot is None:
            raise self.error(e, f"super().{sup.name}")
        name, impl, params, ret = base.slots[slot]
        info = base.info
        fdef = info.names[name].node if info else None
        if not isinstance(fdef, n.FuncDef):
            # an SDK callback: its default takes no user arguments we need to bind by name
            args = [self.convert(self.expr(a), t) for a, t in zip(e.args, params)]
        else:
            args = self.bind(e, fdef, skip_self=True)
        return ir.Call(ret, e.line, impl, [self_local, *args])

    def str_method_on_literal(self, e: n.CallExpr, s: str, name: str) -> ir.Expr | None:
        line = e.line
        if name == "join" and s == "" and len(e.args) == 1 and isinstance(e.args[0], n.ListExpr):
            parts = [self.expr(x) for x in e.args[0].items]
            for p in parts:
                if p.ty.kind != "str":
                    raise self.error(e, f"joining a {p.ty}")
            return ir.Call(STR, line, "@join", parts, raises=False)
        if name == "format" and s in ("{:{}}", "{!s:{}}", "{!r:{}}") and len(e.args) == 2:
            spec = e.args[1]
            if not (isinstance(spec, n.StrExpr) and spec.value == ""):
                raise self.error(e, "a format spec in an f-string")
            v = self.expr(e.args[0])
            return self.to_str(v, repr_=s == "{!r:{}}")
        if name == "format":
            raise self.error(e, "str.format or an f-string with a format spec or conversion")
        return None

    def to_str(self, v: ir.Expr, repr_: bool = False) -> ir.Expr:
        line = v.line
        if repr_:
            return ir.Call(STR, line, "pw_repr_of", [self.convert(v, DYN)], raises=False)
        k = v.ty.kind
        if k == "str":
            return v
        fn = {"int": "pw_str_of_int", "bool": "pw_str_of_bool", "float": "pw_str_of_float"}.get(k)
        if fn:
            return ir.Call(STR, line, fn, [v], raises=False)
        return ir.Call(STR, line, "pw_str_of", [self.convert(v, DYN)], raises=False)

    def builtin(self, e: n.CallExpr, name: str) -> ir.Expr:
        line = e.line
        if any(k != n.ARG_POS for k in e.arg_kinds):
            raise self.error(e, f"keyword arguments to {name}()")
        if name == "getattr" and len(e.args) == 3 and isinstance(e.args[1], n.StrExpr):
            obj = self.expr(e.args[0])
            cls = self.class_of(obj.ty)
            slot = cls.field(e.args[1].value) if cls else None
            if slot is None:
                raise self.error(e, "getattr of an attribute the class does not declare")
            default = self.expr(e.args[2])
            t = slot[1]
            if default.ty != t and not (t.kind == "opt" and default.ty in (NONE, t.inner)):
                raise self.error(
                    e,
                    f"getattr with a default ({default.ty}) of another type than the attribute ({t})",
                )
            return ir.FieldGet(t, line, obj, slot[0], e.args[1].value, self.convert(default, t))
        if name == "isinstance" and len(e.args) == 2:
            return self.isinstance_(e)
        args = [self.expr(a) for a in e.args]
        result = self.ty(e)
        dyn_args = [self.convert(a, DYN) for a in args]
        if name in ("list", "set", "tuple", "dict") and len(args) <= 1:
            if not args:
                return ir.Call(DYN, line, "@" + name, [], raises=False)
            return ir.Call(DYN, line, f"pw_to_{name}", dyn_args)
        if name == "sorted" and len(args) == 1:
            return ir.Call(DYN, line, "pw_sorted", dyn_args)
        if name in ("min", "max") and len(args) == 1:
            return self.convert(
                ir.Call(
                    DYN,
                    line,
                    "pw_dyn_min_max",
                    [dyn_args[0], ir.Raw(INT, line, str(int(name == "max")))],
                ),
                result,
            )
        if name in ("any", "all", "sum", "enumerate", "zip", "range", "reversed") and args:
            return self.convert(
                ir.Call(
                    DYN,
                    line,
                    f"pw_builtin_{name}",
                    [ir.Call(DYN, line, "@tuple", dyn_args, raises=False)],
                ),
                result,
            )
        if name == "str" and len(args) == 1:
            return self.to_str(args[0])
        if name == "repr" and len(args) == 1:
            return self.to_str(args[0], repr_=True)
        if name == "len" and len(args) == 1:
            return ir.Call(INT, line, "pw_len", [self.convert(args[0], DYN)])
        if name == "int" and len(args) == 1:
            a = args[0]
            if a.ty.kind in ("int", "bool"):
                return self.convert(a, INT)
            if a.ty.kind in ("str", "bytes"):
                return ir.Call(INT, line, "pw_int_from_str", [a])
            if a.ty.kind == "float":
                return ir.Call(INT, line, "pw_int_from_float", [a])
            return ir.Call(INT, line, "pw_int_of", [self.convert(a, DYN)])
        if name == "float" and len(args) == 1 and args[0].ty.kind in ("int", "bool", "float"):
            return self.convert(args[0], FLOAT)
        if name == "float" and len(args) == 1 and args[0].ty.kind == "str":
            return ir.Call(FLOAT, line, "pw_float_from_str", args)
        if name == "float" and len(args) == 1:
            return ir.Call(FLOAT, line, "pw_float_of", dyn_args)
        if name == "bool" and len(args) == 1:
            return self.truth(args[0])
        if name == "abs" and len(args) == 1 and args[0].ty.kind == "int":
            return ir.Call(INT, line, "pw_int_abs", [args[0]])
        if (
            name in ("min", "max")
            and len(args) == 2
            and {a.ty.kind for a in args} <= {"int", "bool"}
        ):
            return ir.Call(
                INT, line, f"pw_int_{name}", [self.convert(a, INT) for a in args], raises=False
            )
        if name in ("min", "max") and len(args) >= 2:
            return self.convert(
                ir.Call(
                    DYN,
                    line,
                    "pw_dyn_min_max",
                    [
                        ir.Call(DYN, line, "@tuple", dyn_args, raises=False),
                        ir.Raw(INT, line, str(int(name == "max"))),
                    ],
                ),
                result,
            )
        raise self.error(e, f"the builtin {name}() with these arguments")

    def isinstance_(self, e: n.CallExpr) -> ir.Expr:
        v = self.convert(self.expr(e.args[0]), DYN)
        spec = e.args[1]
        items = spec.items if isinstance(spec, n.TupleExpr) else [spec]
        tests: list[ir.Expr] = []
        for t in items:
            if not (isinstance(t, n.RefExpr) and isinstance(t.node, n.TypeInfo)):
                raise self.error(e, "isinstance with anything but classes")
            info = t.node
            mask, cls, exc = 0, "NULL", "NULL"
            if info.fullname in ISINSTANCE_MASKS:
                mask = ISINSTANCE_MASKS[info.fullname]
            elif info.has_base("builtins.BaseException"):
                exc = "&" + self.exc_type_c(info, t)
            elif info.fullname in self.classes:
                cls = "&" + self.classes[info.fullname].cname
            elif info.fullname in SDK_VALUE_CLASSES:
                cls = "&" + SDK_VALUE_CLASSES[info.fullname]
            elif info.fullname in VIEW_CLASSES:
                cls = "&" + VIEW_CLASSES[info.fullname]
            else:
                raise self.error(e, f"isinstance with the class {info.fullname}")
            tests.append(
                ir.Call(
                    BOOL,
                    e.line,
                    "pw_isinstance",
                    [
                        v,
                        ir.Raw(INT, e.line, f"{mask}u"),
                        ir.Raw(DYN, e.line, cls),
                        ir.Raw(DYN, e.line, exc),
                    ],
                    raises=False,
                )
            )
        if len(tests) == 1:
            return tests[0]
        # several classes: test each (the value is evaluated once per test: it must be pure)
        if not self.pure(e.args[0]):
            raise self.error(e, "isinstance of a computed value against a tuple of classes")
        out = tests[0]
        for t2 in tests[1:]:
            out = ir.Op(BOOL, e.line, "or", [out, t2])
        return out


_BUILTIN_CONVERSIONS = frozenset(
    {
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.list",
        "builtins.dict",
        "builtins.set",
        "builtins.tuple",
        "builtins.bytes",
    }
)


def _sdk_header(
    method: str, map_id: int
) -> Callable[[Lowerer, ir.Expr, list[ir.Expr], n.CallExpr], ir.Expr]:
    def lower(lw: Lowerer, recv: ir.Expr, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
        m = ir.Const(INT, e.line, map_id)
        if method == "get":
            return ir.Call(
                ir.opt(STR), e.line, "pw_get_header", [recv, m, lw.header_arg(args[0], e)]
            )
        if method in ("set", "add"):
            return ir.Call(
                NONE,
                e.line,
                f"pw_{method}_header",
                [
                    recv,
                    m,
                    lw.header_arg(args[0], e),
                    lw.header_arg(args[1], e, none_ok=method == "set"),
                ],
            )
        return ir.Call(NONE, e.line, "pw_remove_header", [recv, m, lw.header_arg(args[0], e)])

    return lower


SDK_METHODS: dict[str, Callable[[Lowerer, ir.Expr, list[ir.Expr], n.CallExpr], ir.Expr]] = {}
for _direction, _map in (("request", _REQ), ("response", _RESP)):
    for _op in ("get", "set", "add", "remove"):
        SDK_METHODS[f"{SDK_HTTP}.{_op}_http_{_direction}_header"] = _sdk_header(_op, _map)
SDK_METHODS[f"{SDK_ROOT}.get_plugin_configuration"] = lambda lw, recv, args, e: ir.Call(
    ir.opt(BYTES),
    e.line,
    "pw_get_buffer",
    [ir.Const(INT, e.line, 7), ir.Const(INT, e.line, 0), ir.Const(INT, e.line, -1)],
)
SDK_METHODS[f"{SDK_ROOT}.get_vm_configuration"] = lambda lw, recv, args, e: ir.Call(
    ir.opt(BYTES),
    e.line,
    "pw_get_buffer",
    [ir.Const(INT, e.line, 6), ir.Const(INT, e.line, 0), ir.Const(INT, e.line, -1)],
)
SDK_METHODS[f"{SDK_ROOT}.get_plugin_configuration_json"] = lambda lw, recv, args, e: ir.Call(
    DYN, e.line, "pw_config_json", [ir.Const(INT, e.line, 7)]
)
SDK_METHODS[f"{SDK_ROOT}.get_vm_configuration_json"] = lambda lw, recv, args, e: ir.Call(
    DYN, e.line, "pw_config_json", [ir.Const(INT, e.line, 6)]
)
SDK_METHODS["proxywasm.contexts.BaseContext.http_call"] = lambda lw, recv, args, e: ir.Call(
    Ty("inst", cls="proxywasm.calls.HttpCall"),
    e.line,
    "pw_http_call",
    [
        recv,
        *(lw.convert(a, t) for a, t in zip(args, [STR, STR, STR, DYN, DYN, DYN, INT, DYN])),
    ],
)
SDK_METHODS["proxywasm.contexts.BaseContext.log"] = lambda lw, recv, args, e: ir.Call(
    NONE, e.line, "pw_log", [lw.convert(args[0], INT), lw.convert(args[1], STR)]
)

SDK_BASE = "proxywasm.contexts.BaseContext"
_M = "proxywasm.metrics"
_Lower = Callable[[Lowerer, ir.Expr, list[ir.Expr], n.CallExpr], ir.Expr]


def _host(func: str, ret: Ty, *params: Ty | int | None) -> _Lower:
    """A host call ``func(recv?, args...)``: each param is a type to convert an argument to,
    an int constant, or None for the receiver."""

    def lower(lw: Lowerer, recv: ir.Expr, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
        out: list[ir.Expr] = []
        it = iter(args)
        for p in params:
            if p is None:
                out.append(recv)
            elif isinstance(p, int):
                out.append(ir.Const(INT, e.line, p))
            else:
                out.append(lw.convert(next(it), p))
        return ir.Call(ret, e.line, func, out)

    return lower


def _property_str(lw: Lowerer, recv: ir.Expr, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
    raw = ir.Call(DYN, e.line, "pw_get_property", [recv, lw.convert(args[0], DYN)])
    return ir.Call(ir.opt(STR), e.line, "pw_bytes_as_str", [raw], raises=False)


_LIST = DYN
for _name, _lower in {
    f"{SDK_BASE}.get_current_time_nanoseconds": _host("pw_now_ns", INT),
    f"{SDK_BASE}.get_log_level": _host("pw_get_log_level", INT),
    f"{SDK_BASE}.get_property": _host("pw_get_property", ir.opt(BYTES), None, DYN),
    f"{SDK_BASE}.get_property_str": _property_str,
    f"{SDK_BASE}.dispatch_http_call": _host(
        "pw_dispatch_http_call", INT, None, DYN, DYN, DYN, DYN, INT
    ),
    f"{SDK_BASE}.get_http_call_response_headers": _host("pw_get_headers", _LIST, None, 6),
    f"{SDK_BASE}.get_http_call_response_trailers": _host("pw_get_headers", _LIST, None, 7),
    f"{SDK_BASE}.get_http_call_response_header": _host("pw_get_header", ir.opt(STR), None, 6, STR),
    f"{SDK_BASE}.get_http_call_response_body": _host(
        "pw_get_buffer_ctx", ir.opt(BYTES), None, 4, INT, DYN
    ),
    f"{SDK_ROOT}.set_tick_period_ms": _host("pw_set_tick_period", NONE, None, INT),
    f"{SDK_BASE}.get_shared_data": _host("pw_get_shared_data", DYN, DYN),
    f"{SDK_BASE}.set_shared_data": _host("pw_set_shared_data", NONE, DYN, DYN, DYN),
    f"{SDK_BASE}.register_shared_queue": _host("pw_register_shared_queue", INT, DYN),
    f"{SDK_BASE}.resolve_shared_queue": _host("pw_resolve_shared_queue", ir.opt(INT), DYN, DYN),
    f"{SDK_BASE}.enqueue_shared_queue": _host("pw_enqueue_shared_queue", NONE, INT, DYN),
    f"{SDK_BASE}.dequeue_shared_queue": _host("pw_dequeue_shared_queue", ir.opt(BYTES), INT),
    f"{SDK_HTTP}.send_http_response": _host(
        "pw_send_http_response", NONE, None, INT, DYN, DYN, DYN, INT
    ),
    f"{SDK_HTTP}.resume_http_request": _host("pw_stream_op", NONE, None, 0, 0),
    f"{SDK_HTTP}.resume_http_response": _host("pw_stream_op", NONE, None, 1, 0),
    f"{SDK_HTTP}.reset_http_request": _host("pw_stream_op", NONE, None, 0, 1),
    f"{SDK_HTTP}.reset_http_response": _host("pw_stream_op", NONE, None, 1, 1),
    f"{SDK_HTTP}.get_http_request_body": _host(
        "pw_get_buffer_ctx", ir.opt(BYTES), None, 0, INT, DYN
    ),
    f"{SDK_HTTP}.get_http_response_body": _host(
        "pw_get_buffer_ctx", ir.opt(BYTES), None, 1, INT, DYN
    ),
    f"{SDK_HTTP}.set_http_request_body": _host("pw_set_buffer", NONE, None, 0, DYN, INT, DYN),
    f"{SDK_HTTP}.set_http_response_body": _host("pw_set_buffer", NONE, None, 1, DYN, INT, DYN),
    f"{SDK_HTTP}.get_http_request_headers": _host("pw_get_headers", _LIST, None, 0),
    f"{SDK_HTTP}.get_http_request_trailers": _host("pw_get_headers", _LIST, None, 1),
    f"{SDK_HTTP}.get_http_response_headers": _host("pw_get_headers", _LIST, None, 2),
    f"{SDK_HTTP}.get_http_response_trailers": _host("pw_get_headers", _LIST, None, 3),
    f"{SDK_HTTP}.set_http_request_headers": _host("pw_set_headers", NONE, None, 0, DYN),
    f"{SDK_HTTP}.set_http_request_trailers": _host("pw_set_headers", NONE, None, 1, DYN),
    f"{SDK_HTTP}.set_http_response_headers": _host("pw_set_headers", NONE, None, 2, DYN),
    f"{SDK_HTTP}.set_http_response_trailers": _host("pw_set_headers", NONE, None, 3, DYN),
    f"{SDK_TCP}.get_downstream_data": _host("pw_get_buffer_ctx", ir.opt(BYTES), None, 2, INT, DYN),
    f"{SDK_TCP}.get_upstream_data": _host("pw_get_buffer_ctx", ir.opt(BYTES), None, 3, INT, DYN),
    f"{SDK_TCP}.set_downstream_data": _host("pw_set_buffer", NONE, None, 2, DYN, INT, DYN),
    f"{SDK_TCP}.set_upstream_data": _host("pw_set_buffer", NONE, None, 3, DYN, INT, DYN),
    f"{SDK_TCP}.resume_downstream": _host("pw_stream_op", NONE, None, 2, 0),
    f"{SDK_TCP}.resume_upstream": _host("pw_stream_op", NONE, None, 3, 0),
    f"{SDK_TCP}.close_downstream": _host("pw_stream_op", NONE, None, 2, 1),
    f"{SDK_TCP}.close_upstream": _host("pw_stream_op", NONE, None, 3, 1),
    f"{_M}._Metric.define": _host("pw_metric_define", NONE, None),
    f"{_M}.Counter.increment": _host("pw_metric_increment", NONE, None, INT),
    f"{_M}.Gauge.increment": _host("pw_metric_increment", NONE, None, INT),
    f"{_M}.Gauge.record": _host("pw_metric_record", NONE, None, INT),
    f"{_M}.Histogram.record": _host("pw_metric_record", NONE, None, INT),
    f"{_M}.Counter.get": _host("pw_metric_get", INT, None),
    f"{_M}.Gauge.get": _host("pw_metric_get", INT, None),
}.items():
    SDK_METHODS[_name] = _lower
#: Module-level host calls (``proxywasm.hostcalls``, re-exported by ``proxywasm``): the methods' lowering.
HOSTCALLS: dict[str, _Lower] = {
    f"proxywasm.hostcalls.{_name}": SDK_METHODS[f"{SDK_BASE}.{_name}"]
    for _name in (
        "get_current_time_nanoseconds",
        "get_log_level",
        "get_shared_data",
        "set_shared_data",
        "register_shared_queue",
        "resolve_shared_queue",
        "enqueue_shared_queue",
        "dequeue_shared_queue",
    )
}
for _t, _map in (("request", 1), ("response", 3)):
    for _op in ("get", "set", "add", "remove"):
        SDK_METHODS[f"{SDK_HTTP}.{_op}_http_{_t}_trailer"] = _sdk_header(_op, _map)


def _log_at(level: int) -> Callable[[Lowerer, list[ir.Expr], n.CallExpr], ir.Expr]:
    def lower(lw: Lowerer, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
        if len(args) != 1 or args[0].ty.kind != "str":
            raise lw.error(e, "a log call without exactly one str argument")
        return ir.Call(NONE, e.line, "pw_log", [ir.Const(INT, e.line, level), args[0]])

    return lower


def _json_loads(lw: Lowerer, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
    if len(args) == 1 and args[0].ty.kind in ("dyn", "opt"):  # checked when it runs
        return ir.Call(DYN, e.line, "pw_json_loads_any", [lw.convert(args[0], DYN)])
    if len(args) != 1 or args[0].ty.kind not in ("str", "bytes"):
        raise lw.error(e, "json.loads of anything but one str or bytes argument")
    return ir.Call(DYN, e.line, "pw_json_loads", args)


def _log(lw: Lowerer, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
    if len(args) != 2:
        raise lw.error(e, "proxywasm.log without (level, message)")
    return ir.Call(NONE, e.line, "pw_log", [lw.convert(args[0], INT), lw.convert(args[1], STR)])


MODULE_INTRINSICS: dict[str, Callable[[Lowerer, list[ir.Expr], n.CallExpr], ir.Expr]] = {
    f"proxywasm.log.log_{name}": _log_at(level) for name, level in _LOG_LEVELS.items()
}
MODULE_INTRINSICS["proxywasm.log.log"] = _log
MODULE_INTRINSICS["proxywasm.hostcalls.log"] = _log
MODULE_INTRINSICS["json.loads"] = _json_loads


def _gather(lw: Lowerer, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
    calls = ir.Call(DYN, e.line, "@tuple", [lw.convert(a, DYN) for a in args], raises=False)
    return ir.Call(Ty("inst", cls="proxywasm.calls._Gather"), e.line, "pw_gather", [calls])


MODULE_INTRINSICS["proxywasm.calls.gather"] = _gather


def lower_module(source: Path, modname: str) -> ir.ModuleIR:
    """Type-check ``source`` with mypy and lower it (raises :class:`CompactError`)."""
    files, types = typecheck_program(source, modname)
    tree = files[modname]
    return Lowerer(str(source), tree, types, _compiled_helpers(files, tree)).module()
