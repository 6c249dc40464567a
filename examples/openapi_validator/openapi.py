"""openapi: load an OpenAPI 3.0 / 3.1 document, match requests to operations, validate them.

Written for the openapi_validator filter and frozen into its proxy-wasm
module, so it uses the stdlib's ``json`` and ``re`` only (plus ``yamlish``,
the YAML subset parser next to it).

- :func:`load_document` turns the ``spec`` of the plugin configuration (a
  dict, or a string holding JSON or YAML) into data;
- :class:`Spec` checks the document once (``openapi`` and ``paths`` present,
  every ``$ref`` local and resolvable, no ``$ref`` cycle without a schema in
  between, every ``pattern`` a valid regular expression) and precompiles the
  path templates;
- :meth:`Spec.match` finds the operation of a request; :meth:`Spec.check_parameters`,
  :meth:`Spec.body_plan` / :meth:`Spec.check_body` and
  :meth:`Operation.documents_status` validate it;
- :class:`SchemaValidator` implements the schema keywords OpenAPI uses.

Every finding is a :class:`Violation` with a ``kind``: ``unknown_path``,
``unknown_method``, ``bad_parameter``, ``bad_body`` or ``undocumented_status``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yamlish

__all__ = [
    "Operation",
    "Parameter",
    "SchemaValidator",
    "Spec",
    "SpecError",
    "Violation",
    "load_document",
    "parse_query",
    "unquote",
]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: Errors collected per schema validation at most (the rest are not reported).
MAX_ERRORS = 20
#: Schema recursion deeper than this is reported instead of followed.
MAX_DEPTH = 64


class SpecError(ValueError):
    """The OpenAPI document cannot be used; the message names the problem."""


class Violation:
    """One way a request (or its response) departs from the specification.

    ``kind``: the counter it feeds; ``location``: ``path``, ``query``,
    ``header``, ``cookie``, ``body``, ``request`` (method/path) or
    ``response``; ``name``: the parameter's name, if any; ``pointer``: a JSON
    pointer (``#/a/0``) into the body or parameter value; ``detail``: what is wrong.
    """

    __slots__ = ("detail", "kind", "location", "name", "pointer")

    def __init__(
        self, kind: str, location: str, detail: str, name: str = "", pointer: str = ""
    ) -> None:
        self.kind = kind
        self.location = location
        self.detail = detail
        self.name = name
        self.pointer = pointer

    def where(self) -> str:
        """Human-readable place: ``query parameter 'limit'``, ``body #/name``, ``path``."""
        if self.location in ("path", "query", "header", "cookie") and self.name:
            text = f"{self.location} parameter '{self.name}'"
            if self.pointer and self.pointer != "#":
                text += f" {self.pointer}"
            return text
        if self.location == "body":
            return f"body {self.pointer}" if self.pointer else "body"
        return self.location

    def as_problem(self) -> dict[str, Any]:
        """The entry of the ``errors`` list of an ``application/problem+json`` reply."""
        entry: dict[str, Any] = {"kind": self.kind, "in": self.location}
        if self.name:
            entry["name"] = self.name
        if self.pointer:
            entry["pointer"] = self.pointer
        entry["detail"] = self.detail
        return entry

    def __repr__(self) -> str:
        return f"Violation({self.kind}: {self.where()}: {self.detail})"


# -- loading ---------------------------------------------------------------------------


def _json_keys(value: Any) -> Any:
    """YAML keys can be ints or booleans (``200:``); JSON keys are strings."""
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else json.dumps(k)): _json_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value


def load_document(source: Any) -> Any:
    """The OpenAPI document of ``source``: a dict as is, or a str/bytes holding JSON or YAML."""
    if isinstance(source, (bytes, bytearray)):
        try:
            source = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError("spec is not UTF-8") from None
    if isinstance(source, str):
        text = source.lstrip("\ufeff \t\r\n")
        if text.startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpecError(
                    f"spec is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                ) from None
        try:
            return _json_keys(yamlish.loads(text))
        except yamlish.YamlError as exc:
            raise SpecError(
                f"spec is not valid YAML (or not in the supported subset): {exc}"
            ) from None
    return source


def _pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(base: str, token: Any) -> str:
    return f"{base}/{_pointer_escape(str(token))}"


def unquote(text: str, plus: bool = False) -> str:
    """Percent-decode ``text`` as UTF-8 (``plus``: ``+`` is a space, as in query strings)."""
    if plus and "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    return _PERCENT_RUN.sub(
        lambda m: bytes.fromhex(m.group(0).replace("%", "")).decode("utf-8", "replace"), text
    )


_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def parse_query(query: str) -> dict[str, list[str]]:
    """``a=1&b=2&a=3`` -> ``{"a": ["1", "3"], "b": ["2"]}`` (names and values decoded)."""
    out: dict[str, list[str]] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.setdefault(unquote(name, plus=True), []).append(unquote(value, plus=True))
    return out


# -- schema validation -------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _has_type(value: Any, name: Any) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "null":
        return value is None
    return True  # an unknown type name constrains nothing


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _show(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _types_text(types: list[Any]) -> str:
    names = [str(t) for t in types]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)\Z")
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-](\d\d):(\d\d))\Z")
_EMAIL = re.compile(
    r"[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*\Z")
