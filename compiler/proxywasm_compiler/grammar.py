"""Which Python grammar reads a filter's sources: the host's ``ast`` or the target's.

The import closure (:mod:`.closure`) reads every module with a parse
function ``(source, filename) -> ast.Module``:

* :func:`host_parse` is the host's ``ast.parse`` (Python 3.11 here), what the
  ``cpython`` backend's CPython 3.11 accepts;
* :func:`cpython_parse` is the same, but a source that fails only because it
  uses syntax newer than 3.11 (PEP 695 ``type`` aliases and generics, PEP 701
  f-strings, PEP 758 ``except A, B:``, PEP 750 t-strings) gets an error that
  says so and names ``--backend componentize-py``;
* :func:`target_parse` reads Python 3.14 (componentize-py's CPython): libcst
  parses the source with the 3.14 grammar, the few newer constructs are
  lowered to 3.11 forms *with the same line numbers*, and the host's ``ast``
  parses the result. What the resolver needs (imports, names, calls, string
  constants) survives the lowering; type parameters (their bounds) and
  f-string formatting do not, which no import depends on.

libcst comes with the ``componentize`` extra; without it :func:`cpython_parse`
falls back to recognising the PEP 695 and PEP 758 forms on the failing line.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libcst

__all__ = [
    "CPYTHON_VERSION",
    "ParseFn",
    "cpython_parse",
    "host_parse",
    "newer_construct",
    "newer_syntax_message",
    "target_parse",
]

#: A parse function: (source bytes, filename for messages) -> the module's ``ast``.
ParseFn = Callable[[bytes, str], ast.Module]

#: The Python the ``cpython`` backend puts in the module.
CPYTHON_VERSION = "3.11"


def host_parse(source: bytes, filename: str) -> ast.Module:
    """The host's ``ast.parse``."""
    return ast.parse(source, filename=filename)


def _libcst() -> object | None:
    try:
        import libcst
    except ImportError:
        return None
    return libcst


# Recognised on the failing line when libcst is not installed.
_LINE_FORMS = (
    (re.compile(r"^\s*type\s+[A-Za-z_]\w*\s*(\[|=)"), "a `type` alias statement (PEP 695)"),
    (
        re.compile(r"^\s*(async\s+)?def\s+[A-Za-z_]\w*\s*\["),
        "a generic function `def f[T](...)` (PEP 695)",
    ),
    (re.compile(r"^\s*class\s+[A-Za-z_]\w*\s*\["), "a generic class `class C[T]:` (PEP 695)"),
)


def newer_construct(source: bytes, error: SyntaxError) -> tuple[str, int, int] | None:
    """The construct newer than Python 3.11 that made the host parser fail, if that is why.

    Returns (what it is, line, column) or None for a plain syntax error (one
    that Python 3.14 rejects too). With libcst installed the whole source is
    parsed with the 3.14 grammar and the first newer construct is named;
    without it, the failing line is matched against the PEP 695 forms.
    """
    cst = _libcst()
    if cst is not None:
        return _newer_by_cst(source)
    line = (error.text or "").splitlines()[0] if error.text else ""
    if not line and error.lineno:
        lines = source.decode("utf-8", "replace").splitlines()
        line = lines[error.lineno - 1] if error.lineno <= len(lines) else ""
    for pattern, what in _LINE_FORMS:
        if pattern.search(line):
            return what, error.lineno or 0, 1
    if "multiple exception types must be parenthesized" in (error.msg or ""):
        return "`except A, B:` without parentheses (PEP 758)", error.lineno or 0, 1
    return None


