"""Does a filter need CPython's compiler at run time? And the source patches that avoid it.

Every module is frozen, so a module only needs the parser and compiler if some
code calls ``eval``/``exec``/``compile`` or uses the ``ast`` module. The build
leaves the compiler out (``no_compiler.c``) unless this scan finds such a use;
``collections.namedtuple`` (which calls ``eval``) is patched instead.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PatchError", "compiler_uses", "patch_source"]

#: Stdlib modules whose eval/exec/compile calls a filter does not reach in
#: practice, or that the build patches.
_HARMLESS = {
    "collections": "namedtuple is patched to build __new__ without eval",
    "typing": "ForwardRef compiles string annotations only when they are evaluated",
}
_NEEDS_COMPILER_MODULES = {"_ast", "_tokenize", "_symtable", "_opcode"}


class PatchError(RuntimeError):
    """A stdlib module no longer looks as the patch expects."""


def compiler_uses(modules: Iterable[tuple[str, Path]], builtins_used: Iterable[str]) -> list[str]:
    """Why the compiler must stay, as ``"module:line calls eval"`` strings (empty: it can go)."""
    reasons: list[str] = []
    for name in sorted(set(builtins_used) & _NEEDS_COMPILER_MODULES):
        reasons.append(f"the C module {name} is imported")
    for name, path in modules:
        if name in _HARMLESS:
            continue
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("eval", "exec", "compile")
            ):
                reasons.append(f"{name} ({path.name}:{node.lineno}) calls {node.func.id}()")
    return reasons


_NAMEDTUPLE_OLD = """    code = f'lambda _cls, {arg_list}: _tuple_new(_cls, ({arg_list}))'
    __new__ = eval(code, namespace)
"""
_NAMEDTUPLE_NEW = """    __new__ = _pw_tuple_new(typename, field_names, defaults, tuple_new)
"""
_NAMEDTUPLE_DEFAULTS_OLD = """    if defaults is not None:
        __new__.__defaults__ = defaults
"""
_NAMEDTUPLE_HELPER = """

def _pw_tuple_new(typename, field_names, defaults, tuple_new):
    # proxywasm build: namedtuple's __new__ without eval (no compiler in the module).
    n = len(field_names)
    dflt = dict(zip(field_names[n - len(defaults):], defaults)) if defaults else {}

    def __new__(_cls, *args, **kwargs):
        if len(args) > n:
            raise TypeError(f"{typename}.__new__() takes {n + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        values = list(args)
        for name in field_names[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in dflt:
                values.append(dflt[name])
            else:
                raise TypeError(f"{typename}.__new__() missing required argument: {name!r}")
        if kwargs:
            bad = next(iter(kwargs))
            if bad in field_names:
                raise TypeError(f"{typename}.__new__() got multiple values for argument {bad!r}")
            raise TypeError(f"{typename}.__new__() got an unexpected keyword argument {bad!r}")
        return tuple_new(_cls, values)

    return __new__
"""


def patch_source(name: str, source: bytes) -> bytes:
    """The source to freeze for ``name`` when the compiler is left out."""
    if name != "collections":
        return source
    text = source.decode()
    for old in (_NAMEDTUPLE_OLD, _NAMEDTUPLE_DEFAULTS_OLD):
        if old not in text:
            raise PatchError(
                "collections.namedtuple changed: cannot patch out its eval(); use --keep-compiler"
            )
    text = text.replace(_NAMEDTUPLE_OLD, _NAMEDTUPLE_NEW).replace(_NAMEDTUPLE_DEFAULTS_OLD, "")
    return (text + _NAMEDTUPLE_HELPER).encode()