_URI_REFERENCE = re.compile(r"[^\s<>\"{}|\\^`]*\Z")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
_HEX4 = re.compile(r"[0-9A-Fa-f]{1,4}\Z")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_date(text: str) -> bool:
    m = _DATE.match(text)
    if not m:
        return False
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= month <= 12 or day < 1 or day > _DAYS[month - 1]:
        return False
    if month == 2 and day == 29:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


def _is_time(text: str) -> bool:
    m = _TIME.match(text)
    if not m:
        return False
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if hour > 23 or minute > 59 or second > 60:
        return False
    return m.group(6) is None or (int(m.group(6)) <= 23 and int(m.group(7)) <= 59)


def _is_date_time(text: str) -> bool:
    if len(text) < 20 or text[10] not in "Tt":
        return False
    return _is_date(text[:10]) and _is_time(text[11:])


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isascii() or not part.isdigit() or len(part) > 3:
            return False
        if (len(part) > 1 and part[0] == "0") or int(part) > 255:
            return False
    return True


def _is_ipv6(text: str) -> bool:
    if not text or not text.isascii() or text.count("::") > 1:
        return False
    groups_needed = 8
    if "." in text:  # an IPv4 tail counts as two groups
        head, _, tail = text.rpartition(":")
        if not _is_ipv4(tail):
            return False
        text = head + ":" if head.endswith(":") else head
        groups_needed = 6
        if text.endswith("::"):
            pass
        elif text.endswith(":"):
            text = text[:-1]
    if "::" in text:
        left, _, right = text.partition("::")
        lparts = left.split(":") if left else []
        rparts = right.split(":") if right else []
        if len(lparts) + len(rparts) > groups_needed - 1:
            return False
        parts = lparts + rparts
    else:
        parts = text.split(":")
        if len(parts) != groups_needed:
            return False
    return all(_HEX4.match(p) for p in parts)


def _is_regex(text: str) -> bool:
    try:
        re.compile(text)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


