"""yamlish: a small YAML subset parser, enough for typical OpenAPI documents.

Pure Python (stdlib ``re`` only), so it freezes into a proxy-wasm module.
``loads(text)`` returns dicts, lists, str, int, float, bool and None, with the
YAML 1.2 core schema for plain scalars (``null``/``~``/empty, ``true``/``false``,
decimal, ``0x``/``0o`` integers, floats, ``.inf``/``.nan``). Everything else is
a string: ``yes``, ``on`` or ``2024-01-01`` stay strings, as in YAML 1.2.

Supported:

- block mappings (``key: value``; plain, single- or double-quoted keys) and
  block sequences (``- item``), including sequences at the same indentation as
  their key and compact nested forms (``- name: x`` / ``- - a``);
- plain scalars, also continued on more-indented lines (folded with spaces);
- single- and double-quoted scalars (all YAML escapes, also spanning lines);
- literal ``|`` and folded ``>`` block scalars with chomping (``-``/``+``) and
  an explicit indentation digit;
- flow sequences ``[a, b]`` and flow mappings ``{a: 1, b: [x]}``, nested, also
  spanning lines;
- ``#`` comments, a leading ``---`` and a trailing ``...``.

Not supported (each is refused with a :class:`YamlError` naming the line):
anchors and aliases (``&a``, ``*a``), merge keys (``<<``), tags (``!!str``,
``!foo``), complex keys (``? ``), directives (``%YAML``), several documents
in one stream, tabs in indentation, and single-pair mappings inside flow
sequences (``[a: 1]``). Duplicate keys are an error too.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["YamlError", "loads"]


class YamlError(ValueError):
    """The text is not YAML this parser understands; ``.line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"YAML line {line}: {message}")
        self.line = line
        self.reason = message


_INT_DEC = re.compile(r"[-+]?[0-9]+\Z")
_INT_OCT = re.compile(r"0o[0-7]+\Z")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")

_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT_DEC.match(text):
        return int(text)
    if _INT_OCT.match(text):
        return int(text, 0)
    if _INT_HEX.match(text):
        return int(text, 0)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


def loads(text: str | bytes) -> Any:
    """Parse one YAML document (the supported subset) into Python data."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(1, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    return _Parser(text).document()


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _strip_comment(text: str) -> str:
    """Drop a ``#`` comment from plain text (``#`` at the start or after a space)."""
    if text.startswith("#"):
        return ""
    cut = text.find(" #")
    tab = text.find("\t#")
    if tab >= 0 and (cut < 0 or tab < cut):
        cut = tab
    return (text[:cut] if cut >= 0 else text).rstrip(" \t")


def _is_marker(line: str) -> bool:
    """A document marker line (``---`` or ``...`` at column 0)."""
    return line[:3] in ("---", "...") and (len(line) == 3 or line[3] in " \t")