def _newer_by_cst(source: bytes) -> tuple[str, int, int] | None:
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None  # a syntax error for 3.14 too
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    found: list[tuple[str, cst.CSTNode]] = []

    class _Find(cst.CSTVisitor):
        def visit_TypeAlias(self, node: cst.TypeAlias) -> None:
            found.append(("a `type` alias statement (PEP 695)", node))

        def visit_TypeParameters(self, node: cst.TypeParameters) -> None:
            found.append(("type parameters `[T]` on a class or function (PEP 695)", node))

        def visit_TemplatedString(self, node: cst.TemplatedString) -> None:
            found.append(("a t-string (PEP 750)", node))

        def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
            if isinstance(node.type, cst.Tuple) and not node.type.lpar:
                found.append(("`except A, B:` without parentheses (PEP 758)", node))

        def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
            if isinstance(node.type, cst.Tuple) and not node.type.lpar:
                found.append(("`except* A, B:` without parentheses (PEP 758)", node))

        def visit_FormattedString(self, node: cst.FormattedString) -> bool:
            try:
                ast.parse("(" + module.code_for_node(node) + ")")
            except SyntaxError:
                found.append(("an f-string that needs Python 3.12 (PEP 701)", node))
            return False  # the outermost f-string is the construct

    wrapper.visit(_Find())
    if not found:
        return None
    positions = wrapper.resolve(PositionProvider)
    located = sorted(
        (positions[node].start.line, positions[node].start.column + 1, what) for what, node in found
    )
    line, column, what = located[0]
    return what, line, column


def newer_syntax_message(what: str) -> str:
    """The build error's text for a construct the cpython backend's Python cannot read."""
    return (
        f"{what} needs Python 3.12 or newer, and the cpython backend runs Python "
        f"{CPYTHON_VERSION}: build with `proxywasm build --backend componentize-py` "
        "(CPython 3.14), or write it the 3.11 way"
    )


def cpython_parse(source: bytes, filename: str) -> ast.Module:
    """The host's ``ast.parse``, with newer-than-3.11 syntax reported as such.

    The error stays a ``SyntaxError`` (the closure reports an unparsable
    module as such), at the construct's line, with a message naming the
    backend that can build it.
    """
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as exc:
        newer = newer_construct(source, exc)
        if newer is None:
            raise
        what, line, column = newer
        err = SyntaxError(newer_syntax_message(what))
        err.filename, err.lineno, err.offset = filename, line, column
        raise err from None


def target_parse(source: bytes, filename: str) -> ast.Module:
    """Parse ``source`` with Python 3.14's grammar into a host (3.11) ``ast`` with its lines.

    Sources the host parses are parsed by it unchanged. Others are parsed by
    libcst; one that libcst rejects too raises the host parser's ``SyntaxError``.
    """
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as exc:
        host_error = exc
    import libcst as cst

    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        # Invalid for 3.14 too: the host parser's message is the more precise.
        raise host_error from None
    lowered = module.visit(_lowerer(module)).code
    try:
        return ast.parse(lowered, filename=filename)
    except SyntaxError as exc:
        err = SyntaxError(f"{exc.msg} (in the lowering of Python 3.14 syntax for the 3.11 reader)")
        err.filename, err.lineno, err.offset = filename, exc.lineno, exc.offset
        raise err from None


def _string_parts(
    module: libcst.Module, parts: object, prefix: str, quote: str, out: list[str]
) -> None:
    """Each part of an f-/t-string as Python 3.11 source: texts as plain strings."""
    import libcst as cst

    assert isinstance(parts, (list, tuple))
    for part in parts:
        if isinstance(part, (cst.FormattedStringText, cst.TemplatedStringText)):
            out.append(f"{prefix}{quote}{part.value}{quote}")
        elif isinstance(part, (cst.FormattedStringExpression, cst.TemplatedStringExpression)):
            code = module.code_for_node
            out.append(
                code(part.whitespace_before_expression)
                + code(part.expression)
                + code(part.whitespace_after_expression)
            )
            if part.format_spec:
                _string_parts(module, part.format_spec, prefix, quote, out)


def _lowered_string(
    module: libcst.Module, node: libcst.FormattedString | libcst.TemplatedString
) -> libcst.BaseExpression:
    import libcst as cst

    start = node.start
    quote = start.lstrip("fFtTrRbBuU")
    prefix = "".join(c for c in start[: len(start) - len(quote)] if c in "rRbB")
    parts: list[str] = []
    _string_parts(module, node.parts, prefix, quote, parts)
    # A tuple of the texts and expressions: the same names, calls and string
    # constants for the resolver, on the same lines.
    expr = cst.parse_expression("(" + ", ".join(parts) + ",)") if parts else cst.SimpleString('""')
    return expr.with_changes(lpar=[*node.lpar, *expr.lpar], rpar=[*expr.rpar, *node.rpar])