#: format name -> predicate over strings. Unknown formats are not checked (as JSON Schema says).
STRING_FORMATS: dict[str, Any] = {
    "date": _is_date,
    "date-time": _is_date_time,
    "time": _is_time,
    "email": lambda s: bool(_EMAIL.match(s)) and len(s) <= 320,
    "hostname": lambda s: bool(_HOSTNAME.match(s)),
    "uuid": lambda s: bool(_UUID.match(s)),
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "uri": lambda s: bool(_URI.match(s)),
    "uri-reference": lambda s: bool(_URI_REFERENCE.match(s)),
    "byte": lambda s: bool(_BASE64.match(s)),
    "regex": _is_regex,
}
#: integer format name -> inclusive range.
INTEGER_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class SchemaValidator:
    """Validates instances against OpenAPI schema objects of one document.

    ``version31``: JSON Schema 2020-12 rules of OpenAPI 3.1 (``type`` arrays
    with ``"null"``, keywords next to ``$ref``); otherwise OpenAPI 3.0's
    (``nullable``, ``$ref`` siblings ignored). ``exclusiveMinimum`` /
    ``exclusiveMaximum`` are understood in both forms (3.0 boolean, 3.1 number).
    """

    def __init__(self, document: Any, version31: bool = False) -> None:
        self.document = document
        self.version31 = version31
        self._refs: dict[str, Any] = {}
        self._patterns: dict[str, Any] = {}
        self._active: set[tuple[int, int]] = set()

    # -- references ------------------------------------------------------------------

    def resolve(self, ref: str) -> Any:
        """The target of a local ``$ref`` (``#/components/schemas/Pet``)."""
        target = self._refs.get(ref, self)
        if target is not self:
            return target
        if not ref.startswith("#"):
            raise SpecError(f"$ref {ref!r}: only local references (#/...) are supported")
        node = self.document
        path = unquote(ref[1:])
        if path:
            if not path.startswith("/"):
                raise SpecError(f"$ref {ref!r}: not a JSON pointer")
            for raw in path[1:].split("/"):
                token = raw.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and token in node:
                    node = node[token]
                elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                    node = node[int(token)]
                else:
                    raise SpecError(f"dangling $ref {ref!r}: no {token!r} there")
        self._refs[ref] = node
        return node

    def deref(self, node: Any) -> Any:
        """Follow ``$ref`` until a node without one (cycles were refused at load)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 64:
            node = self.resolve(node["$ref"])
            seen += 1
        return node

    def pattern(self, text: str) -> Any:
        compiled = self._patterns.get(text)
        if compiled is None:
            compiled = self._patterns[text] = re.compile(text)
        return compiled

    # -- validation -----------------------------------------------------------------

    def validate(
        self, schema: Any, instance: Any, pointer: str = "#", request: bool = True
    ) -> list[tuple[str, str]]:
        """Errors of ``instance`` against ``schema``: ``[(JSON pointer, message)]``, at most ``MAX_ERRORS``.

        ``request``: the instance is sent by a client, so ``readOnly``
        properties are not required (``writeOnly`` ones otherwise).
        """
        errors: list[tuple[str, str]] = []
        self._active = set()
        self._check(schema, instance, pointer, errors, 0, request)
        return errors[:MAX_ERRORS]

    def is_valid(self, schema: Any, instance: Any, request: bool = True) -> bool:
        return not self.validate(schema, instance, "#", request)

    def _check(
        self,
        schema: Any,
        inst: Any,
        ptr: str,
        errs: list[tuple[str, str]],
        depth: int,
        request: bool,
    ) -> None:
        if len(errs) >= MAX_ERRORS or schema is True:
            return
        if schema is False:
            errs.append((ptr, "no value is allowed here"))
            return
        if not isinstance(schema, dict):
            return
        if depth > MAX_DEPTH:
            errs.append((ptr, f"nested deeper than {MAX_DEPTH} schema levels"))
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.resolve(ref)
            key = (id(target), id(inst))
            if (
                key not in self._active
            ):  # the same schema on the same value: a cycle, already being checked
                self._active.add(key)
                try:
                    self._check(target, inst, ptr, errs, depth + 1, request)
                finally:
                    self._active.discard(key)
            if not self.version31:
                return  # OpenAPI 3.0: siblings of $ref are ignored
        if inst is None and schema.get("nullable") is True and not self.version31:
            return
        declared = schema.get("type")
        if declared is not None:
            types = declared if isinstance(declared, list) else [declared]
            if not any(_has_type(inst, t) for t in types):
                errs.append((ptr, f"expected {_types_text(types)}, got {_json_type(inst)}"))
                return
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(_equal(inst, e) for e in enum):
            errs.append((ptr, f"{_show(inst)} is not one of {_show(enum)}"))
        if "const" in schema and not _equal(inst, schema["const"]):
            errs.append((ptr, f"{_show(inst)} is not {_show(schema['const'])}"))
        if isinstance(inst, bool) or inst is None:
            pass
        elif isinstance(inst, (int, float)):
            self._number(schema, inst, ptr, errs)
        elif isinstance(inst, str):
            self._string(schema, inst, ptr, errs)
        elif isinstance(inst, list):
            self._array(schema, inst, ptr, errs, depth, request)
        elif isinstance(inst, dict):
            self._object(schema, inst, ptr, errs, depth, request)
        self._combinators(schema, inst, ptr, errs, depth, request)

    def _number(
        self, schema: dict[str, Any], value: float, ptr: str, errs: list[tuple[str, str]]
    ) -> None:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        num = (int, float)
        if isinstance(lo, num) and not isinstance(lo, bool):
            if xlo is True and value <= lo:
                errs.append(
                    (ptr, f"{_show(value)} is not greater than the exclusive minimum {_show(lo)}")
                )
            elif value < lo:
                errs.append((ptr, f"{_show(value)} is less than the minimum {_show(lo)}"))
        if isinstance(hi, num) and not isinstance(hi, bool):
            if xhi is True and value >= hi:
                errs.append(
                    (ptr, f"{_show(value)} is not less than the exclusive maximum {_show(hi)}")
                )
            elif value > hi:
                errs.append((ptr, f"{_show(value)} is greater than the maximum {_show(hi)}"))
        if isinstance(xlo, num) and not isinstance(xlo, bool) and value <= xlo:
            errs.append(
                (ptr, f"{_show(value)} is not greater than the exclusive minimum {_show(xlo)}")
            )
        if isinstance(xhi, num) and not isinstance(xhi, bool) and value >= xhi:
            errs.append(
                (ptr, f"{_show(value)} is not less than the exclusive maximum {_show(xhi)}")
            )
        step = schema.get("multipleOf")
        if isinstance(step, num) and not isinstance(step, bool) and step > 0:
            if isinstance(value, int) and isinstance(step, int):
                ok = value % step == 0
            else:
                quotient = value / step
                ok = abs(quotient - round(quotient)) < 1e-9
            if not ok:
                errs.append((ptr, f"{_show(value)} is not a multiple of {_show(step)}"))
        fmt = schema.get("format")
        bounds = INTEGER_FORMATS.get(fmt) if isinstance(fmt, str) else None
        if bounds is not None:
            if isinstance(value, float) and not value.is_integer():
                errs.append((ptr, f"{_show(value)} is not an integer ({fmt})"))
            elif not bounds[0] <= value <= bounds[1]:
                errs.append((ptr, f"{_show(value)} is out of the {fmt} range"))

    def _string(
        self, schema: dict[str, Any], value: str, ptr: str, errs: list[tuple[str, str]]
    ) -> None:
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if isinstance(lo, int) and len(value) < lo:
            errs.append((ptr, f"{_show(value)} is shorter than the minimum length {lo}"))
        if isinstance(hi, int) and len(value) > hi:
            errs.append((ptr, f"{_show(value)} is longer than the maximum length {hi}"))
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not self.pattern(pattern).search(value):
            errs.append((ptr, f"{_show(value)} does not match the pattern {pattern!r}"))
        fmt = schema.get("format")
        check = STRING_FORMATS.get(fmt) if isinstance(fmt, str) else None
        if check is not None and not check(value):
            errs.append((ptr, f"{_show(value)} is not a valid {fmt}"))

    def _array(
        self,
        schema: dict[str, Any],
        value: list[Any],
        ptr: str,
        errs: list[tuple[str, str]],
        depth: int,
        request: bool,
    ) -> None:
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if isinstance(lo, int) and len(value) < lo:
            errs.append((ptr, f"has {len(value)} items, fewer than {lo}"))
        if isinstance(hi, int) and len(value) > hi:
            errs.append((ptr, f"has {len(value)} items, more than {hi}"))
        if schema.get("uniqueItems") is True:
            for i in range(1, len(value)):
                if any(_equal(value[i], value[j]) for j in range(i)):
                    errs.append(
                        (_pointer(ptr, i), f"{_show(value[i])} is a duplicate (uniqueItems)")
                    )
                    break
        start = 0
        prefix = schema.get("prefixItems") if self.version31 else None
        if isinstance(prefix, list):
            for i, (item_schema, item) in enumerate(zip(prefix, value)):
                self._check(item_schema, item, _pointer(ptr, i), errs, depth + 1, request)
            start = len(prefix)
        items = schema.get("items")
        if isinstance(items, (dict, bool)):
            for i in range(start, len(value)):
                if len(errs) >= MAX_ERRORS:
                    return
                self._check(items, value[i], _pointer(ptr, i), errs, depth + 1, request)

    def _object(
        self,
        schema: dict[str, Any],
        value: dict[str, Any],
        ptr: str,
        errs: list[tuple[str, str]],
        depth: int,
        request: bool,
    ) -> None:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        if isinstance(required, list):
            skip = "readOnly" if request else "writeOnly"
            for name in required:
                if name not in value:
                    if isinstance(name, str) and self._flag(props.get(name), skip):
                        continue
                    errs.append((ptr, f"required property {_show(name)} is missing"))
        lo, hi = schema.get("minProperties"), schema.get("maxProperties")
        if isinstance(lo, int) and len(value) < lo:
            errs.append((ptr, f"has {len(value)} properties, fewer than {lo}"))
        if isinstance(hi, int) and len(value) > hi:
            errs.append((ptr, f"has {len(value)} properties, more than {hi}"))
        patterns = schema.get("patternProperties")
        patterns = patterns if isinstance(patterns, dict) else {}
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if len(errs) >= MAX_ERRORS:
                return
            where = _pointer(ptr, key)
            known = False
            if key in props:
                known = True
                self._check(props[key], item, where, errs, depth + 1, request)
            for pattern, sub in patterns.items():
                if self.pattern(pattern).search(key):
                    known = True
                    self._check(sub, item, where, errs, depth + 1, request)
            if known:
                continue
            if extra is False:
                errs.append(
                    (where, f"property {_show(key)} is not allowed (additionalProperties: false)")
                )
            elif isinstance(extra, dict):
                self._check(extra, item, where, errs, depth + 1, request)

    def _flag(self, schema: Any, name: str) -> bool:
        node = self.deref(schema)
        return isinstance(node, dict) and node.get(name) is True

    def _combinators(
        self,
        schema: dict[str, Any],
        inst: Any,
        ptr: str,
        errs: list[tuple[str, str]],
        depth: int,
        request: bool,
    ) -> None:
        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            for sub in all_of:
                self._check(sub, inst, ptr, errs, depth + 1, request)
        any_of = schema.get("anyOf")
        if isinstance(any_of, list) and any_of:
            failures = []
            for sub in any_of:
                sub_errs: list[tuple[str, str]] = []
                self._check(sub, inst, ptr, sub_errs, depth + 1, request)
                if not sub_errs:
                    break
                failures.append(sub_errs)
            else:
                closest = min(failures, key=len)[0]
                errs.append(
                    (
                        ptr,
                        f"matches none of the {len(any_of)} anyOf alternatives (closest: {closest[0]}: {closest[1]})",
                    )
                )
        one_of = schema.get("oneOf")
        if isinstance(one_of, list) and one_of:
            passing = 0
            failures = []
            for sub in one_of:
                sub_errs = []
                self._check(sub, inst, ptr, sub_errs, depth + 1, request)
                if sub_errs:
                    failures.append(sub_errs)
                else:
                    passing += 1
            if passing == 0:
                closest = min(failures, key=len)[0]
                errs.append(
                    (
                        ptr,
                        f"matches none of the {len(one_of)} oneOf alternatives (closest: {closest[0]}: {closest[1]})",
                    )
                )
            elif passing > 1:
                errs.append(
                    (ptr, f"matches {passing} of the oneOf alternatives, exactly one is required")
                )
        negated = schema.get("not")
        if isinstance(negated, (dict, bool)):
            sub_errs = []
            self._check(negated, inst, ptr, sub_errs, depth + 1, request)
            if not sub_errs:
                errs.append((ptr, "matches the schema under 'not'"))

    # -- parameters: strings to typed values ---------------------------------------------------

    def types_of(self, schema: Any, depth: int = 0) -> list[str]:
        """The JSON types a schema admits, looking through $ref and oneOf/anyOf/allOf."""
        node = self.deref(schema)
        if not isinstance(node, dict) or depth > 8:
            return []
        declared = node.get("type")
        if isinstance(declared, str):
            return [declared]
        if isinstance(declared, list):
            return [t for t in declared if isinstance(t, str)]
        found: list[str] = []
        for key in ("allOf", "oneOf", "anyOf"):
            subs = node.get(key)
            if isinstance(subs, list):
                for sub in subs:
                    for t in self.types_of(sub, depth + 1):
                        if t not in found:
                            found.append(t)
        if not found and isinstance(node.get("enum"), list):
            for value in node["enum"]:
                t = _json_type(value)
                if t not in found:
                    found.append(t)
        return found

    def coerce(self, text: str, schema: Any) -> Any:
        """The value of a parameter string as the schema's type (unchanged when it is not one)."""
        types = self.types_of(schema)
        if "string" in types or not types:
            return text
        for t in types:
            if t == "integer" and _INTEGER.match(text):
                return int(text)
            if t == "number" and _NUMBER.match(text):
                number = float(text)
                return int(number) if _INTEGER.match(text) else number
            if t == "boolean" and text in ("true", "false"):
                return text == "true"
            if t == "null" and text in ("", "null"):
                return None
        return text

    def item_schema(self, schema: Any) -> Any:
        node = self.deref(schema)
        if isinstance(node, dict):
            if isinstance(node.get("items"), dict):
                return node["items"]
            for key in ("allOf", "oneOf", "anyOf"):
                for sub in node.get(key) or []:
                    found = self.item_schema(sub)
                    if found is not None:
                        return found
        return None

    def property_schema(self, schema: Any, name: str) -> Any:
        node = self.deref(schema)
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and name in props:
                return props[name]
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                return extra
            for key in ("allOf", "oneOf", "anyOf"):
                for sub in node.get(key) or []:
                    found = self.property_schema(sub, name)
                    if found is not None:
                        return found
        return None

    def property_names(self, schema: Any) -> list[str]:
        node = self.deref(schema)
        names: list[str] = []
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.extend(props)
            for key in ("allOf", "oneOf", "anyOf"):
                for sub in node.get(key) or []:
                    names.extend(n for n in self.property_names(sub) if n not in names)
        return names


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?\Z")


