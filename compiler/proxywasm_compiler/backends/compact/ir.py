"""The compact backend's IR: typed expressions and statements, one step above C.

The frontend (:mod:`.frontend`) lowers mypy's typed AST into these nodes; the
code generator (:mod:`.codegen`) prints them as C. Every expression carries
its :class:`Ty`, which fixes its C representation: ``int`` is ``int64_t``,
``bool`` is ``int``, ``float`` is ``double``; everything else is a
``pw_obj *`` (None is the static ``pw_none``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Assign",
    "Await",
    "Block",
    "Call",
    "ClassIR",
    "Cond",
    "Const",
    "Convert",
    "Coroutine",
    "Expr",
    "ExprStmt",
    "FieldGet",
    "FieldSet",
    "ForIter",
    "ForRange",
    "FuncIR",
    "Global",
    "GlobalSet",
    "If",
    "Local",
    "ModuleIR",
    "Op",
    "Raise",
    "Raw",
    "Return",
    "Stmt",
    "Try",
    "Ty",
    "Unpack",
    "VCall",
    "While",
]

SCALARS = frozenset({"int", "bool", "float"})


@dataclass(frozen=True)
class Ty:
    """A type as the compact backend represents it.

    ``kind`` is one of ``int bool float str bytes none dyn opt inst exc``; ``opt``
    wraps ``inner`` (``X | None``), ``inst`` names a class (``cls`` is its
    fully qualified name). Other unions and ``Any`` are ``dyn``: a tagged
    pointer checked at run time.
    """

    kind: str
    cls: str | None = None
    inner: Ty | None = None

    @property
    def scalar(self) -> bool:
        """True for the unboxed kinds (``int``, ``bool``, ``float``)."""
        return self.kind in SCALARS

    @property
    def c(self) -> str:
        """The C type of a value of this type."""
        return {"int": "int64_t", "bool": "int", "float": "double"}.get(self.kind, "pw_obj *")

    def __str__(self) -> str:
        if self.kind == "opt":
            return f"{self.inner} | None"
        if self.kind in ("inst", "exc"):
            return str(self.cls).rsplit(".", 1)[-1]
        return {"dyn": "Any", "none": "None"}.get(self.kind, self.kind)


INT = Ty("int")
BOOL = Ty("bool")
FLOAT = Ty("float")
STR = Ty("str")
BYTES = Ty("bytes")
NONE = Ty("none")
DYN = Ty("dyn")


def opt(inner: Ty) -> Ty:
    """``inner | None``."""
    return inner if inner.kind in ("opt", "none", "dyn") else Ty("opt", inner=inner)


@dataclass
class Expr:
    """Base of expressions: ``ty`` and the source line (for tracebacks)."""

    ty: Ty
    line: int


@dataclass
class Const(Expr):
    """A literal: int, float, bool, str, bytes or None."""

    value: object


@dataclass
class Local(Expr):
    """A local variable or parameter."""

    name: str


@dataclass
class Global(Expr):
    """A module global (``g_<name>`` in C)."""

    name: str


@dataclass
class Raw(Expr):
    """A C expression with no effects, printed as it is (``&pw_ValueError``)."""

    text: str


@dataclass
class Block(Expr):
    """Statements, then a value: a comprehension (a GNU statement expression in C)."""

    stmts: list[Stmt]
    result: Expr


@dataclass
class FieldGet(Expr):
    """``obj.name``, field ``index`` of the instance (AttributeError if unset).

    With ``default`` set it is ``getattr(obj, "name", default)``.
    """

    obj: Expr
    index: int
    name: str
    default: Expr | None = None


@dataclass
class Call(Expr):
    """A call of a C function by name (runtime or generated); ``raises``: may set ``pw_err``."""

    func: str
    args: list[Expr]
    raises: bool = True


@dataclass
class VCall(Expr):
    """A method call through the receiver's vtable: ``slot`` of its class."""

    obj: Expr
    slot: int
    args: list[Expr]
    raises: bool = True


@dataclass
class Op(Expr):
    """An operator printed as C: ``op`` is a C operator over unboxed operands,
    or one of ``and or not`` with Python's value semantics."""

    op: str
    args: list[Expr]


@dataclass
class Cond(Expr):
    """``a if test else b``."""

    test: Expr
    then: Expr
    orelse: Expr


@dataclass
class Convert(Expr):
    """Change representation: box, unbox (checked for ``dyn``), or take the truth value."""

    value: Expr
    truth: bool = False


@dataclass
class Stmt:
    """Base of statements."""

    line: int


@dataclass
class Assign(Stmt):
    """``name = value`` for a local."""

    name: str
    value: Expr


