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
SDK_CLASSES = {SDK_ROOT: "root", SDK_HTTP: "http"}
ALLOWED_IMPORTS = frozenset({"json", "proxywasm", "typing", "__future__", "proxywasm.types"})


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

    return [str(Path(proxywasm.__file__).resolve().parent.parent), str(Path(proxywasm_abi.__file__).resolve().parent)]


def typecheck(source: Path, modname: str) -> tuple[n.MypyFile, dict[n.Expression, mt.Type]]:
    """Run mypy on ``source`` (module ``modname``); raise CompactError with its messages."""
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
    return result.files[modname], result.types


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
        if name in _BUILTIN_TYPES:
            return _BUILTIN_TYPES[name]
        if p.type.is_enum and _intenum(name):
            return INT
        if p.type.fullname.startswith(("builtins.", "typing.", "collections.")):
            return DYN
        return Ty("inst", cls=name)
    if isinstance(p, mt.UnionType):
        items = [to_ty(i) for i in p.items]
        real = [i for i in items if i.kind != "none"]
        if len(set(real)) == 1 and len(real) < len(items):
            return ir.opt(real[0])
        if len(set(items)) == 1:
            return items[0]
        return DYN
    return DYN


# -- the SDK surface ----------------------------------------------------------------------

#: (method, C default, parameter types, result type) of the SDK callbacks, in slot order.
BASE_SLOTS: list[tuple[str, str, list[Ty], Ty]] = [
    ("on_done", "pw_default_on_done", [], BOOL),
    ("on_log", "pw_default_on_void", [], NONE),
    ("on_delete", "pw_default_on_void", [], NONE),
]
ROOT_SLOTS = BASE_SLOTS + [
    ("on_vm_start", "pw_default_on_start", [INT], BOOL),
    ("on_configure", "pw_default_on_start", [INT], BOOL),
    ("on_tick", "pw_default_on_tick", [], NONE),
    ("create_http_context", "pw_default_create_http_context", [INT], Ty("inst", cls=SDK_HTTP)),
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


def fn_type(params: list[Ty], ret: Ty) -> str:
    """The C function-pointer type of a method with these (non-self) parameters."""
    ret_c = "void" if ret.kind == "none" else ret.c
    return f"{ret_c} (*)({', '.join(['pw_obj *'] + [p.c for p in params])})"


class _Class:
    """What the frontend knows of a class while laying out the module."""

    def __init__(self, fullname: str, kind: str, fields: list[tuple[str, Ty]],
                 slots: list[tuple[str, str, list[Ty], Ty]], cname: str) -> None:
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

    def __init__(self, path: str, tree: n.MypyFile, types: dict[n.Expression, mt.Type]) -> None:
        self.path = path
        self.tree = tree
        self.types = types
        self.classes: dict[str, _Class] = {
            SDK_ROOT: _Class(SDK_ROOT, "root", [("context_id", INT)], ROOT_SLOTS, "pw_cls_RootContext"),
            SDK_HTTP: _Class(SDK_HTTP, "http", [("context_id", INT), ("root", Ty("inst", cls=SDK_ROOT))],
                             HTTP_SLOTS, "pw_cls_HttpContext"),
        }
        self.user_order: list[str] = []
        self.functions: list[ir.FuncIR] = []
        self.root: str | None = None
        self.module_funcs: dict[str, str] = {}
        self.base_of: dict[str, _Class] = {}
        self.fail_open: dict[str, bool] = {}
        self.defaults: dict[str, list[tuple[int, ir.Const]]] = {}
        # per function
        self.locals: dict[str, Ty] = {}
        self.ret: Ty = NONE
        self.cur_class: _Class | None = None
        self.cur_func: n.FuncDef | None = None
        self._uid = 0

    # -- errors and helpers --

    def error(self, node: n.Context, what: str) -> CompactError:
        return CompactError(f"{self.path}:{node.line}: {what} is not supported by the compact backend yet; {HINT}")

    def ty(self, e: n.Expression) -> Ty:
        return to_ty(self.types.get(e))

    def cname(self, *parts: str) -> str:
        self._uid += 1
        return "_".join(["u"] + [p.replace(".", "_") for p in parts])

    # -- module --

    def module(self) -> ir.ModuleIR:
        class_defs: list[n.ClassDef] = []
        func_defs: list[n.FuncDef] = []
        for stmt in self.tree.defs:
            if isinstance(stmt, n.Import):
                for mod, _ in stmt.ids:
                    if mod not in ALLOWED_IMPORTS:
                        raise self.error(stmt, f"importing {mod!r} (compact filters import json and proxywasm)")
            elif isinstance(stmt, n.ImportFrom):
                if stmt.id not in ALLOWED_IMPORTS:
                    raise self.error(stmt, f"importing from {stmt.id!r}")
            elif isinstance(stmt, n.ClassDef):
                class_defs.append(stmt)
                self.layout(stmt)
            elif isinstance(stmt, n.FuncDef):
                func_defs.append(stmt)
                self.module_funcs[stmt.fullname] = self.cname("f", stmt.name)
            elif isinstance(stmt, n.ExpressionStmt) and isinstance(stmt.expr, n.StrExpr):
                pass  # docstring
            elif isinstance(stmt, n.ExpressionStmt) and isinstance(stmt.expr, n.CallExpr):
                self.module_call(stmt.expr)
            else:
                raise self.error(stmt, f"module-level {type(stmt).__name__}")
        for fdef in func_defs:
            self.functions.append(self.function(fdef, self.module_funcs[fdef.fullname], None))
        for cdef in class_defs:
            self.methods(cdef)
        if self.root is None:
            raise CompactError(
                f"{self.path}: the module never calls proxywasm.set_root_context(YourRoot): add it at the end"
            )
        return ir.ModuleIR(self.path, [self.class_ir(self.classes[c]) for c in self.user_order], self.functions,
                           self.classes[self.root].cname)

    def module_call(self, call: n.CallExpr) -> None:
        callee = call.callee
        if isinstance(callee, n.RefExpr) and callee.fullname == "proxywasm.dispatcher.set_root_context":
            if len(call.args) != 1 or call.arg_kinds[0] != n.ARG_POS:
                raise self.error(call, "set_root_context with a root_id")
            arg = call.args[0]
            if not (isinstance(arg, n.NameExpr) and isinstance(arg.node, n.TypeInfo)
                    and arg.node.fullname in self.classes and self.classes[arg.node.fullname].kind == "root"):
                raise self.error(call, "set_root_context with anything but a RootContext subclass of this module")
            if self.root is not None:
                raise self.error(call, "a second set_root_context")
            self.root = arg.node.fullname
            return
        raise self.error(call, "a module-level call (only proxywasm.set_root_context(Root))")

    # -- classes --

    def layout(self, cdef: n.ClassDef) -> None:
        info = cdef.info
        if len(info.bases) != 1 or info.bases[0].type.fullname not in self.classes:
            raise self.error(cdef, f"class {cdef.name} (a class must subclass RootContext, HttpContext or one "
                                   "of this module's context classes)")
        if cdef.decorators:
            raise self.error(cdef, "a class decorator")
        base = self.classes[info.bases[0].type.fullname]
        cls = _Class(info.fullname, base.kind, list(base.fields), base.slots, self.cname("cls", info.name))
        cls.info = info
        cls.init = base.init
        self.base_of[info.fullname] = base
        self.fail_open[info.fullname] = self.fail_open.get(base.fullname, False)
        self.defaults[info.fullname] = list(self.defaults.get(base.fullname, []))
        for name, sym in info.names.items():
            node = sym.node
            if name == "fail_open":
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
        for stmt in cdef.defs.body:
            if isinstance(stmt, n.AssignmentStmt):
                target = stmt.lvalues[0]
                if len(stmt.lvalues) != 1 or not isinstance(target, n.NameExpr):
                    raise self.error(stmt, "this class-body assignment")
                if target.name == "fail_open":
                    if not isinstance(stmt.rvalue, n.NameExpr) or stmt.rvalue.fullname not in (
                            "builtins.True", "builtins.False"):
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
                if stmt.name == "__init__":
                    cls.init = (self.cname("m", info.name, "__init__"), stmt)
                    continue
                if stmt.name.startswith("__"):
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
                    if fn_type(params, ret) != fn_type(bparams, bret):
                        raise self.error(
                            stmt, f"{stmt.name} with the C signature {fn_type(params, ret)} (the base has "
                                  f"{fn_type(bparams, bret)}: annotate it as the base does)")
                    cls.slots[i] = (stmt.name, impl, params, ret)
            elif isinstance(stmt, n.ExpressionStmt) and isinstance(stmt.expr, n.StrExpr) or isinstance(stmt, n.PassStmt):
                pass
            else:
                raise self.error(stmt, f"{type(stmt).__name__} in a class body")
        self.classes[info.fullname] = cls
        self.user_order.append(info.fullname)

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
        cls = self.classes[cdef.info.fullname]
        for stmt in cdef.defs.body:
            if isinstance(stmt, n.FuncDef):
                if stmt.name == "__init__":
                    assert cls.init is not None
                    self.functions.append(self.function(stmt, cls.init[0], cls))
                else:
                    i = cls.slot(stmt.name)
                    assert i is not None
                    self.functions.append(self.function(stmt, cls.slots[i][1], cls))

    def header_arg(self, v: ir.Expr, e: n.CallExpr, none_ok: bool = False) -> ir.Expr:
        """A header name or value (``str | bytes``; ``None`` removes in set_*)."""
        if v.ty.kind in ("str", "bytes") or (none_ok and v.ty.kind == "none"):
            return v
        return ir.Call(DYN, e.line, "pw_check_header_value" if none_ok else "pw_check_header_name", [self.convert(v, DYN)])

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
        self.locals = {}
        self.ret = ret
        self.cur_class = cls
        self.cur_func = fdef
        params: list[tuple[str, Ty]] = []
        if cls is not None:
            self_name = fdef.arguments[0].variable.name
            params.append((self_name, Ty("inst", cls=cls.fullname)))
        for a, t in zip(args, params_t):
            params.append((a.variable.name, t))
        for name, t in params:
            self.locals[name] = t
        body = self.block(fdef.body)
        return ir.FuncIR(cname, fdef.name, params, ret,
                         {k: v for k, v in self.locals.items() if k not in dict(params)}, body, fdef.line)

    def block(self, block: n.Block | None) -> list[ir.Stmt]:
        out: list[ir.Stmt] = []
        if block is None:
            return out
        for stmt in block.body:
            out.extend(self.stmt(stmt))
        return out

    def stmt(self, s: n.Statement) -> list[ir.Stmt]:
        if isinstance(s, n.ExpressionStmt):
            if isinstance(s.expr, n.StrExpr):
                return []
            return [ir.ExprStmt(s.line, self.expr(s.expr))]
        if isinstance(s, n.AssignmentStmt):
            if len(s.lvalues) != 1:
                raise self.error(s, "chained assignment (a = b = c)")
            return [self.assign(s.lvalues[0], s.rvalue, s)]
        if isinstance(s, n.OperatorAssignmentStmt):
            value = self.binop(s.op, s.lvalue, s.rvalue, s, self.ty(s.lvalue))
            return [self.assign(s.lvalue, None, s, value)]
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
            return [ir.While(s.line, self.truth(self.expr(s.expr)), self.block(s.body))]
        if isinstance(s, n.PassStmt):
            return []
        if isinstance(s, n.BreakStmt):
            return [ir.Jump(s.line, "break")]
        if isinstance(s, n.ContinueStmt):
            return [ir.Jump(s.line, "continue")]
        names = {n.ForStmt: "a for loop", n.TryStmt: "try/except", n.RaiseStmt: "raise", n.WithStmt: "with",
                 n.DelStmt: "del", n.AssertStmt: "assert", n.MatchStmt: "match"}
        raise self.error(s, names.get(type(s), f"the statement {type(s).__name__}"))

    def assign(self, target: n.Expression, rvalue: n.Expression | None, s: n.Node,
               value: ir.Expr | None = None) -> ir.Stmt:
        if isinstance(target, n.NameExpr) and target.kind == n.LDEF and isinstance(target.node, n.Var):
            t = to_ty(target.node.type)
            prev = self.locals.setdefault(target.name, t)
            if prev != t:
                raise self.error(s, f"variable {target.name} with two types ({prev}, {t})")
            v = value if value is not None else self.expr(rvalue) if rvalue is not None else None
            assert v is not None
            return ir.Assign(s.line, target.name, self.convert(v, t))
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
        if isinstance(e, n.UnaryExpr) and e.op == "-" and isinstance(e.expr, (n.IntExpr, n.FloatExpr)):
            inner = self.const(e.expr)
            assert inner is not None and isinstance(inner.value, (int, float))
            return ir.Const(inner.ty, line, -inner.value)
        if (isinstance(e, n.MemberExpr) and isinstance(e.expr, n.RefExpr) and isinstance(e.expr.node, n.TypeInfo)
                and e.expr.node.fullname.startswith("proxywasm.")):
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
            if e.kind == n.LDEF and e.name in self.locals:
                return self.narrow(ir.Local(self.locals[e.name], line, e.name), e)
            if e.kind == n.LDEF and isinstance(e.node, n.Var):
                t = to_ty(e.node.type)
                self.locals.setdefault(e.name, t)
                return self.narrow(ir.Local(t, line, e.name), e)
            raise self.error(e, f"the name {e.name} here (module globals come later)")
        if isinstance(e, n.MemberExpr):
            obj = self.expr(e.expr)
            cls = self.class_of(obj.ty)
            slot = cls.field(e.name) if cls else None
            if slot is None:
                raise self.error(e, f"reading attribute {e.name} of a {obj.ty}")
            t = slot[1]
            if e.name == "root" and cls is not None and cls.kind == "http" and self.root is not None:
                t = Ty("inst", cls=self.root)
            return self.narrow(ir.FieldGet(t, line, obj, slot[0], e.name), e)
        if isinstance(e, n.CallExpr):
            return self.call(e)
        if isinstance(e, n.OpExpr):
            if e.op in ("and", "or"):
                result = self.ty(e)
                left = self.expr(e.left)
                right = self.convert(self.expr(e.right), result)
                return ir.Op(result, line, e.op, [left, right])
            return self.binop(e.op, e.left, e.right, e, self.ty(e))
        if isinstance(e, n.ComparisonExpr):
            if len(e.operators) != 1:
                raise self.error(e, "a chained comparison")
            return self.compare(e.operators[0], self.expr(e.operands[0]), self.expr(e.operands[1]), e)
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
            return ir.Cond(t, line, self.truth(self.expr(e.cond)), self.convert(self.expr(e.if_expr), t),
                           self.convert(self.expr(e.else_expr), t))
        names = {n.ListExpr: "a list display", n.DictExpr: "a dict display", n.TupleExpr: "a tuple",
                 n.SetExpr: "a set display", n.LambdaExpr: "lambda", n.IndexExpr: "subscripting",
                 n.ListComprehension: "a comprehension", n.SliceExpr: "slicing"}
        raise self.error(e, names.get(type(e), f"the expression {type(e).__name__}"))

    def narrow(self, v: ir.Expr, e: n.Expression) -> ir.Expr:
        """``v`` (of its declared type) at the type mypy narrowed ``e`` to here."""
        t = self.ty(e)
        if t == v.ty or t.kind == "dyn" or v.ty.scalar:
            return v
        if not t.scalar:
            return dataclasses.replace(v, ty=t)
        return ir.Convert(t, v.line, v)

    def binop(self, op: str, left_e: n.Expression, right_e: n.Expression, node: n.Context, result: Ty) -> ir.Expr:
        left, right = self.expr(left_e), self.expr(right_e)
        kinds = {left.ty.kind, right.ty.kind}
        line = node.line
        if kinds <= {"int", "bool"} and result.kind == "int":
            fn = {"+": "pw_int_add", "-": "pw_int_sub", "*": "pw_int_mul", "//": "pw_int_floordiv",
                  "%": "pw_int_mod"}.get(op)
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
            return ir.Call(FLOAT, line, "pw_float_div", [self.convert(left, FLOAT), self.convert(right, FLOAT)])
        if op == "+" and left.ty == right.ty and left.ty.kind in ("str", "bytes"):
            return ir.Call(left.ty, line, "pw_str_concat", [left, right], raises=False)
        raise self.error(node, f"the operator {op} on {left.ty} and {right.ty}")

    def compare(self, op: str, left: ir.Expr, right: ir.Expr, node: n.Context) -> ir.Expr:
        line = node.line
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
        if op in ("==", "!=") and not left.ty.scalar and not right.ty.scalar and (
                "dyn" in kinds or "opt" in kinds or "none" in kinds):
            eq = ir.Call(BOOL, line, "pw_dyn_eq", [left, right], raises=False)
            return eq if op == "==" else ir.Op(BOOL, line, "!", [eq])
        raise self.error(node, f"comparing {left.ty} {op} {right.ty}")

    def truth(self, v: ir.Expr) -> ir.Expr:
        if v.ty.kind == "bool":
            return v
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

    def bind(self, call: n.CallExpr, fdef: n.FuncDef, skip_self: bool, convert: bool = True) -> list[ir.Expr]:
        """The arguments of ``call`` in ``fdef``'s parameter order, defaults filled in, converted."""
        params = fdef.arguments[1:] if skip_self else fdef.arguments
        t = fdef.type
        types = [to_ty(a) for a in t.arg_types[1 if skip_self else 0:]] if isinstance(t, mt.CallableType) else [
            DYN for _ in params]
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
                v = self.const(p.initializer)
                if v is None:
                    raise self.error(p.initializer, "a parameter default that is not a literal")
            out.append(self.convert(v, types[i]) if convert else v)
        return out

    def call(self, e: n.CallExpr) -> ir.Expr:
        callee = e.callee
        line = e.line
        result = self.ty(e)
        # "".join([...]) and "{:{}}".format(v, "") are what mypy makes of f-strings
        if isinstance(callee, n.MemberExpr) and isinstance(callee.expr, n.StrExpr):
            return self.str_method_on_literal(e, callee.expr.value, callee.name)
        if isinstance(callee, n.NameExpr) and callee.fullname.startswith("builtins."):
            return self.builtin(e, callee.name)
        if isinstance(callee, n.RefExpr) and callee.fullname in MODULE_INTRINSICS:
            args = [self.expr(a) for a in e.args]
            if any(k != n.ARG_POS for k in e.arg_kinds):
                raise self.error(e, f"keyword arguments to {callee.fullname}")
            return MODULE_INTRINSICS[callee.fullname](self, args, e)
        if isinstance(callee, n.NameExpr) and isinstance(callee.node, n.TypeInfo):
            return self.construct(e, callee.node)
        if isinstance(callee, n.NameExpr) and isinstance(callee.node, n.FuncDef) and (
                callee.node.fullname in self.module_funcs):
            args = self.bind(e, callee.node, skip_self=False)
            _, ret = self.signature(callee.node, method=False)
            return ir.Call(ret, line, self.module_funcs[callee.node.fullname], args)
        if isinstance(callee, n.SuperExpr):
            return self.super_call(e, callee)
        if isinstance(callee, n.MemberExpr):
            recv = self.expr(callee.expr)
            if recv.ty.kind == "dyn":
                args = [self.convert(self.expr(a), DYN) for a in e.args]
                if any(k != n.ARG_POS for k in e.arg_kinds):
                    raise self.error(e, "keyword arguments in a call on a dynamic value")
                return ir.Call(DYN, line, f"@dyn.{callee.name}", [recv, *args])
            if recv.ty.kind == "bytes" and callee.name == "decode" and not e.args:
                return ir.Call(STR, line, "pw_bytes_decode", [recv])
            cls = self.class_of(recv.ty)
            if cls is not None:
                return self.method_call(e, recv, callee.name, cls, result)
            raise self.error(e, f"the method {callee.name} of {recv.ty}")
        raise self.error(e, "this call")

    def method_call(self, e: n.CallExpr, recv: ir.Expr, name: str, cls: _Class, result: Ty) -> ir.Expr:
        assert recv.ty.cls is not None
        t = mt.get_proper_type(self.types.get(e.callee.expr)) if isinstance(e.callee, n.MemberExpr) else None
        tinfo = t.type if isinstance(t, mt.Instance) else None
        definer = next((b for b in tinfo.mro if name in b.names), None) if tinfo else None
        if definer is None:
            raise self.error(e, f"the method {name}")
        sym = definer.names[name].node
        if definer.fullname.startswith("proxywasm."):
            key = f"{definer.fullname}.{name}"
            if key not in SDK_METHODS:
                raise self.error(e, f"the SDK method {name} (this slice covers headers, logs and configuration)")
            assert isinstance(sym, n.FuncDef)
            return SDK_METHODS[key](self, recv, self.bind(e, sym, skip_self=True, convert=False), e)
        slot = cls.slot(name)
        if slot is None or not isinstance(sym, n.FuncDef):
            raise self.error(e, f"calling {name}")
        _, _, _params, ret = cls.slots[slot]
        return ir.VCall(ret, e.line, recv, slot, self.bind(e, sym, skip_self=True))

    def construct(self, e: n.CallExpr, info: n.TypeInfo) -> ir.Expr:
        cls = self.classes.get(info.fullname)
        if cls is None or cls.info is None:
            raise self.error(e, f"constructing {info.name} (only this module's classes)")
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
        self_local = ir.Local(Ty("inst", cls=cls.fullname), e.line, self.cur_func.arguments[0].variable.name)
        base = self.base_of[cls.fullname]
        if sup.name == "__init__":
            if base.init is None:  # the SDK's __init__
                assert cls.info is not None
                args = self.bind(e, self.sdk_init(cls.info), skip_self=True)
                return ir.Call(NONE, e.line, f"@init_{cls.kind}", [self_local, *args])
            return ir.Call(NONE, e.line, base.init[0], [self_local, *self.bind(e, base.init[1], skip_self=True)])
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

    def str_method_on_literal(self, e: n.CallExpr, s: str, name: str) -> ir.Expr:
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
        raise self.error(e, f"str.{name} on a literal")

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
                raise self.error(e, f"getattr with a default ({default.ty}) of another type than the attribute ({t})")
            return ir.FieldGet(t, line, obj, slot[0], e.args[1].value, self.convert(default, t))
        args = [self.expr(a) for a in e.args]
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
            if a.ty.kind == "str":
                return ir.Call(INT, line, "pw_int_from_str", [a])
            if a.ty.kind == "float":
                return ir.Call(INT, line, "pw_int_from_float", [a])
        if name == "float" and len(args) == 1 and args[0].ty.kind in ("int", "bool", "float"):
            return self.convert(args[0], FLOAT)
        if name == "bool" and len(args) == 1:
            return self.truth(args[0])
        if name == "abs" and len(args) == 1 and args[0].ty.kind == "int":
            return ir.Call(INT, line, "pw_int_abs", [args[0]])
        if name in ("min", "max") and len(args) == 2 and {a.ty.kind for a in args} <= {"int", "bool"}:
            return ir.Call(INT, line, f"pw_int_{name}", [self.convert(a, INT) for a in args], raises=False)
        raise self.error(e, f"the builtin {name}() with these arguments")


def _sdk_header(method: str, map_id: int) -> Callable[[Lowerer, ir.Expr, list[ir.Expr], n.CallExpr], ir.Expr]:
    def lower(lw: Lowerer, recv: ir.Expr, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
        m = ir.Const(INT, e.line, map_id)
        if method == "get":
            return ir.Call(ir.opt(STR), e.line, "pw_get_header", [recv, m, lw.header_arg(args[0], e)])
        if method in ("set", "add"):
            return ir.Call(NONE, e.line, f"pw_{method}_header",
                           [recv, m, lw.header_arg(args[0], e), lw.header_arg(args[1], e, none_ok=method == "set")])
        return ir.Call(NONE, e.line, "pw_remove_header", [recv, m, lw.header_arg(args[0], e)])

    return lower




SDK_METHODS: dict[str, Callable[[Lowerer, ir.Expr, list[ir.Expr], n.CallExpr], ir.Expr]] = {}
for _direction, _map in (("request", _REQ), ("response", _RESP)):
    for _op in ("get", "set", "add", "remove"):
        SDK_METHODS[f"{SDK_HTTP}.{_op}_http_{_direction}_header"] = _sdk_header(_op, _map)
SDK_METHODS[f"{SDK_ROOT}.get_plugin_configuration"] = lambda lw, recv, args, e: ir.Call(
    ir.opt(BYTES), e.line, "pw_get_buffer", [ir.Const(INT, e.line, 7), ir.Const(INT, e.line, 0), ir.Const(INT, e.line, -1)])
SDK_METHODS[f"{SDK_ROOT}.get_vm_configuration"] = lambda lw, recv, args, e: ir.Call(
    ir.opt(BYTES), e.line, "pw_get_buffer", [ir.Const(INT, e.line, 6), ir.Const(INT, e.line, 0), ir.Const(INT, e.line, -1)])
SDK_METHODS["proxywasm.contexts.BaseContext.log"] = lambda lw, recv, args, e: ir.Call(
    NONE, e.line, "pw_log", [lw.convert(args[0], INT), lw.convert(args[1], STR)])


def _log_at(level: int) -> Callable[[Lowerer, list[ir.Expr], n.CallExpr], ir.Expr]:
    def lower(lw: Lowerer, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
        if len(args) != 1 or args[0].ty.kind != "str":
            raise lw.error(e, "a log call without exactly one str argument")
        return ir.Call(NONE, e.line, "pw_log", [ir.Const(INT, e.line, level), args[0]])

    return lower


def _json_loads(lw: Lowerer, args: list[ir.Expr], e: n.CallExpr) -> ir.Expr:
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
MODULE_INTRINSICS["json.loads"] = _json_loads


def lower_module(source: Path, modname: str) -> ir.ModuleIR:
    """Type-check ``source`` with mypy and lower it (raises :class:`CompactError`)."""
    tree, types = typecheck(source, modname)
    return Lowerer(str(source), tree, types).module()