# -- the document ----------------------------------------------------------------------------


class Parameter:
    """A parameter of an operation (after ``$ref`` resolution and defaults)."""

    __slots__ = (
        "allow_empty",
        "content_schema",
        "explode",
        "json_content",
        "location",
        "lookup",
        "name",
        "required",
        "schema",
        "style",
    )

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        name, location = raw.get("name"), raw.get("in")
        if not isinstance(name, str) or location not in ("path", "query", "header", "cookie"):
            raise SpecError(
                f"{where}: a parameter needs a 'name' and 'in' (path, query, header or cookie)"
            )
        self.name = name
        self.location = location
        self.lookup = name.lower() if location == "header" else name
        self.required = bool(raw.get("required")) or location == "path"
        self.schema = raw.get("schema")
        default_style = {"query": "form", "cookie": "form", "path": "simple", "header": "simple"}[
            location
        ]
        self.style = raw.get("style") or default_style
        explode = raw.get("explode")
        self.explode = bool(explode) if explode is not None else self.style == "form"
        self.allow_empty = bool(raw.get("allowEmptyValue"))
        self.content_schema: Any = None
        self.json_content = False
        content = raw.get("content")
        if self.schema is None and isinstance(content, dict) and content:
            media_type, media = next(iter(content.items()))
            self.json_content = _is_json_media(media_type)
            self.content_schema = media.get("schema") if isinstance(media, dict) else None