def _flatten(node: libcst.BaseExpression) -> list[libcst.BaseExpression]:
    import libcst as cst

    out: list[cst.BaseExpression] = []
    while isinstance(node, cst.ConcatenatedString):
        out.append(node.left)
        node = node.right
    return [*out, node]


@functools.cache
def _lower_type() -> type:
    import libcst as cst

    class Lower(cst.CSTTransformer):
        """Python 3.12-3.14 constructs as their 3.11 equivalents for the import resolver."""

        def __init__(self, module: cst.Module) -> None:
            super().__init__()
            self.module = module

        def leave_TypeAlias(
            self, original_node: cst.TypeAlias, updated_node: cst.TypeAlias
        ) -> cst.Assign:
            n = updated_node
            before = (
                n.whitespace_after_type_parameters if n.type_parameters else n.whitespace_after_name
            )
            if not isinstance(before, cst.SimpleWhitespace):  # MaybeSentinel: the default
                before = cst.SimpleWhitespace(" ")
            target = cst.AssignTarget(
                target=n.name,
                whitespace_before_equal=before,
                whitespace_after_equal=n.whitespace_after_equals,
            )
            return cst.Assign(targets=[target], value=n.value, semicolon=n.semicolon)

        def leave_ClassDef(
            self, original_node: cst.ClassDef, updated_node: cst.ClassDef
        ) -> cst.ClassDef:
            return updated_node.with_changes(
                type_parameters=None, whitespace_after_type_parameters=cst.SimpleWhitespace("")
            )

        def leave_FunctionDef(
            self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
        ) -> cst.FunctionDef:
            return updated_node.with_changes(
                type_parameters=None, whitespace_after_type_parameters=cst.SimpleWhitespace("")
            )

        def leave_FormattedString(
            self, original_node: cst.FormattedString, updated_node: cst.FormattedString
        ) -> cst.BaseExpression:
            return _lowered_string(self.module, updated_node)

        def leave_TemplatedString(
            self, original_node: cst.TemplatedString, updated_node: cst.TemplatedString
        ) -> cst.BaseExpression:
            return _lowered_string(self.module, updated_node)

        def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
            return False  # lowered as a whole on leaving (libcst cannot concatenate tuples)

        def leave_ConcatenatedString(
            self, original_node: cst.ConcatenatedString, updated_node: cst.ConcatenatedString
        ) -> cst.BaseExpression:
            n = updated_node
            pieces: list[str] = []
            node: cst.BaseExpression = n
            while isinstance(node, cst.ConcatenatedString):
                pieces.append(
                    self.piece(node.left) + self.module.code_for_node(node.whitespace_between)
                )
                node = node.right
            pieces.append(self.piece(node))
            if all(isinstance(p, cst.SimpleString) for p in _flatten(n)):
                return n
            expr = cst.parse_expression("(" + ",".join(pieces) + ",)")
            return expr.with_changes(lpar=[*n.lpar, *expr.lpar], rpar=[*expr.rpar, *n.rpar])

        def piece(self, node: cst.BaseExpression) -> str:
            lowered = node.visit(Lower(self.module))
            assert isinstance(lowered, cst.CSTNode)
            return self.module.code_for_node(lowered)

        def leave_ExceptHandler(
            self, original_node: cst.ExceptHandler, updated_node: cst.ExceptHandler
        ) -> cst.ExceptHandler:
            t = updated_node.type
            if isinstance(t, cst.Tuple) and not t.lpar:
                t = t.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                return updated_node.with_changes(type=t)
            return updated_node

        def leave_ExceptStarHandler(
            self, original_node: cst.ExceptStarHandler, updated_node: cst.ExceptStarHandler
        ) -> cst.ExceptStarHandler:
            t = updated_node.type
            if isinstance(t, cst.Tuple) and not t.lpar:
                t = t.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                return updated_node.with_changes(type=t)
            return updated_node

    return Lower


def _lowerer(module: libcst.Module) -> libcst.CSTTransformer:
    """The lowering transformer (its class is made on first use: libcst is optional)."""
    transformer = _lower_type()(module)
    import libcst as cst

    assert isinstance(transformer, cst.CSTTransformer)
    return transformer
