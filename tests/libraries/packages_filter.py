"""One filter exercising popular pure-Python packages (tests/test_libraries.py).

As ``stdlib_filter.py``: each ``@check`` imports its package itself (a
package that cannot be frozen is skipped by the build, and the test builds
it alone for the error) and returns plain values, logged as ``check NAME
VALUE`` on a request, natively and compiled.
"""

from collections.abc import Callable

import proxywasm
from proxywasm import Action, HttpContext, RootContext

CHECKS: dict[str, Callable[[], object]] = {}


def check(name: str) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register a check of the package ``name``."""

    def register(fn: Callable[[], object]) -> Callable[[], object]:
        CHECKS[name] = fn
        return fn

    return register


@check("PyYAML")
def check_yaml() -> object:
    """`yaml.safe_load` of a mapping with lists, anchors and scalars; `safe_dump`."""
    import yaml

    doc = yaml.safe_load(
        "routes:\n"
        "  - &api {prefix: /api, timeout: 1.5, retry: true}\n"
        "  - <<: *api\n"
        "    prefix: /v2\n"
        "limits: [1, 2, null]\n"
        "when: 2024-02-29\n"
    )
    return doc, yaml.safe_dump({"b": [1, "x"], "a": {"c": None}}, sort_keys=True)


@check("PyJWT")
def check_jwt() -> object:
    """HS256 `jwt.encode` / `jwt.decode` (audience checked), a bad signature refused."""
    import jwt

    claims = {"sub": "user-1", "aud": "proxy", "exp": 4_102_444_800, "roles": ["admin"]}
    token = jwt.encode(claims, "secret-key-of-32-bytes-or-more!!", algorithm="HS256")
    decoded = jwt.decode(
        token, "secret-key-of-32-bytes-or-more!!", algorithms=["HS256"], audience="proxy"
    )
    try:
        jwt.decode(
            token, "another-key-of-32-bytes-or-more!", algorithms=["HS256"], audience="proxy"
        )
        refused = "accepted"
    except jwt.InvalidSignatureError as exc:
        refused = str(exc)
    return token, decoded, refused, jwt.get_unverified_header(token)


@check("idna")
def check_idna() -> object:
    """`idna.encode` / `decode` (IDNA 2008, UTS 46 mapping), an invalid label refused."""
    import idna

    try:
        idna.encode("a..b")
        bad = "accepted"
    except idna.IDNAError as exc:
        bad = type(exc).__name__
    return (
        idna.encode("bücher.example"),
        idna.decode("xn--bcher-kva.example"),
        idna.encode("Königsgäßchen.de", uts46=True),
        bad,
    )


@check("python-dateutil")
def check_dateutil() -> object:
    """`dateutil.parser.isoparse` (offsets, fractions, week dates), `parser.parse`."""
    import datetime

    import dateutil.parser

    return (
        dateutil.parser.isoparse("2024-02-29T12:30:45.123+05:30").isoformat(),
        dateutil.parser.isoparse("2024-W09-4").isoformat(),
        dateutil.parser.isoparse("20240229T1230Z").astimezone(datetime.UTC).isoformat(),
        dateutil.parser.parse("Thu, 29 Feb 2024 12:30:00 GMT").isoformat(),
    )


@check("attrs")
def check_attrs() -> object:
    """An `@attrs.define(frozen=True)` class: converter, validator, `evolve`, `asdict`."""
    import attrs

    @attrs.define(frozen=True)
    class Upstream:
        host: str = attrs.field(validator=attrs.validators.instance_of(str))
        port: int = attrs.field(converter=int, default=80)
        tags: list[str] = attrs.Factory(list)

    u = Upstream("backend", "8080")
    try:
        Upstream(42)  # type: ignore[arg-type]
        refused = "accepted"
    except TypeError as exc:
        refused = str(exc).split(" (")[0]
    return repr(u), attrs.asdict(attrs.evolve(u, port=81)), refused, u == Upstream("backend", 8080)


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@check("jsonschema")
def check_jsonschema() -> object:
    """`jsonschema.validate` of a valid and an invalid document."""
    import jsonschema

    jsonschema.validate({"name": "Ada"}, SCHEMA)
    try:
        jsonschema.validate({"age": 3}, SCHEMA)
        return "valid"
    except jsonschema.ValidationError as exc:
        return exc.message


@check("pydantic")
def check_pydantic() -> object:
    """A `pydantic.BaseModel` validating and coercing a document."""
    import pydantic

    class User(pydantic.BaseModel):
        name: str
        age: int = 0

    return User.model_validate({"name": "Ada", "age": "36"}).model_dump()


@check("fastjsonschema")
def check_fastjsonschema() -> object:
    """A `fastjsonschema.compile`d validator: a valid document, three invalid ones."""
    import fastjsonschema

    validate = fastjsonschema.compile(SCHEMA)
    errors = []
    for doc in ({"age": 3}, {"name": "x", "age": -1}, {"name": "x", "extra": 1}):
        try:
            validate(doc)
            errors.append("valid")
        except fastjsonschema.JsonSchemaValueException as exc:
            errors.append(exc.message)
    return validate({"name": "Ada", "age": 36, "email": "ada@example.org"}), errors


def run_checks() -> list[str]:
    """Every check's log line: ``check NAME VALUE``."""
    lines = []
    for name, fn in CHECKS.items():
        try:
            value = repr(fn())
        except Exception as exc:  # noqa: BLE001 -- the failure is the result
            value = f"raised {type(exc).__name__}: {exc}"
        lines.append(f"check {name} {value}")
    return lines


class Checks(HttpContext):
    def on_http_request_headers(self, num_headers: int, end_of_stream: bool) -> Action:
        for line in run_checks():
            proxywasm.log_info(line)
        return Action.CONTINUE


class Root(RootContext):
    def create_http_context(self, context_id: int) -> HttpContext:
        return Checks(context_id, self)


proxywasm.set_root_context(Root)