def _is_json_media(media_type: str) -> bool:
    mt = media_type.split(";")[0].strip().lower()
    return mt == "application/json" or mt.endswith("+json")


class Operation:
    """One method of one path template."""

    __slots__ = ("method", "operation_id", "parameters", "request_body", "responses", "template")

    def __init__(
        self,
        method: str,
        template: str,
        operation_id: str,
        parameters: list[Parameter],
        request_body: Any,
        responses: Any,
    ) -> None:
        self.method = method
        self.template = template
        self.operation_id = operation_id
        self.parameters = parameters
        self.request_body = request_body
        #: documented status keys, upper-cased (``"200"``, ``"2XX"``, ``"DEFAULT"``); None: no responses object
        self.responses = (
            None if not isinstance(responses, dict) else {str(k).upper() for k in responses}
        )

    def documents_status(self, status: str | int) -> bool:
        """Whether ``status`` is declared: the exact code, its ``NXX`` range, or ``default``."""
        if self.responses is None:
            return True
        code = str(status).strip()
        return (
            code in self.responses
            or f"{code[:1]}XX" in self.responses
            or "DEFAULT" in self.responses
        )

    def __repr__(self) -> str:
        return f"Operation({self.method.upper()} {self.template})"


class _PathTemplate:
    __slots__ = ("item", "names", "regex", "sort_key", "template")

    def __init__(self, template: str, item: Any) -> None:
        self.template = template
        self.item = item
        parts = re.split(r"\{([^{}/]+)\}", template)
        pattern = ""
        self.names: list[str] = []
        for i, part in enumerate(parts):
            if i % 2:
                self.names.append(part)
                pattern += "([^/]+)"
            else:
                pattern += re.escape(part)
        self.regex = re.compile(pattern + r"\Z")
        # Concrete paths first, then templates with literal segments further left.
        self.sort_key = tuple(1 if "{" in seg else 0 for seg in template.split("/"))