@dataclass
class FieldSet(Stmt):
    """``obj.name = value``."""

    obj: Expr
    index: int
    value: Expr


@dataclass
class ExprStmt(Stmt):
    """An expression evaluated for its effects."""

    value: Expr


@dataclass
class Return(Stmt):
    """``return value`` (``None``: a bare return)."""

    value: Expr | None


@dataclass
class If(Stmt):
    """``if test: body else: orelse`` (``test`` is a ``bool``)."""

    test: Expr
    body: list[Stmt]
    orelse: list[Stmt]


@dataclass
class While(Stmt):
    """``while test: body``; ``break`` / ``continue`` are :class:`Jump`."""

    test: Expr
    body: list[Stmt]


@dataclass
class GlobalSet(Stmt):
    """``name = value`` for a module global."""

    name: str
    value: Expr


@dataclass
class Unpack(Stmt):
    """``a, b = value``: the items of ``value`` (a dynamic value) into the ``dyn`` locals ``names``."""

    value: Expr
    names: list[str]


@dataclass
class ForRange(Stmt):
    """``for var in range(start, stop, step): body`` over unboxed ints."""

    var: str
    start: Expr
    stop: Expr
    step: Expr
    body: list[Stmt]


@dataclass
class ForIter(Stmt):
    """``for var in iterable: body``; ``var`` is a ``dyn`` local (the body converts it)."""

    var: str
    iterable: Expr
    body: list[Stmt]


@dataclass
class Handler:
    """One ``except`` clause: C exception types (None: a bare except), the bound local."""

    types: list[str] | None
    name: str | None
    body: list[Stmt]


@dataclass
class Try(Stmt):
    """``try`` / ``except`` / ``else`` / ``finally``."""

    body: list[Stmt]
    handlers: list[Handler]
    orelse: list[Stmt]
    finalbody: list[Stmt]


@dataclass
class Raise(Stmt):
    """``raise exc`` (an exception object), or a bare ``raise`` (``exc`` None)."""

    exc: Expr | None


@dataclass
class Await(Stmt):
    """``target = await value`` (``target`` None: the answer is dropped): the coroutine
    suspends until the callout ``value`` (an ``HttpCall`` or a ``gather``) has answered."""

    value: Expr
    target: str | None


@dataclass
class Coroutine:
    """An ``async def`` callback: its vtable slot holds ``start`` (the slot's C signature),
    which makes the frame and steps the coroutine once (runtime/pw_views.c drives the rest)."""

    start: str
    callback: str  # the SDK callback's name, for messages
    stream: int  # the StreamType it pauses and its end resumes; -1 for a root's
    params: list[Ty]  # the slot's parameters after self
    ret: Ty  # the slot's result: INT (an action) or NONE


@dataclass
class Jump(Stmt):
    """``break`` or ``continue``."""

    kind: str


@dataclass
class FuncIR:
    """One function or method: ``cname`` is its C name, ``pyname`` what tracebacks print."""

    cname: str
    pyname: str
    params: list[tuple[str, Ty]]
    ret: Ty
    locals: dict[str, Ty]
    body: list[Stmt]
    line: int
    path: str | None = None  # the source file tracebacks name (None: the module's)
    frame: bool = True  # False: a thunk of a function value, no frame of its own in tracebacks
    #: set for an ``async def`` callback: the function is its step function over a heap frame
    coroutine: Coroutine | None = None


@dataclass
class ClassIR:
    """A user class: its fields (inherited first), vtable and defaults.

    ``base`` is the C name of the base class descriptor; ``slots`` maps each
    vtable slot to the C function filling it; ``methods`` maps a Python method
    name to its slot.
    """

    fullname: str
    name: str
    cname: str
    base: str
    sdk_kind: str  # "root", "http", "tcp" or "plain": the class at the top of its hierarchy
    fields: list[tuple[str, Ty]]
    slots: list[tuple[str, str]]  # (C function, C function-pointer type)
    methods: dict[str, int]
    defaults: list[tuple[int, Const]] = field(default_factory=list)
    fail_open: bool = False
    init: str | None = None  # C name of the user __init__ (own or inherited), if any


@dataclass
class ModuleIR:
    """A whole filter: its classes, functions, and the registered root class."""

    path: str
    classes: list[ClassIR]
    functions: list[FuncIR]
    root_class: str | None
    strings: dict[tuple[str, bytes], str] = field(default_factory=dict)
    globals: list[tuple[str, Ty]] = field(default_factory=list)
    init: FuncIR | None = None  # the module body: its globals' assignments
    exc_types: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # (C name, Python name, C base)