def _is_seq_entry(content: str) -> bool:
    return content == "-" or content.startswith(("- ", "-\t"))


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.i = 0

    # -- lines -------------------------------------------------------------------------

    def error(self, message: str, line: int | None = None) -> YamlError:
        return YamlError((self.i if line is None else line) + 1, message)

    def blank(self, line: str) -> bool:
        stripped = line.strip(" \t")
        return not stripped or stripped.startswith("#")

    def next_content(self) -> int | None:
        """Skip blank and comment lines; the index of the next content line, or None."""
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if not self.blank(line):
                head = line[: _indent_of(line) + 1]
                if "\t" in head:
                    raise self.error("tab in indentation (use spaces)")
                return self.i
            self.i += 1
        return None

    # -- document ------------------------------------------------------------------------

    def document(self) -> Any:
        i = self.next_content()
        if i is None:
            return None
        line = self.lines[i]
        if line.startswith("%"):
            raise self.error("directives (%YAML, %TAG) are not supported")
        if line.rstrip() == "---" or line.startswith(("--- ", "---\t")):
            rest = _strip_comment(line[3:].strip())
            if rest:
                raise self.error("content on the '---' line is not supported")
            self.i += 1
            if self.next_content() is None:
                return None
        start = self.lines[self.i]
        value = self.block(_indent_of(start), -1)
        j = self.next_content()
        if j is not None:
            line = self.lines[j]
            if line.rstrip() == "...":
                self.i += 1
                if self.next_content() is None:
                    return value
                raise self.error("several documents are not supported")
            if line.startswith("---"):
                raise self.error("several documents are not supported")
            raise self.error("unexpected content (indentation does not match any open block)")
        return value

    # -- block nodes ----------------------------------------------------------------------

    def block(self, indent: int, parent: int) -> Any:
        """The node whose first line is the current line, starting at column ``indent``."""
        line = self.lines[self.i]
        content = line[indent:]
        if _is_seq_entry(content):
            return self.sequence(indent)
        if self.split_key(content) is not None:
            return self.mapping(indent)
        return self.inline(content, parent, indent)

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while True:
            i = self.next_content()
            if i is None:
                break
            line = self.lines[i]
            col = _indent_of(line)
            if col < indent or _is_marker(line):
                break
            if col > indent:
                raise self.error("bad indentation of a sequence entry")
            content = line[indent:]
            if not _is_seq_entry(content):
                break
            rest = content[1:]
            body = rest.lstrip(" \t")
            if not body or body.startswith("#"):
                self.i += 1
                j = self.next_content()
                if j is not None and _indent_of(self.lines[j]) > indent:
                    items.append(self.block(_indent_of(self.lines[j]), indent))
                else:
                    items.append(None)
                continue
            newcol = indent + 1 + (len(rest) - len(body))
            self.lines[i] = " " * newcol + body
            items.append(self.block(newcol, indent))
        return items

    def mapping(self, indent: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        while True:
            i = self.next_content()
            if i is None:
                break
            line = self.lines[i]
            col = _indent_of(line)
            if col < indent or _is_marker(line):
                break
            if col > indent:
                raise self.error("bad indentation of a mapping entry")
            content = line[indent:]
            if _is_seq_entry(content):
                raise self.error("a sequence entry where a mapping key was expected")
            split = self.split_key(content)
            if split is None:
                raise self.error(f"expected 'key: value', got {content.strip()!r}")
            key, rest_col = split
            if key == "<<":
                raise self.error("merge keys (<<) are not supported")
            try:
                duplicate = key in result
            except TypeError:
                raise self.error("a key that is not a scalar is not supported") from None
            if duplicate:
                raise self.error(f"duplicate key {key!r}")
            rest = line[indent + rest_col :]
            body = rest.strip(" \t")
            if not body or body.startswith("#"):
                self.i += 1
                j = self.next_content()
                if j is None:
                    result[key] = None
                    continue
                next_line = self.lines[j]
                ncol = _indent_of(next_line)
                if ncol > indent:
                    result[key] = self.block(ncol, indent)
                elif ncol == indent and _is_seq_entry(next_line[indent:]):
                    result[key] = self.sequence(indent)
                else:
                    result[key] = None
                continue
            result[key] = self.inline(
                rest.lstrip(" \t"), indent, indent + rest_col + len(rest) - len(rest.lstrip(" \t"))
            )
        return result

    def split_key(self, content: str) -> tuple[Any, int] | None:
        """``(key, column after the ':')`` if ``content`` starts a mapping entry."""
        if not content:
            return None
        first = content[0]
        if first == "?" and (len(content) == 1 or content[1] in " \t"):
            raise self.error("complex keys ('? ') are not supported")
        if first in "\"'":
            value, end = self.quoted_on_line(content, 0)
            if end is None:
                return None
            j = end
            while j < len(content) and content[j] in " \t":
                j += 1
            if (
                j < len(content)
                and content[j] == ":"
                and (j + 1 == len(content) or content[j + 1] in " \t")
            ):
                return value, j + 1
            return None
        if first in "[{":
            return None
        if first in "&*!":
            self.unsupported_indicator(first)
        text = _strip_comment(content)
        pos = 0
        while True:
            j = text.find(":", pos)
            if j < 0:
                return None
            if j + 1 == len(text) or text[j + 1] in " \t":
                key_text = text[:j].rstrip(" \t")
                if not key_text:
                    return None
                return resolve_plain(key_text), j + 1
            pos = j + 1

    def unsupported_indicator(self, ch: str) -> None:
        what = {"&": "anchors (&name)", "*": "aliases (*name)", "!": "tags (!tag)"}.get(ch)
        if what:
            raise self.error(f"{what} are not supported")
        raise self.error(f"reserved indicator {ch!r} at the start of a plain scalar")

    # -- scalars and flow nodes on a line --------------------------------------------------------

    def inline(self, text: str, parent: int, col: int) -> Any:
        """A value starting on the current line at column ``col`` (``text`` is the rest)."""
        first = text[0]
        if first in "|>":
            return self.block_scalar(text, parent)
        if first in "\"'":
            return self.quoted(col)
        if first in "[{":
            return self.flow(col)
        if first in "&*!%@`":
            self.unsupported_indicator(first)
        if first in "]}":
            raise self.error(f"unexpected {first!r}")
        if _is_seq_entry(text):
            raise self.error("a block sequence cannot start on the line of its key")
        return self.plain(text, parent)

    def plain(self, text: str, parent: int) -> Any:
        first_line = self.i
        first = _strip_comment(text)
        if ": " in first or first.endswith(":"):
            raise self.error("a mapping value is not allowed here (quote the scalar)")
        parts = [first]
        self.i += 1
        commented = first != text.rstrip(" \t")
        pending_newlines = 0
        while self.i < len(self.lines) and not commented:
            line = self.lines[self.i]
            stripped = line.strip(" \t")
            if not stripped:
                pending_newlines += 1
                self.i += 1
                continue
            if _indent_of(line) <= parent or stripped.startswith("#") or _is_marker(line):
                break
            piece = _strip_comment(stripped)
            if ": " in piece or piece.endswith(":"):
                raise self.error("a mapping value is not allowed in a multi-line plain scalar")
            parts.append("\n" * pending_newlines if pending_newlines else " ")
            parts.append(piece)
            pending_newlines = 0
            commented = piece != stripped
            self.i += 1
        # Blank lines after the scalar belong to no one: step back over them.
        while self.i > first_line + 1 and not self.lines[self.i - 1].strip(" \t"):
            self.i -= 1
        if len(parts) == 1:
            return resolve_plain(first)
        return "".join(parts)

    def quoted_on_line(self, content: str, start: int) -> tuple[str, int | None]:
        """A quoted scalar that closes on this line: (value, end column) or (_, None)."""
        quote = content[start]
        j = start + 1
        out: list[str] = []
        while j < len(content):
            c = content[j]
            if quote == "'" and c == "'":
                if j + 1 < len(content) and content[j + 1] == "'":
                    out.append("'")
                    j += 2
                    continue
                return "".join(out), j + 1
            if quote == '"' and c == '"':
                return "".join(out), j + 1
            if quote == '"' and c == "\\":
                if j + 1 >= len(content):
                    return "", None
                ch, j = self.escape(content, j)
                out.append(ch)
                continue
            out.append(c)
            j += 1
        return "", None

    def escape(self, text: str, j: int) -> tuple[str, int]:
        """Decode the escape at ``text[j] == '\\'``; returns (char, index after it)."""
        code = text[j + 1]
        if code in _ESCAPES:
            return _ESCAPES[code], j + 2
        width = _HEX_ESCAPES.get(code)
        if width is None:
            raise self.error(f"unknown escape \\{code} in a double-quoted scalar")
        digits = text[j + 2 : j + 2 + width]
        if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            raise self.error(f"bad escape \\{code}{digits}")
        value = int(digits, 16)
        end = j + 2 + width
        # A UTF-16 surrogate pair written as two \u escapes (as JSON does).
        if 0xD800 <= value < 0xDC00 and text[end : end + 2] == "\\u":
            low = text[end + 2 : end + 6]
            if re.fullmatch(r"[dD][c-fC-F][0-9a-fA-F]{2}", low):
                value = 0x10000 + ((value - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                end += 6
        try:
            return chr(value), end
        except ValueError:
            raise self.error(f"bad escape \\{code}{digits}") from None

    def quoted(self, col: int) -> str:
        """A quoted block value starting at ``col`` of the current line, maybe spanning lines."""
        value, end = self.scan_quoted(col)
        tail = _strip_comment(self.lines[self.i][end:].strip(" \t"))
        if tail:
            raise self.error(f"unexpected text after a quoted scalar: {tail!r}")
        self.i += 1
        return value

    def scan_quoted(self, col: int) -> tuple[str, int]:
        """A quoted scalar starting at ``col`` of the current line: (value, column after it).

        Leaves the current line at the one holding the closing quote.
        """
        start_line = self.i
        line = self.lines[self.i]
        quote = line[col]
        j = col + 1
        out: list[str] = []
        while True:
            if j >= len(line):
                # Line break inside the scalar: fold (trailing spaces dropped,
                # one break -> space, n+1 breaks -> n newlines).
                while out and out[-1] in (" ", "\t") and not getattr(out[-1], "escaped", False):
                    out.pop()
                self.i += 1
                breaks = 0
                while self.i < len(self.lines) and not self.lines[self.i].strip(" \t"):
                    breaks += 1
                    self.i += 1
                if self.i >= len(self.lines):
                    raise self.error("unterminated quoted scalar", start_line)
                out.append("\n" * breaks if breaks else " ")
                line = self.lines[self.i]
                j = len(line) - len(line.lstrip(" \t"))
                continue
            c = line[j]
            if quote == "'" and c == "'":
                if j + 1 < len(line) and line[j + 1] == "'":
                    out.append("'")
                    j += 2
                    continue
                break
            if quote == '"' and c == '"':
                break
            if quote == '"' and c == "\\":
                if j + 1 >= len(line):  # escaped line break: join without a space
                    self.i += 1
                    if self.i >= len(self.lines):
                        raise self.error("unterminated quoted scalar", start_line)
                    line = self.lines[self.i]
                    j = len(line) - len(line.lstrip(" \t"))
                    continue
                ch, j = self.escape(line, j)
                out.append(_Escaped(ch))
                continue
            out.append(c)
            j += 1
        return "".join(out), j + 1

    def block_scalar(self, header: str, parent: int) -> str:
        spec = _strip_comment(header[1:].strip(" \t"))
        folded = header[0] == ">"
        chomp = "clip"
        explicit = 0
        for ch in spec:
            if ch == "-" and chomp == "clip":
                chomp = "strip"
            elif ch == "+" and chomp == "clip":
                chomp = "keep"
            elif ch in "123456789" and not explicit:
                explicit = int(ch)
            else:
                raise self.error(f"bad block scalar header {header.strip()!r}")
        self.i += 1
        block_indent: int | None = None
        if explicit:
            block_indent = max(parent, 0) + explicit
        lines: list[str] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if not line.strip(" "):
                lines.append(line)
                self.i += 1
                continue
            col = _indent_of(line)
            if block_indent is None:
                if col <= parent:
                    break
                block_indent = col
            if col < block_indent:
                break
            lines.append(line)
            self.i += 1
        at_end = self.i >= len(self.lines)
        cut = block_indent or 0
        body = [ln[cut:] if len(ln) >= cut else "" for ln in lines]
        trailing = 0
        while body and not lines[len(body) - 1].strip(" "):
            body.pop()
            trailing += 1
        if at_end and trailing and self.lines[-1] == "":
            trailing -= 1  # the text's final newline is not a blank line
        if not body:
            return "\n" * trailing if chomp == "keep" else ""
        text = self.fold(body) if folded else "\n".join(body)
        if chomp == "strip":
            return text
        if chomp == "clip":
            return text + "\n"
        return text + "\n" * (1 + trailing)

    @staticmethod
    def fold(body: list[str]) -> str:
        """Folded (``>``) content: single breaks between normal lines become spaces."""
        out: list[str] = []
        prev: bool | None = None  # was the previous content line more-indented?
        empties = 0
        for ln in body:
            if not ln:
                empties += 1
                continue
            more = ln[0] in " \t"
            if prev is None:
                out.append("\n" * empties + ln)
            elif not prev and not more:
                out.append(("\n" * empties if empties else " ") + ln)
            else:
                out.append("\n" * (empties + 1) + ln)
            prev = more
            empties = 0
        return "".join(out)

    # -- flow collections ---------------------------------------------------------------------

    def flow(self, col: int) -> Any:
        """A flow collection starting at ``col`` of the current line, maybe spanning lines."""
        reader = _FlowReader(self, col)
        value = reader.node()
        reader.skip_space()
        tail = _strip_comment(reader.rest())
        if tail:
            raise self.error(f"unexpected text after a flow collection: {tail!r}")
        self.i += 1
        return value


class _Escaped(str):
    """An escaped character in a double-quoted scalar (never trimmed when folding)."""

    escaped = True


class _FlowReader:
    """A cursor over the lines of a flow collection (``[...]`` / ``{...}``)."""

    def __init__(self, parser: _Parser, col: int) -> None:
        self.p = parser
        self.col = col

    @property
    def line(self) -> str:
        return self.p.lines[self.p.i]

    def rest(self) -> str:
        return self.line[self.col :]

    def peek(self) -> str:
        """The next character; '\\n' at a line end, '' at the end of the text."""
        if self.col < len(self.line):
            return self.line[self.col]
        return "\n" if self.p.i + 1 < len(self.p.lines) else ""

    def skip_space(self, multiline: bool = False) -> None:
        while True:
            ch = self.peek()
            if ch in (" ", "\t"):
                self.col += 1
            elif ch == "#" and (self.col == 0 or self.line[self.col - 1] in " \t"):
                self.col = len(self.line)
            elif ch == "\n" and multiline:
                self.p.i += 1
                self.col = 0
            else:
                return

    def node(self) -> Any:
        self.skip_space(True)
        ch = self.peek()
        if ch == "[":
            return self.sequence()
        if ch == "{":
            return self.mapping()
        if ch in ('"', "'"):
            return self.quoted()
        if ch == "":
            raise self.p.error("unterminated flow collection")
        if ch in "&*!":
            self.p.unsupported_indicator(ch)
        return resolve_plain(self.plain())

    def quoted(self) -> str:
        value, self.col = self.p.scan_quoted(self.col)
        return value

    def plain(self) -> str:
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch in ("", ",", "]", "}", "[", "{"):
                break
            if (
                ch == ":"
                and self.col + 1 >= len(self.line)
                or ch == ":"
                and self.line[self.col + 1] in " \t,]}[{"
            ):
                break
            if ch == "#" and self.col > 0 and self.line[self.col - 1] in " \t":
                break
            if ch == "\n":
                self.p.i += 1
                self.col = 0
                out.append(" ")
                self.skip_space()
                continue
            out.append(ch)
            self.col += 1
        text = re.sub(r"[ \t]+", " ", "".join(out)).strip(" ")
        return text

    def expect(self, ch: str) -> None:
        self.skip_space(True)
        if self.peek() != ch:
            got = self.peek() or "end of text"
            raise self.p.error(f"expected {ch!r} in a flow collection, got {got!r}")
        self.col += 1

    def sequence(self) -> list[Any]:
        self.col += 1
        items: list[Any] = []
        while True:
            self.skip_space(True)
            if self.peek() == "]":
                self.col += 1
                return items
            item = self.node()
            self.skip_space(True)
            if self.peek() == ":":
                raise self.p.error("single-pair mappings inside a flow sequence are not supported")
            items.append(item)
            self.skip_space(True)
            if self.peek() == ",":
                self.col += 1
                continue
            self.expect("]")
            return items

    def mapping(self) -> dict[Any, Any]:
        self.col += 1
        result: dict[Any, Any] = {}
        while True:
            self.skip_space(True)
            ch = self.peek()
            if ch == "}":
                self.col += 1
                return result
            if ch in ('"', "'"):
                key: Any = self.quoted()
            elif ch in ("[", "{"):
                raise self.p.error("collections as keys are not supported")
            elif ch == "":
                raise self.p.error("unterminated flow mapping")
            else:
                if ch in "&*!?":
                    if ch == "?":
                        raise self.p.error("complex keys ('? ') are not supported")
                    self.p.unsupported_indicator(ch)
                key = resolve_plain(self.plain())
            if key in result:
                raise self.p.error(f"duplicate key {key!r}")
            self.skip_space(True)
            value: Any = None
            if self.peek() == ":":
                self.col += 1
                self.skip_space(True)
                if self.peek() not in (",", "}"):
                    value = self.node()
            result[key] = value
            self.skip_space(True)
            if self.peek() == ",":
                self.col += 1
                continue
            self.expect("}")
            return result