class Spec:
    """A checked OpenAPI document, ready to match and validate requests."""

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise SpecError(
                f"spec must be an object (an OpenAPI document), got {_json_type(document)}"
            )
        if "swagger" in document:
            raise SpecError(
                "Swagger 2.0 documents are not supported: convert to OpenAPI 3.0 or 3.1"
            )
        version = document.get("openapi")
        if version is None:
            raise SpecError("spec has no 'openapi' field (not an OpenAPI 3 document)")
        version = str(version)
        if not version.startswith(("3.0", "3.1")):
            raise SpecError(f"openapi {version!r} is not supported (3.0.x or 3.1.x)")
        paths = document.get("paths")
        if not isinstance(paths, dict):
            raise SpecError(
                "spec has no 'paths' object" if paths is None else "'paths' must be an object"
            )
        self.document = document
        self.version = version
        self.validator = SchemaValidator(document, version31=version.startswith("3.1"))
        info = document.get("info")
        self.title = str(info.get("title", "")) if isinstance(info, dict) else ""
        self._check_references()
        self.bases = self._base_paths(document.get("servers"))
        self.exact: dict[str, _PathTemplate] = {}
        templated: list[_PathTemplate] = []
        self.operations: list[Operation] = []
        for template, item in paths.items():
            where = f"paths {template!r}"
            if not isinstance(template, str) or not template.startswith("/"):
                raise SpecError(f"{where}: a path must start with '/'")
            item = self.validator.deref(item)
            if not isinstance(item, dict):
                raise SpecError(f"{where}: a path item must be an object")
            compiled = _PathTemplate(template, item)
            compiled.item = self._operations(template, item)
            if compiled.names:
                templated.append(compiled)
            else:
                self.exact[template] = compiled
        templated.sort(key=lambda t: t.sort_key)
        self.templated = templated

    # -- load-time checks ----------------------------------------------------------------

    def _check_references(self) -> None:
        """Every $ref resolves; no $ref chain loops; every pattern compiles."""
        literal_keys = ("example", "examples", "enum", "const", "default")
        stack: list[tuple[Any, str]] = [(self.document, "#")]
        refs: list[tuple[str, str]] = []
        while stack:
            node, where = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if ref is not None:
                    if not isinstance(ref, str):
                        raise SpecError(f"$ref at {where} must be a string")
                    refs.append((ref, where))
                pattern = node.get("pattern")
                if isinstance(pattern, str):
                    try:
                        self.validator.pattern(pattern)
                    except (re.error, RecursionError, OverflowError) as exc:
                        raise SpecError(f"bad pattern {pattern!r} at {where}: {exc}") from None
                for key, value in node.items():
                    if isinstance(value, (dict, list)) and key not in literal_keys:
                        stack.append((value, _pointer(where, key)))
                    elif key == "examples" and isinstance(value, dict):
                        # Media type examples are Example Objects (maybe $refs); schema examples are values.
                        for name, example in value.items():
                            if isinstance(example, dict) and isinstance(example.get("$ref"), str):
                                refs.append((example["$ref"], _pointer(_pointer(where, key), name)))
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    if isinstance(value, (dict, list)):
                        stack.append((value, _pointer(where, i)))
        for ref, where in refs:
            try:
                self.validator.resolve(ref)
            except SpecError as exc:
                raise SpecError(f"{exc} (at {where})") from None
        for ref, where in refs:
            chain = [ref]
            node = self.validator.resolve(ref)
            while isinstance(node, dict) and isinstance(node.get("$ref"), str):
                nxt = node["$ref"]
                if nxt in chain:
                    raise SpecError(f"$ref cycle at {where}: {' -> '.join(chain + [nxt])}")
                chain.append(nxt)
                node = self.validator.resolve(nxt)

    @staticmethod
    def _base_paths(servers: Any) -> list[Any]:
        """Regexes of the base paths of ``servers`` (longest first); ``[None]``: no base path."""
        bases: list[tuple[int, Any]] = []
        plain = False
        for server in servers if isinstance(servers, list) else []:
            url = server.get("url") if isinstance(server, dict) else None
            if not isinstance(url, str):
                continue
            path = re.sub(r"^[^/]*//[^/]*", "", url)  # scheme and host, if any
            path = path.split("?")[0].rstrip("/")
            if not path:
                plain = True
                continue
            variables = server.get("variables")
            variables = variables if isinstance(variables, dict) else {}
            pattern = ""
            for i, part in enumerate(re.split(r"\{([^{}]+)\}", path)):
                if i % 2 == 0:
                    pattern += re.escape(part)
                    continue
                var = variables.get(part)
                enum = var.get("enum") if isinstance(var, dict) else None
                if isinstance(enum, list) and enum:
                    pattern += "(?:" + "|".join(re.escape(str(e)) for e in enum) + ")"
                else:
                    pattern += "[^/]*"
            bases.append((len(path), re.compile(pattern + r"(?=/|\Z)")))
        if not bases or plain:
            return [None] + [b for _, b in sorted(bases, key=lambda b: -b[0])]
        return [b for _, b in sorted(bases, key=lambda b: -b[0])]

    def _parameter(self, raw: Any, where: str) -> Parameter:
        node = self.validator.deref(raw)
        if not isinstance(node, dict):
            raise SpecError(f"{where}: a parameter must be an object")
        return Parameter(node, where)

    def _operations(self, template: str, item: dict[str, Any]) -> dict[str, Operation]:
        common = [
            self._parameter(p, f"paths {template!r} parameters")
            for p in item.get("parameters") or []
        ]
        ops: dict[str, Operation] = {}
        for method in METHODS:
            raw = item.get(method)
            if raw is None:
                continue
            where = f"paths {template!r} {method}"
            if not isinstance(raw, dict):
                raise SpecError(f"{where}: an operation must be an object")
            own = [self._parameter(p, f"{where} parameters") for p in raw.get("parameters") or []]
            merged = {(p.location, p.lookup): p for p in common}
            merged.update({(p.location, p.lookup): p for p in own})
            params = [
                p
                for p in merged.values()
                if not (
                    p.location == "header"
                    and p.lookup in ("accept", "content-type", "authorization")
                )
            ]
            body = self.validator.deref(raw.get("requestBody"))
            if body is not None and not isinstance(body, dict):
                raise SpecError(f"{where}: requestBody must be an object")
            op = Operation(
                method,
                template,
                str(raw.get("operationId") or ""),
                params,
                body,
                raw.get("responses"),
            )
            ops[method] = op
            self.operations.append(op)
        return ops

    # -- requests ------------------------------------------------------------------------------

    def match(
        self, method: str, raw_path: str
    ) -> tuple[Operation | None, dict[str, str], list[Violation]]:
        """The operation of ``method`` + ``raw_path`` (without the query), its raw path values, or violations."""
        path = raw_path.split("#", 1)[0]
        found: tuple[_PathTemplate, dict[str, str]] | None = None
        for base in self.bases:
            if base is None:
                rest = path
            else:
                m = base.match(path)
                if m is None:
                    continue
                rest = path[m.end() :] or "/"
            found = self._find_template(rest)
            if found is not None:
                break
        if found is None:
            return (
                None,
                {},
                [
                    Violation(
                        "unknown_path",
                        "path",
                        f"no path of the specification matches {_show(path, 100)}",
                    )
                ],
            )
        template, values = found
        ops: dict[str, Operation] = template.item
        op = ops.get(method.lower())
        if op is None:
            documented = ", ".join(m.upper() for m in ops) or "none"
            return (
                None,
                {},
                [
                    Violation(
                        "unknown_method",
                        "request",
                        f"method {method.upper()} is not documented for {template.template} (documented: {documented})",
                    )
                ],
            )
        return op, values, []

    def _find_template(self, path: str) -> tuple[_PathTemplate, dict[str, str]] | None:
        exact = self.exact.get(path)
        if exact is not None:
            return exact, {}
        for template in self.templated:
            m = template.regex.match(path)
            if m is not None:
                return template, dict(zip(template.names, m.groups()))
        return None

    def check_parameters(
        self, op: Operation, path_values: dict[str, str], query: str, headers: dict[str, list[str]]
    ) -> list[Violation]:
        """Violations of the path, query, header and cookie parameters of a request.

        ``headers``: lower-cased names -> values; ``query``: the raw query string.
        """
        out: list[Violation] = []
        query_values: dict[str, list[str]] | None = None
        cookies: dict[str, list[str]] | None = None
        for param in op.parameters:
            if param.location == "path":
                if param.name not in path_values:
                    continue  # declared but not in this template
                values = [unquote(path_values[param.name])]
            elif param.location == "query":
                if query_values is None:
                    query_values = parse_query(query)
                values = self._query_values(param, query_values)
            elif param.location == "header":
                values = headers.get(param.lookup) or []
            else:
                if cookies is None:
                    cookies = _parse_cookies(headers.get("cookie") or [])
                values = cookies.get(param.name) or []
            if not values:
                if param.required:
                    out.append(
                        Violation(
                            "bad_parameter",
                            param.location,
                            f"required {param.location} parameter is missing",
                            param.name,
                        )
                    )
                continue
            if param.allow_empty and values == [""]:
                continue
            out.extend(self._check_parameter(param, values))
        return out

    def _query_values(self, param: Parameter, query: dict[str, list[str]]) -> list[str]:
        if param.style == "deepObject":
            prefix = param.name + "["
            found = [k for k in query if k.startswith(prefix) and k.endswith("]")]
            return (
                ["&".join(f"{k[len(prefix) : -1]}={v}" for k in found for v in query[k])]
                if found
                else []
            )
        values = query.get(param.name) or []
        if (
            not values
            and param.style == "form"
            and param.explode
            and "object" in self.validator.types_of(param.schema)
        ):
            names = [n for n in self.validator.property_names(param.schema) if n in query]
            if names:
                return ["&".join(f"{n}={query[n][0]}" for n in names)]
        return values

    def _check_parameter(self, param: Parameter, values: list[str]) -> list[Violation]:
        v = self.validator
        if param.schema is None:
            if param.content_schema is None or not param.json_content:
                return []
            try:
                value = json.loads(values[0], parse_constant=_no_constant)
            except ValueError as exc:
                return [
                    Violation("bad_parameter", param.location, f"not valid JSON: {exc}", param.name)
                ]
            schema = param.content_schema
        else:
            schema = param.schema
            value = self._deserialize(param, values)
        return [
            Violation(
                "bad_parameter",
                param.location,
                message,
                param.name,
                pointer if pointer != "#" else "",
            )
            for pointer, message in v.validate(schema, value, "#", request=True)
        ]

    def _deserialize(self, param: Parameter, values: list[str]) -> Any:
        v = self.validator
        types = v.types_of(param.schema)
        style, explode = param.style, param.explode
        if param.location == "header":
            values = [", ".join(values)] if len(values) > 1 else values
        raw = values[0]
        if param.location == "path":
            if style == "label" and raw.startswith("."):
                raw = raw[1:]
            elif style == "matrix" and raw.startswith(";"):
                raw = raw[1:]
                if raw.startswith(param.name + "="):
                    raw = raw[len(param.name) + 1 :]
        if "array" in types:
            items = v.item_schema(param.schema)
            if param.location == "query" and style == "form" and explode:
                parts = values
            elif style == "spaceDelimited":
                parts = raw.split(" ")
            elif style == "pipeDelimited":
                parts = raw.split("|")
            elif style == "label" and explode:
                parts = raw.split(".")
            elif style == "matrix" and explode:
                parts = [p.partition("=")[2] for p in raw.split(";")]
            else:
                parts = raw.split(",")
            if param.location == "header":
                parts = [p.strip() for p in parts]
            if parts is not values and not raw:
                return []  # an empty delimited list
            return [v.coerce(p, items) for p in parts]
        if "object" in types and "string" not in types:
            obj: dict[str, Any] = {}
            if param.style == "deepObject" or (
                param.location == "query" and style == "form" and explode
            ):
                pairs = [p.partition("=") for p in raw.split("&") if p]
                for key, _, val in pairs:
                    obj[key] = val
            elif explode:
                for piece in raw.split(","):
                    key, _, val = piece.partition("=")
                    obj[key.strip()] = val.strip()
            else:
                pieces = raw.split(",")
                for i in range(0, len(pieces) - 1, 2):
                    obj[pieces[i]] = pieces[i + 1]
            return {
                key: v.coerce(val, v.property_schema(param.schema, key)) for key, val in obj.items()
            }
        if param.location == "header":
            raw = raw.strip()
        return v.coerce(raw, param.schema)

    # -- request bodies ----------------------------------------------------------------------

    def body_plan(
        self, op: Operation, content_type: str | None, has_body: bool
    ) -> tuple[list[Violation], Any]:
        """What to do about the body, decided from the request headers.

        Returns ``(violations, media)``: ``media`` is the media type object to
        validate the JSON body against once it is complete (None: nothing to
        validate). A missing required body, or a content-type the operation
        does not accept, is a violation right away.
        """
        body = op.request_body
        if body is None:
            return [], None
        if not has_body:
            if body.get("required") is True:
                return [Violation("bad_body", "body", "required, but the request has none")], None
            return [], None
        content = body.get("content")
        if not isinstance(content, dict) or not content:
            return [], None
        media_type = (content_type or "").split(";")[0].strip().lower()
        media = _match_media(media_type, content)
        if media is None:
            accepted = ", ".join(content)
            if not media_type:
                return [
                    Violation("bad_body", "body", f"no content-type (accepted: {accepted})")
                ], None
            return [
                Violation(
                    "bad_body",
                    "body",
                    f"content-type {media_type!r} is not accepted (accepted: {accepted})",
                )
            ], None
        key, media_object = media
        if not _is_json_media(key if key != "*/*" and not key.endswith("/*") else media_type):
            return [], None
        if not isinstance(media_object, dict) or media_object.get("schema") is None:
            return [], {"schema": True, "required": body.get("required") is True}
        return [], {"schema": media_object["schema"], "required": body.get("required") is True}

    def check_body(self, plan: Any, data: bytes) -> list[Violation]:
        """Violations of a complete JSON body against the plan of :meth:`body_plan`."""
        if not data.strip():
            if plan.get("required"):
                return [Violation("bad_body", "body", "required, but the request has none")]
            return []
        try:
            value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            return [Violation("bad_body", "body", f"not UTF-8 ({exc.reason} at byte {exc.start})")]
        except ValueError as exc:
            return [Violation("bad_body", "body", f"not valid JSON: {exc}")]
        except RecursionError:
            return [Violation("bad_body", "body", "nested too deeply to parse")]
        try:
            errors = self.validator.validate(plan["schema"], value, "#", request=True)
        except RecursionError:
            errors = [("#", "nested too deeply to validate")]
        return [
            Violation("bad_body", "body", message, pointer=pointer) for pointer, message in errors
        ]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _match_media(media_type: str, content: dict[str, Any]) -> tuple[str, Any] | None:
    """The entry of ``content`` for ``media_type``: exact, then ``type/*``, then ``*/*``."""
    lowered = {str(k).split(";")[0].strip().lower(): (k, v) for k, v in content.items()}
    if media_type in lowered:
        return lowered[media_type][0].lower(), lowered[media_type][1]
    major = media_type.split("/")[0]
    for key in (f"{major}/*", "*/*"):
        if media_type and key in lowered:
            return key, lowered[key][1]
    return None


def _parse_cookies(headers: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for header in headers:
        for piece in header.split(";"):
            name, sep, value = piece.strip().partition("=")
            if sep:
                out.setdefault(name, []).append(value)
    return out
