"""Render docs/api.md from the docstrings of the public API.

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

Everything comes from the live objects (``inspect``): signatures, docstrings,
enum members. Every name in ``proxywasm.__all__`` and
``proxywasm.testing.__all__`` is documented; a name the sections below do not
place lands in "Other names", so nothing new goes missing silently.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import proxywasm
import proxywasm.testing
from proxywasm import hostcalls, shared
from proxywasm.testing import pytest_plugin

OUT = Path(__file__).resolve().parent / "api.md"

# (title, intro, module, names) in the order a filter author meets them.
SECTIONS: list[tuple[str, str, Any, list[str]]] = [
    (
        "Registering the filter",
        "A filter module defines a `RootContext` subclass and registers it at import time.",
        proxywasm,
        ["set_root_context", "root_context", "RootFactory"],
    ),
    (
        "Contexts",
        (
            "Subclass these and override the callbacks (`on_*`) you need; every other method "
            "is a host call you can make from inside a callback."
        ),
        proxywasm,
        ["RootContext", "HttpContext", "StreamContext", "BaseContext"],
    ),
    (
        "Requests and responses",
        (
            "`self.request` and `self.response` of an `HttpContext`: live, case-insensitive "
            "header and trailer mappings and the body buffer. Nothing is fetched from the host "
            "until used; the Rust-named methods share their implementation."
        ),
        proxywasm,
        ["Request", "Response", "HeaderMap", "FrozenHeaders", "Body"],
    ),
    (
        "HTTP callouts with await",
        (
            "In an `async def` callback, `await self.http_call(...)` pauses the stream until the "
            "answer arrives and resumes it when the callback returns."
        ),
        proxywasm,
        ["HttpCall", "HttpResponse", "gather"],
    ),
    (
        "Metrics",
        (
            "Define metrics once, at import or in `on_vm_start`; they bind to the host lazily, "
            "on first use in each VM."
        ),
        proxywasm,
        ["Counter", "Gauge", "Histogram"],
    ),
    (
        "Logging",
        (
            "Module-level twins of `self.log(...)`, usable where no context is at hand "
            "(inside a callback)."
        ),
        proxywasm,
        [
            "log",
            "log_trace",
            "log_debug",
            "log_info",
            "log_warn",
            "log_error",
            "log_critical",
            "ProxyLogHandler",
        ],
    ),
    (
        "Module-level host calls",
        (
            "The same host calls as the context methods, for code that has no context at hand. "
            "They act on the host's current (effective) context."
        ),
        proxywasm,
        [
            "get_property",
            "set_property",
            "get_shared_data",
            "set_shared_data",
            "register_shared_queue",
            "resolve_shared_queue",
            "enqueue_shared_queue",
            "dequeue_shared_queue",
            "get_current_time_nanoseconds",
            "get_log_level",
            "call_foreign_function",
            "set_tick_period_ms",
        ],
    ),
    (
        "Enums",
        "The ABI's numeric types (values match `abi-stubs/abi.toml`).",
        proxywasm,
        [
            "Action",
            "LogLevel",
            "Status",
            "BufferType",
            "MapType",
            "MetricType",
            "PeerType",
            "StreamType",
        ],
    ),
    (
        "Errors",
        "",
        proxywasm,
        [
            "ProxyWasmError",
            "ConfigError",
            "HostCallError",
            "CasMismatchError",
            "NotInCallbackError",
        ],
    ),
    (
        "proxywasm.shared: shared data across workers",
        (
            "Envoy ignores the compare-and-swap of a key that does not exist yet: create known keys "
            "in `on_configure`, and keys made on the fly under a lock, with these."
        ),
        shared,
        ["ensure_shared_data", "update_shared_data", "SharedDataContendedError", "LOCK_STALE_NS"],
    ),
    (
        "proxywasm.hostcalls (low level)",
        (
            "One function per ABI host function, bytes in and out, statuses turned into values or "
            "`HostCallError`. The context methods are built on these; filters rarely need them."
        ),
        hostcalls,
        [n for n in hostcalls.__all__ if n not in ("Headers", "HeaderValue", "PropertyPath")],
    ),
    (
        "proxywasm.testing: the null runtime",
        "Never frozen into a compiled module.",
        proxywasm.testing,
        ["HostEmulator", "HttpExchange", "load_filter", "filter_roots"],
    ),
    (
        "proxywasm.testing: host records",
        "What the emulator's getters return.",
        proxywasm.testing,
        [
            "LocalResponse",
            "HttpCallAttributes",
            "GrpcCallAttributes",
            "HttpStream",
            "TcpConnection",
            "Metric",
            "SharedQueue",
        ],
    ),
    (
        "proxywasm.testing: the ABI host",
        "",
        proxywasm.testing,
        ["AbiHost", "encode_property"],
    ),
    (
        "pytest plugin",
        "Installed with the package (entry point `pytest11: proxywasm`); no import needed in tests.",
        pytest_plugin,
        ["proxywasm_host", "HostFactory"],
    ),
]

# Aliases documented by hand: ``inspect`` cannot see ``#:`` comments.
ALIASES: dict[str, str] = {
    "RootFactory": "A `RootContext` subclass, or any callable `(context_id: int) -> RootContext`.",
}


def get(module: Any, name: str) -> Any:
    """``getattr``, working around ``proxywasm.log`` (the function) shadowing the submodule.

    ``proxywasm.ProxyLogHandler`` is resolved lazily by ``proxywasm.__getattr__``
    through ``proxywasm.log``; fall back to the submodule itself if that fails.
    """
    try:
        return getattr(module, name)
    except AttributeError:
        if module is proxywasm and name == "ProxyLogHandler":
            return getattr(sys.modules["proxywasm.log"], name)
        raise


def qualified(module: Any, name: str) -> str:
    return f"{module.__name__}.{name}"


def doc(obj: Any) -> str:
    if inspect.isfunction(obj) or isinstance(obj, property):
        text = inspect.cleandoc(obj.__doc__ or "")  # no docstrings inherited from object / logging
    else:
        text = inspect.getdoc(obj) or ""
    return rst_to_md(text)


def rst_to_md(text: str) -> str:
    """The few reST idioms the docstrings use, as Markdown."""
    import re

    text = text.replace("``", "`")
    text = re.sub(r":(?:class|meth|func|data|attr|mod|exc):`~?([^`]+)`", r"`\1`", text)
    # doctest blocks -> fenced code
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        is_code = line.startswith((">>> ", "... ")) or line in (">>>", "...")
        if is_code and not in_code:
            out.append("```python")
            in_code = True
        elif not is_code and in_code:
            out.append("```")
            in_code = False
        if is_code:
            line = line[4:]
            line = re.sub(r"\s+# doctest:.*$", "", line)
        out.append(line)
    if in_code:
        out.append("```")
    return "\n".join(out)


class _Raw:
    """An annotation shown exactly as written in the source (they are strings here)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def signature(obj: Any, name: str, drop_self: bool = False) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = list(sig.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    empty = inspect.Parameter.empty

    def raw(a: Any) -> Any:
        return _Raw(a) if isinstance(a, str) else a

    params = [p for p in params if not p.name.startswith("_")]  # private knobs stay undocumented
    params = [
        p.replace(annotation=raw(p.annotation)) if p.annotation is not empty else p for p in params
    ]
    params = [
        p.replace(default=_Raw(f"{type(p.default).__name__}.{p.default.name}"))
        if isinstance(p.default, enum.Enum)
        else p
        for p in params
    ]
    ret = sig.return_annotation
    sig = sig.replace(parameters=params, return_annotation=raw(ret) if ret is not empty else ret)
    if name[:1].isupper():  # a constructor: no return annotation
        sig = sig.replace(return_annotation=empty)
    return f"{name}{sig}"


def public_members(cls: type, documented: set[type]) -> Iterable[tuple[str, Any, type]]:
    """Public methods/properties of ``cls``, including those of private or undocumented bases.

    Members defined on a documented public base (another class of this page)
    are left to that class's entry.
    """
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        if klass is not cls and klass in documented:
            continue
        if klass.__module__.split(".")[0] not in ("proxywasm",):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name not in ("__init__", "__call__") or name in seen:
                continue
            seen.add(name)
            if isinstance(member, (staticmethod, classmethod)):
                yield name, member.__func__, klass
            elif inspect.isfunction(member) or isinstance(member, property):
                yield name, member, klass
            elif inspect.ismemberdescriptor(member) and inspect.getdoc(member):
                yield name, member, klass  # a documented __slots__ entry


def render_function(
    name: str, fn: Any, level: str = "###", prefix: str = "", method: bool = False
) -> list[str]:
    lines = [f"{level} `{prefix}{signature(fn, name, drop_self=method)}`", ""]
    d = doc(fn)
    if d:
        lines += [d, ""]
    return lines


def render_enum(name: str, cls: type[enum.Enum]) -> list[str]:
    lines = [f"### `{name}`", "", doc(cls), ""]
    lines.append(" | ".join(f"`{m.name}` = {m.value}" for m in cls))
    lines.append("")
    return lines


def render_class(mod: Any, name: str, cls: type, documented: set[type]) -> list[str]:
    public_base = next((b for b in cls.__mro__[1:] if not b.__name__.startswith("_")), object)
    bases = [] if public_base is object else [public_base.__name__]
    head = f"### class `{qualified(mod, name)}`" + (f" ({', '.join(bases)})" if bases else "")
    lines = [head, ""]
    d = doc(cls)
    if d:
        lines += [d, ""]
    if issubclass(cls, BaseException):
        return lines
    if hasattr(cls, "__dataclass_fields__"):
        lines.append("Fields: " + ", ".join(f"`{f}`" for f in cls.__dataclass_fields__))
        lines.append("")
        return lines
    inherited = [b.__name__ for b in cls.__mro__[1:] if b in documented]
    if inherited:
        lines += [f"Also has every member of {', '.join(f'`{b}`' for b in inherited)}.", ""]
    abi: list[str] = []
    class_attrs = [
        (k, v)
        for k, v in vars(cls).items()
        if not k.startswith("_") and isinstance(v, (bool, int, str)) and not callable(v)
    ]
    for k, v in class_attrs:
        lines += [f"- `{name}.{k} = {v!r}` (class attribute)", ""]
    members = sorted(
        public_members(cls, documented), key=lambda m: m[0] != "__init__"
    )  # constructor first
    for member_name, member, _owner in members:
        if member_name.startswith("proxy_") and cls.__name__ in ("AbiHost", "HostEmulator"):
            abi.append(member_name)
            continue
        if isinstance(member, property) or inspect.ismemberdescriptor(member):
            kind = "property" if isinstance(member, property) else "attribute"
            lines += [f"#### `{member_name}` ({kind})", ""]
            d = doc(member)
            if d:
                lines += [d, ""]
            continue
        if member_name == "__init__":
            lines += render_function(name, member, "####", method=True)
            continue
        if member_name == "__call__":
            # HostFactory is met as the `proxywasm_host` fixture: show the call as users write it.
            call_name = "proxywasm_host" if name == "HostFactory" else f"{name.lower()}_instance"
            lines += render_function(call_name, member, "####", method=True)
            continue
        lines += render_function(member_name, member, "####", method=True)
    if abi:
        lines += [
            "#### ABI host functions",
            "",
            "One method per `env.proxy_*` host import of ABI v0.2.1, with the Python-level "
            "signature of `_proxywasm` (`bytes` for pointer/size pairs, `(status, *outputs)` "
            "results): " + ", ".join(f"`{a}`" for a in abi) + ".",
            "",
        ]
    return lines


def render_entry(mod: Any, name: str, documented: set[type]) -> list[str]:
    obj = get(mod, name)
    if name in ALIASES:
        return [f"### `{qualified(mod, name)}`", "", ALIASES[name], ""]
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        return render_enum(f"{qualified(mod, name)}", obj)
    if isinstance(obj, type):
        return render_class(mod, name, obj, documented)
    if name == "proxywasm_host":  # a pytest fixture: document the function it wraps
        wrapped = getattr(obj, "__wrapped__", None) or getattr(obj, "__pytest_wrapped__", None)
        fn = getattr(wrapped, "obj", wrapped) or obj
        return [f"### fixture `{name}`", "", doc(fn), ""]
    if callable(obj):
        return render_function(name, obj, prefix=f"{mod.__name__}.")
    return [f"### `{qualified(mod, name)}`", "", f"`{obj!r}`", ""]


def render() -> str:
    documented: set[type] = set()
    for _title, _intro, mod, names in SECTIONS:
        for n in names:
            obj = get(mod, n)
            if isinstance(obj, type):
                documented.add(obj)

    lines = [
        "# API reference",
        "",
        "<!-- Generated by docs/gen_api.py from the docstrings; do not edit by hand. -->",
        "",
        (
            f"proxy-wasm-python {proxywasm.__version__}. See the [tutorial](tutorial.md) for a guided "
            "tour and [how it works](how-it-works.md) for the layers underneath."
        ),
        "",
        doc(proxywasm),
        "",
        "## Contents",
        "",
    ]
    for title, _intro, _mod, _names in SECTIONS:
        anchor = "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")
        lines.append(f"- [{title}](#{anchor})")
    lines.append("")

    placed: dict[Any, set[str]] = {}
    for title, intro, mod, names in SECTIONS:
        lines += [f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        for n in names:
            placed.setdefault(mod, set()).add(n)
            lines += render_entry(mod, n, documented)

    other: list[str] = []
    for mod in (proxywasm, proxywasm.testing):
        for n in mod.__all__:
            if n in placed.get(mod, set()) or isinstance(get(mod, n), types.ModuleType):
                continue
            other += render_entry(mod, n, documented)
    if other:
        lines += ["## Other names", ""] + other

    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
