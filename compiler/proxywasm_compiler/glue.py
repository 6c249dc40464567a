"""Generate the C glue of a compiled module from the ABI table.

Two halves, both derived from ``abi-stubs/abi.toml`` and never written by hand:

* the built-in module ``_proxywasm``: one ``METH_FASTCALL`` wrapper per
  ``env.proxy_*`` host import, with the Python-level signature of
  ``_proxywasm.pyi`` (bytes for pointer/size pairs, ``(status, *outputs)``
  results). Host-allocated output buffers are copied into ``bytes`` and freed.
* the ``proxy_on_*`` exports: each calls the matching method of
  ``proxywasm.dispatcher.vm``, looked up once (at snapshot time) and invoked
  with vectorcall. The dispatcher holds the exception barrier; the C side is
  the last resort when the dispatcher call itself fails (an exception escaped
  it, or the heap is too full to call it): one fixed error entry through
  ``proxy_log`` from a static buffer, and the stream fails closed from C (an
  HTTP callback sends the 500 with ``proxy_send_local_response`` and returns
  PAUSE; a TCP callback closes the downstream connection). Nothing on that
  path allocates on the heap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_glue"]


def _abi() -> Any:
    import proxywasm_abi  # type: ignore[import-not-found]  # installed beside the compiler

    return proxywasm_abi.load()


def _c_scalar(param: Any) -> str:
    """C type used to declare one wasm-level parameter or result."""
    if param.wasm_type == "i64":
        return "int64_t" if param.c_type.startswith("int64_t") else "uint64_t"
    if param.c_type.endswith("**"):
        return "uint8_t **"
    if param.c_type.endswith("*"):
        # Input pointers are const, output pointers are written by the host.
        return (
            ("const uint8_t *" if param.c_type.startswith("const") else "uint8_t *")
            if not param.name.startswith("return_")
            else "void *"
        )
    return "uint32_t"


def _import_decl(fn: Any) -> str:
    params = ", ".join(f"{_c_scalar(p)} {p.name}" for p in fn.params) or "void"
    ret = "uint32_t" if fn.results else "void"
    return (
        f'__attribute__((import_module("{fn.module}"), import_name("{fn.name}")))\n'
        f"extern {ret} {fn.name}({params});"
    )


def _wrapper(fn: Any) -> str:
    """The Python wrapper of one host import."""
    ins = fn.py_inputs()
    outs = fn.py_outputs()
    lines = [
        f"static PyObject *w_{fn.name}(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {{",
        f'    if (nargs != {len(ins)}) return pw_arity("{fn.name}", {len(ins)}, nargs);',
    ]
    call_args: dict[str, str] = {}
    for i, p in enumerate(ins):
        if p.kind == "bytes":
            data, size = p.c_params
            lines.append(f"    char *in{i}; Py_ssize_t in{i}n;")
            lines.append(
                f"    if (PyBytes_AsStringAndSize(args[{i}], &in{i}, &in{i}n) < 0) return NULL;"
            )
            call_args[data.name] = f"(const uint8_t *)in{i}"
            call_args[size.name] = f"(uint32_t)in{i}n"
        else:
            c = p.c_params[0]
            if c.wasm_type == "i64" and c.c_type.startswith("int64_t"):
                conv = f"PyLong_AsLongLong(args[{i}])"
                ctype = "int64_t"
            elif c.wasm_type == "i64":
                conv = f"PyLong_AsUnsignedLongLongMask(args[{i}])"
                ctype = "uint64_t"
            else:
                conv = f"(uint32_t)PyLong_AsUnsignedLongMask(args[{i}])"
                ctype = "uint32_t"
            lines.append(f"    {ctype} in{i} = {conv};")
            lines.append("    if (PyErr_Occurred()) return NULL;")
            call_args[c.name] = f"in{i}"
    for j, p in enumerate(outs):
        if p.kind == "bytes":
            data, size = p.c_params
            lines.append(f"    uint8_t *out{j} = NULL; uint32_t out{j}n = 0;")
            call_args[data.name] = f"&out{j}"
            call_args[size.name] = f"&out{j}n"
        else:
            c = p.c_params[0]
            ctype = "uint64_t" if c.c_type.startswith(("uint64_t", "int64_t")) else "uint32_t"
            lines.append(f"    {ctype} out{j} = 0;")
            call_args[c.name] = f"&out{j}"
    argv = ", ".join(call_args[p.name] for p in fn.params)
    lines.append(f"    uint32_t status = {fn.name}({argv});")
    if not outs:
        lines.append("    return PyLong_FromUnsignedLong(status);")
    else:
        lines.append(f"    PyObject *result = PyTuple_New({len(outs) + 1});")
        lines.append("    if (result == NULL) goto done;")
        lines.append("    PyTuple_SET_ITEM(result, 0, PyLong_FromUnsignedLong(status));")
        for j, p in enumerate(outs):
            if p.kind == "bytes":
                item = f"PyBytes_FromStringAndSize((const char *)out{j}, status == 0 && out{j} ? (Py_ssize_t)out{j}n : 0)"
            elif p.c_params[0].c_type.startswith(("uint64_t", "int64_t")):
                item = f"PyLong_FromUnsignedLongLong(out{j})"
            else:
                item = f"PyLong_FromUnsignedLong(out{j})"
            lines.append(f"    PyTuple_SET_ITEM(result, {j + 1}, {item});")
        lines.append("done:")
        for j, p in enumerate(outs):
            if p.kind == "bytes":
                lines.append(f"    free(out{j});")
        lines.append("    return result;")
    lines.append("}")
    return "\n".join(lines)


def _callback(fn: Any, index: int) -> str:
    """The C export of one ``proxy_on_*`` callback."""
    n = len(fn.params)
    params = ", ".join(f"uint32_t a{i}" for i in range(n)) or "void"
    ret = "uint32_t" if fn.results else "void"
    lines = [
        f'__attribute__((export_name("{fn.name}")))',
        f"{ret} {fn.name}({params}) {{",
    ]
    kind = _failure_kind(fn.name)
    if kind in ("http", "tcp"):
        # A stream whose context could not even be recorded fails without Python.
        lines.append(f"    if (pw_broken_count && pw_is_broken(a0)) return pw_fail_{kind}(a0);")
    if fn.name in SKIPPABLE:
        # No context class overrides the method behind it: answer its default, no Python call.
        default = "" if not fn.results else (" 1" if kind == "done" else " 0")
        lines.append(f"    if (pw_skip[{index}]) return{default};")
    if fn.name in _HTTP_ACTIONS:
        # A made HTTP context's callback, run in C as the dispatcher would (pw_http_fast).
        eos = "a2 != 0" if n == 3 else "-1"
        lines.append(
            f"    {{ uint32_t action; if (pw_http_fast({index}, a0, a1, {eos}, &action)) return action; }}"
        )
    if kind == "create":
        # A stream context: only recorded as pending (the dispatcher makes it at its
        # first callback), so C records it without a Python call.
        lines.append(
            "    if (a1 != 0 && pw_pending != NULL) { pw_record_pending(a0, a1); return; }"
        )
    if kind == "delete":
        # A stream context nothing waits on, whose class keeps the SDK's on_delete:
        # C drops it from the dispatcher's table, no Python call.
        lines.append(
            "    if (pw_streams != NULL && pw_delete_quietly(a0)) {"
            " if (pw_broken_count) pw_unmark_broken(a0); return; }"
        )
    if n:
        lines.append(
            f"    PyObject *argv[{n}] = {{"
            + ", ".join(f"PyLong_FromUnsignedLong(a{i})" for i in range(n))
            + "};"
        )
    else:
        lines.append("    PyObject **argv = NULL;")
    lines.append(f"    PyObject *r = pw_dispatch({index}, argv, {n});")
    for i in range(n):
        lines.append(f"    Py_XDECREF(argv[{i}]);")
    if kind == "create":
        lines.append("    if (r == NULL && a1 != 0) pw_mark_broken(a0);")
    elif kind == "delete":
        lines.append("    if (pw_broken_count) pw_unmark_broken(a0);")
    if kind in ("http", "tcp"):
        lines.append(f"    if (r == NULL) return pw_fail_{kind}(a0);")
    if fn.results:
        # proxy_on_done: True (finished) when Python could not answer, or the
        # context would never be released; bools otherwise default to False.
        default = "1" if kind == "done" else "0"
        lines.append(f"    uint32_t value = {default};")
        lines.append(
            "    if (r != NULL && r != Py_None) { value = (uint32_t)PyLong_AsUnsignedLongMask(r); PyErr_Clear(); }"
        )
        lines.append("    Py_XDECREF(r);")
        lines.append("    return value;")
    else:
        lines.append("    Py_XDECREF(r);")
    lines.append("}")
    return "\n".join(lines)


#: Callbacks whose result is a stream action: when Python cannot answer they
#: fail closed from C. HTTP: a 500 local reply; TCP: the connection is closed.
_HTTP_ACTIONS = frozenset(
    f"proxy_on_{d}_{p}" for d in ("request", "response") for p in ("headers", "body", "trailers")
)
_TCP_ACTIONS = frozenset(
    {"proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data"}
)


#: Callbacks the glue answers itself while no context class overrides their method
#: (the dispatcher's ``glue_skips()`` says which, at build time; a class made later
#: that overrides one turns it back on with ``_proxywasm.pw_unskip``).
SKIPPABLE = frozenset(
    {
        "proxy_on_request_body",
        "proxy_on_request_trailers",
        "proxy_on_response_body",
        "proxy_on_response_trailers",
        "proxy_on_log",
        "proxy_on_done",
        "proxy_on_downstream_connection_close",
        "proxy_on_upstream_connection_close",
    }
)


def _failure_kind(name: str) -> str:
    """What the C side does when the dispatcher call for ``name`` fails."""
    if name in _HTTP_ACTIONS:
        return "http"
    if name in _TCP_ACTIONS:
        return "tcp"
    return {
        "proxy_on_context_create": "create",
        "proxy_on_delete": "delete",
        "proxy_on_done": "done",
    }.get(name, "log")


def _c_bytes(data: bytes) -> str:
    return "{" + ", ".join(str(b) for b in data) + "}"


def _serialized_headers(pairs: list[tuple[str, str]]) -> bytes:
    """The proxy-wasm header-map serialisation (count, sizes, NUL-terminated strings)."""
    out = bytearray(len(pairs).to_bytes(4, "little"))
    for name, value in pairs:
        out += len(name.encode()).to_bytes(4, "little") + len(value.encode()).to_bytes(4, "little")
    for name, value in pairs:
        out += name.encode() + b"\0" + value.encode() + b"\0"
    return bytes(out)


#: The reply of the C last resort: the same as the dispatcher's (a client or
#: test cannot tell which layer failed closed; the log entry tells).
_FAIL_STATUS = 500
_FAIL_HEADERS = [("content-type", "text/plain")]
_FAIL_BODY = b"Internal Server Error\n"
_FAIL_DETAILS = b"wasm_python_exception"


def _fail_constants() -> str:
    body, details = _FAIL_BODY, _FAIL_DETAILS
    headers = _serialized_headers(_FAIL_HEADERS)
    return (
        f"#define PW_FAIL_STATUS {_FAIL_STATUS}\n"
        f"static const uint8_t pw_fail_body[{len(body)}] = {_c_bytes(body)};\n"
        f"static const uint8_t pw_fail_details[{len(details)}] = {_c_bytes(details)};\n"
        f"static const uint8_t pw_fail_headers[{len(headers)}] = {_c_bytes(headers)};\n"
    )


_PRELUDE = r"""/* Generated by proxywasm_compiler.glue from abi-stubs/abi.toml. Do not edit. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PyObject *pw_arity(const char *name, Py_ssize_t want, Py_ssize_t got) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, got);
    return NULL;
}
"""

_DISPATCH = r"""
static PyObject *pw_callbacks[PW_NUM_CALLBACKS];
/* 1: the callback is answered in C (see SKIPPABLE in glue.py). Set at bind time. */
static unsigned char pw_skip[PW_NUM_CALLBACKS];
static const char *const pw_callback_names[PW_NUM_CALLBACKS] = {
%(names)s
};

/* The last resort, when the dispatcher call itself fails (its own barrier
   catches every filter exception, so this is an exception escaping the SDK or
   a heap too full to call it). One error entry, written into a static buffer
   (no allocation; PyErr_Print would allocate, write four entries, and turn a
   SystemExit into exit()). The exception is dropped. */
static char pw_fail_message[320];

static void pw_log_failure(const char *where) {
    const char *kind = "no exception set";
    PyObject *type = PyErr_Occurred();  /* borrowed */
    if (type != NULL && PyType_Check(type)) kind = ((PyTypeObject *)type)->tp_name;
    PyErr_Clear();
    int n = snprintf(pw_fail_message, sizeof pw_fail_message,
                     "python callback %%s failed outside the exception barrier (%%s): "
                     "the stream fails closed", where, kind);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof pw_fail_message) n = (int)sizeof pw_fail_message - 1;
    proxy_log(4, pw_fail_message, (uint32_t)n);
}

/* Stream contexts whose creation failed before Python recorded them: the
   dispatcher would not know them and answer CONTINUE, so C answers instead. */
#define PW_BROKEN_MAX 64
static uint32_t pw_broken[PW_BROKEN_MAX];
static int pw_broken_count;
static int pw_broken_next;

static int pw_is_broken(uint32_t id) {
    for (int i = 0; i < PW_BROKEN_MAX; i++) if (pw_broken[i] == id && id != 0) return 1;
    return 0;
}
static void pw_mark_broken(uint32_t id) {
    if (pw_is_broken(id)) return;
    if (pw_broken[pw_broken_next] == 0) pw_broken_count++;
    pw_broken[pw_broken_next] = id;  /* oldest entry evicted when full */
    pw_broken_next = (pw_broken_next + 1) %% PW_BROKEN_MAX;
}
static void pw_unmark_broken(uint32_t id) {
    for (int i = 0; i < PW_BROKEN_MAX; i++) if (pw_broken[i] == id && id != 0) { pw_broken[i] = 0; pw_broken_count--; }
}

/* Fail closed without Python: a 500 (or, when a reply went out already, a
   reset of the stream) and PAUSE. */
static uint32_t pw_fail_http(uint32_t context_id) {
    proxy_set_effective_context(context_id);
    uint32_t status = proxy_send_local_response(
        PW_FAIL_STATUS, (const char *)pw_fail_details, sizeof pw_fail_details,
        pw_fail_body, sizeof pw_fail_body, pw_fail_headers, sizeof pw_fail_headers, 0);
    if (status != 0) proxy_close_stream(1 /* HTTP_RESPONSE */);
    return 1; /* PAUSE */
}

static uint32_t pw_fail_tcp(uint32_t context_id) {
    proxy_set_effective_context(context_id);
    proxy_close_stream(2 /* DOWNSTREAM */);
    return 1; /* PAUSE */
}

/* The dispatcher's table of stream contexts announced but not made yet
   (Dispatcher.pending: context id -> root context id), bound with the callbacks;
   NULL (every creation goes to Python) if it is not a plain dict. */
static PyObject *pw_pending;

static void pw_record_pending(uint32_t id, uint32_t parent) {
    PyObject *key = PyLong_FromUnsignedLong(id);
    PyObject *value = key != NULL ? PyLong_FromUnsignedLong(parent) : NULL;
    int rc = value != NULL ? PyDict_SetItem(pw_pending, key, value) : -1;
    Py_XDECREF(key);
    Py_XDECREF(value);
    if (rc == 0) return;
    /* As when the dispatcher call fails: one error entry, the stream fails closed. */
    pw_log_failure("proxy_on_context_create");
    pw_mark_broken(id);
}

/* The dispatcher's tables the delete fast path reads (see pw_delete_quietly), and
   proxywasm._state's globals; pw_streams is NULL (every delete goes to Python)
   unless each has the exact type the dispatcher gives it. */
static PyObject *pw_vm, *pw_state, *pw_streams, *pw_roots, *pw_plain_delete;
/* proxywasm._state's names, interned once (a lookup by C string would make a str each time). */
static PyObject *pw_key_vm, *pw_key_replied, *pw_key_effective, *pw_key_epoch;
static const char *const pw_idle_names[] = {"pending", "broken", "replied", "callouts",
                                            "grpc_calls", "tasks"};
#define PW_IDLE (sizeof pw_idle_names / sizeof pw_idle_names[0])
static PyObject *pw_idle[PW_IDLE];

/* The dispatcher is the current VM and no local reply waits to be noted: what
   Dispatcher._enter would do then is only to set the effective context and the map epoch. */
static int pw_state_is_plain(void) {
    PyObject *dict = PyModule_GetDict(pw_state);  /* borrowed */
    PyObject *current = PyDict_GetItem(dict, pw_key_vm);  /* borrowed */
    PyObject *replied = PyDict_GetItem(dict, pw_key_replied);
    return current == pw_vm && replied != NULL && PyLong_CheckExact(replied) && Py_SIZE(replied) == 0;
}

/* proxy_on_delete of a stream context, answered in C when Python would only drop
   it: the dispatcher is the current VM with no reply to note, the context is a
   made stream (not a root, not pending) whose class the dispatcher found to keep
   the SDK's empty on_delete (Dispatcher._plain_delete, filled by Python at the
   first delete of each class), and no table holds anything (no callout, task,
   failed or replied stream) that would need cleaning. 1: done; 0: call Python. */
static int pw_delete_quietly(uint32_t id) {
    for (size_t i = 0; i < PW_IDLE; i++) {
        PyObject *t = pw_idle[i];
        if ((PyDict_CheckExact(t) ? PyDict_GET_SIZE(t) : PySet_GET_SIZE(t)) != 0) return 0;
    }
    if (!pw_state_is_plain()) return 0;
    PyObject *key = PyLong_FromUnsignedLong(id);
    if (key == NULL) { PyErr_Clear(); return 0; }
    int done = 0;
    PyObject *ctx = PyDict_GetItemWithError(pw_streams, key);  /* borrowed */
    if (ctx != NULL && PyDict_GetItemWithError(pw_plain_delete, (PyObject *)Py_TYPE(ctx)) == Py_True
        && PyDict_Contains(pw_roots, key) == 0)
        done = PyDict_DelItem(pw_streams, key) == 0;  /* the context is freed here, as in Python */
    Py_DECREF(key);
    if (PyErr_Occurred()) PyErr_Clear();
    return done;
}

static void pw_bind_tables(PyObject *vm) {
    Py_CLEAR(pw_streams);
    pw_vm = vm;  /* the dispatcher lives as long as the module (_pw_boot.vm) */
    pw_state = PyImport_ImportModule("proxywasm._state");
    pw_key_vm = PyUnicode_InternFromString("vm");
    pw_key_replied = PyUnicode_InternFromString("replied_context");
    pw_key_effective = PyUnicode_InternFromString("effective_context_id");
    pw_key_epoch = PyUnicode_InternFromString("map_epoch");
    pw_roots = PyObject_GetAttrString(vm, "roots");
    pw_plain_delete = PyObject_GetAttrString(vm, "_plain_delete");
    int ok = pw_state != NULL && pw_key_vm != NULL && pw_key_replied != NULL
             && pw_key_effective != NULL && pw_key_epoch != NULL
             && pw_roots != NULL && PyDict_CheckExact(pw_roots)
             && pw_plain_delete != NULL && PyDict_CheckExact(pw_plain_delete);
    for (size_t i = 0; i < PW_IDLE; i++) {
        pw_idle[i] = PyObject_GetAttrString(vm, pw_idle_names[i]);
        PyObject *t = pw_idle[i];
        if (t == NULL || !(PyDict_CheckExact(t) || PySet_CheckExact(t))) ok = 0;
    }
    PyErr_Clear();
    if (ok) pw_streams = PyObject_GetAttrString(vm, "streams");
    if (pw_streams != NULL && !PyDict_CheckExact(pw_streams)) Py_CLEAR(pw_streams);
    PyErr_Clear();
}

static void pw_bind_http(void);

/* Bind every callback to the dispatcher's bound method, once. Called by the
   runtime after the filter module is imported (before the snapshot). */
int pw_glue_bind(PyObject *vm) {
    for (int i = 0; i < PW_NUM_CALLBACKS; i++) {
        Py_XDECREF(pw_callbacks[i]);
        pw_callbacks[i] = PyObject_GetAttrString(vm, pw_callback_names[i]);
        if (pw_callbacks[i] == NULL) return -1;
        pw_skip[i] = 0;
    }
    /* The callbacks no context class overrides: answered here from now on. */
    PyObject *skips = PyObject_CallMethod(vm, "glue_skips", NULL);
    if (skips == NULL) return -1;
    Py_ssize_t n = PySequence_Size(skips);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *name = PySequence_GetItem(skips, k);
        const char *text = name != NULL ? PyUnicode_AsUTF8(name) : NULL;
        for (int i = 0; text != NULL && i < PW_NUM_CALLBACKS; i++)
            if (strcmp(pw_callback_names[i], text) == 0) pw_skip[i] = 1;
        Py_XDECREF(name);
    }
    Py_DECREF(skips);
    if (PyErr_Occurred()) return -1;
    Py_XDECREF(pw_pending);
    pw_pending = PyObject_GetAttrString(vm, "pending");
    if (pw_pending == NULL) return -1;
    if (!PyDict_CheckExact(pw_pending)) Py_CLEAR(pw_pending);
    pw_bind_tables(vm);
    pw_bind_http();
    return 0;
}

/* _proxywasm.pw_unskip(name): a context class made after start-up overrides the
   method behind a skipped callback: call Python for it again. */
PyObject *pw_unskip(PyObject *self, PyObject *name) {
    const char *text = PyUnicode_AsUTF8(name);
    if (text == NULL) return NULL;
    for (int i = 0; i < PW_NUM_CALLBACKS; i++)
        if (strcmp(pw_callback_names[i], text) == 0) pw_skip[i] = 0;
    Py_RETURN_NONE;
}

void pw_runtime_vm_first_call(void);
static int pw_first_call_done;

static PyObject *pw_dispatch(int index, PyObject *const *argv, Py_ssize_t n) {
    if (!pw_first_call_done) {
        pw_first_call_done = 1;
        pw_runtime_vm_first_call();
    }
    PyObject *fn = pw_callbacks[index];
    PyObject *r = NULL;
    int args_ok = 1;
    for (Py_ssize_t i = 0; i < n; i++) if (argv[i] == NULL) args_ok = 0;
    if (fn != NULL && args_ok) r = PyObject_Vectorcall(fn, argv, (size_t)n, NULL);
    if (r == NULL) pw_log_failure(pw_callback_names[index]);
    return r;
}

/* The HTTP stream callbacks (headers, body, trailers) of a context the dispatcher made,
   run here as the dispatcher runs them (dispatcher._headers_callback, _http_action):
   _enter's two assignments, the context's method called with (count, end_of_stream),
   None / Action.CONTINUE / Action.PAUSE answered here. Any other result, and any
   exception, goes to the dispatcher (_callback_result, _callback_failed), so the
   barrier and the failure policy stay Python's. 1: *action is the answer; 0: call
   Python (the VM's first callback, another VM's turn, a reply to note). A stream's
   first callback makes its context with Dispatcher._make, as the dispatcher does. */
static PyObject *pw_http_type, *pw_act_continue, *pw_act_pause, *pw_one;
static PyObject *pw_name_failed, *pw_name_result, *pw_name_make, *pw_name_unmade;
static PyObject *pw_http_methods[PW_NUM_CALLBACKS];  /* "on_http_request_headers"...; NULL: not one */
static const char *const pw_http_method_names[PW_NUM_CALLBACKS] = {
%(http_methods)s
};

static void pw_bind_http(void) {
    PyObject *contexts = PyImport_ImportModule("proxywasm.contexts");
    PyObject *types = PyImport_ImportModule("proxywasm.types");
    PyObject *action = types != NULL ? PyObject_GetAttrString(types, "Action") : NULL;
    pw_http_type = contexts != NULL ? PyObject_GetAttrString(contexts, "HttpContext") : NULL;
    pw_act_continue = action != NULL ? PyObject_GetAttrString(action, "CONTINUE") : NULL;
    pw_act_pause = action != NULL ? PyObject_GetAttrString(action, "PAUSE") : NULL;
    pw_one = PyLong_FromLong(1);
    pw_name_failed = PyUnicode_InternFromString("_callback_failed");
    pw_name_result = PyUnicode_InternFromString("_callback_result");
    pw_name_make = PyUnicode_InternFromString("_make");
    pw_name_unmade = PyUnicode_InternFromString("_unmade");
    int ok = pw_http_type != NULL && PyType_Check(pw_http_type) && pw_act_continue != NULL
             && pw_act_pause != NULL && pw_one != NULL && pw_name_failed != NULL
             && pw_name_result != NULL && pw_name_make != NULL && pw_name_unmade != NULL;
    for (int i = 0; ok && i < PW_NUM_CALLBACKS; i++) {
        if (pw_http_method_names[i] == NULL) continue;
        pw_http_methods[i] = PyUnicode_InternFromString(pw_http_method_names[i]);
        if (pw_http_methods[i] == NULL) ok = 0;
    }
    Py_XDECREF(contexts);
    Py_XDECREF(types);
    Py_XDECREF(action);
    if (!ok) Py_CLEAR(pw_http_type);  /* every such callback goes to Python */
    PyErr_Clear();
}

static int pw_http_fast(int index, uint32_t id, uint32_t count, int eos, uint32_t *action) {
    PyObject *name = pw_http_methods[index];
    if (name == NULL || pw_http_type == NULL || pw_streams == NULL || !pw_first_call_done
        || !pw_state_is_plain())
        return 0;
    PyObject *key = PyLong_FromUnsignedLong(id);
    if (key == NULL) { PyErr_Clear(); return 0; }
    PyObject *ctx = PyDict_GetItemWithError(pw_streams, key);  /* borrowed */
    if ((ctx == NULL && PyErr_Occurred())
        || (ctx != NULL && !PyObject_TypeCheck(ctx, (PyTypeObject *)pw_http_type))) {
        PyErr_Clear();
        Py_DECREF(key);
        return 0;
    }
    /* Dispatcher._enter: this context is the effective one; header views fetch afresh. */
    PyObject *dict = PyModule_GetDict(pw_state);  /* borrowed */
    PyObject *epoch = PyDict_GetItem(dict, pw_key_epoch);  /* borrowed */
    PyObject *next = epoch != NULL ? PyNumber_Add(epoch, pw_one) : NULL;
    if (next == NULL || PyDict_SetItem(dict, pw_key_epoch, next) < 0
        || PyDict_SetItem(dict, pw_key_effective, key) < 0) {
        Py_XDECREF(next);
        Py_DECREF(key);
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(next);
    if (ctx != NULL) {
        Py_INCREF(ctx);
    } else {  /* the stream's first callback: the dispatcher makes its context */
        ctx = PyObject_CallMethodObjArgs(pw_vm, pw_name_make, key, Py_True, NULL);
        if (ctx == NULL || !PyObject_TypeCheck(ctx, (PyTypeObject *)pw_http_type)) {
            PyObject *answer = ctx != NULL ? PyObject_CallMethodOneArg(pw_vm, pw_name_unmade, key) : NULL;
            if (answer == NULL) {
                pw_log_failure(pw_callback_names[index]);
                *action = pw_fail_http(id);
            } else {
                *action = (uint32_t)PyLong_AsUnsignedLongMask(answer);
                PyErr_Clear();
            }
            Py_XDECREF(answer);
            Py_XDECREF(ctx);
            Py_DECREF(key);
            return 1;
        }
    }
    PyObject *args[3] = {ctx, PyLong_FromUnsignedLong(count), eos ? Py_True : Py_False};
    PyObject *r = args[1] != NULL ? PyObject_VectorcallMethod(name, args, eos < 0 ? 2 : 3, NULL) : NULL;
    Py_XDECREF(args[1]);
    PyObject *settled = NULL;
    int answered = 0;
    if (r == Py_None || r == pw_act_continue) {
        *action = 0;
        answered = 1;
    } else if (r == pw_act_pause) {
        *action = 1;
        answered = 1;
    } else if (r == NULL) {  /* the dispatcher's barrier, as if the exception reached it */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value != NULL && tb != NULL) PyException_SetTraceback(value, tb);
        if (value != NULL)
            settled = PyObject_CallMethodObjArgs(pw_vm, pw_name_failed, name, key, value, NULL);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else {
        settled = PyObject_CallMethodObjArgs(pw_vm, pw_name_result, ctx, key, name, r, NULL);
    }
    if (!answered) {
        if (settled == NULL) {  /* as when the dispatcher call itself fails */
            pw_log_failure(pw_callback_names[index]);
            *action = pw_fail_http(id);
        } else {
            *action = (uint32_t)PyLong_AsUnsignedLongMask(settled);
            PyErr_Clear();
        }
    }
    Py_XDECREF(settled);
    Py_XDECREF(r);
    Py_DECREF(ctx);
    Py_DECREF(key);
    return 1;
}

/* Runtime hooks (runtime.c calls pw_runtime_post_init after start-up, at
   snapshot time): import the generated boot module, which imports the filter,
   routes stdout/stderr to proxy_log and checks a root context is registered;
   then bind the callbacks to its dispatcher. */
int pw_runtime_post_init(void) {
    PyObject *boot = PyImport_ImportModule("_pw_boot");
    if (boot == NULL) return -1;
    PyObject *vm = PyObject_GetAttrString(boot, "vm");
    Py_DECREF(boot);
    if (vm == NULL) return -1;
    int rc = pw_glue_bind(vm);
    Py_DECREF(vm);
    return rc;
}

/* First callback in this VM (after the snapshot): reseed what the snapshot froze. */
void pw_runtime_vm_first_call(void) {
    PyObject *boot = PyImport_AddModule("_pw_boot");  /* borrowed */
    if (boot == NULL) { PyErr_Clear(); return; }
    PyObject *r = PyObject_CallMethod(boot, "vm_first_call", NULL);
    if (r == NULL) pw_log_failure("vm_first_call");
    Py_XDECREF(r);
}

__attribute__((export_name("proxy_abi_version_0_2_1")))
void proxy_abi_version_0_2_1(void) {}

__attribute__((export_name("proxy_on_memory_allocate")))
void *proxy_on_memory_allocate(uint32_t size) { return malloc(size ? size : 1); }
"""


def render_glue() -> str:
    """The complete C source of the glue."""
    abi = _abi()
    imports = abi.proxy_imports
    callbacks = abi.callbacks
    parts = [_PRELUDE, "/* -- host imports " + "-" * 60 + " */"]
    parts += [_import_decl(f) for f in imports]
    parts.append("\n/* -- the _proxywasm module " + "-" * 50 + " */")
    parts += [_wrapper(f) for f in imports]
    table = ",\n".join(
        f'    {{"{f.name}", (PyCFunction)(void (*)(void))w_{f.name}, METH_FASTCALL, NULL}}'
        for f in imports
    )
    table += ',\n    {"pw_unskip", (PyCFunction)pw_unskip, METH_O, NULL}'
    parts.append("PyObject *pw_unskip(PyObject *self, PyObject *name);")
    parts.append(
        "static PyMethodDef pw_methods[] = {\n" + table + ",\n    {NULL, NULL, 0, NULL}\n};\n\n"
        'static struct PyModuleDef pw_module = {PyModuleDef_HEAD_INIT, "_proxywasm",\n'
        '    "proxy-wasm ABI v'
        + abi.version
        + ' host functions (generated glue).", -1, pw_methods};\n\n'
        "PyMODINIT_FUNC PyInit__proxywasm(void) { return PyModule_Create(&pw_module); }\n"
    )
    parts.append("/* -- callbacks " + "-" * 63 + " */")
    parts.append(f"#define PW_NUM_CALLBACKS {len(callbacks)}")
    parts.append(_fail_constants())
    http_methods = ",\n".join(
        f'    "on_http_{f.name[len("proxy_on_") :]}"' if f.name in _HTTP_ACTIONS else "    NULL"
        for f in callbacks
    )
    parts.append(
        _DISPATCH
        % {
            "names": ",\n".join(f'    "{f.name}"' for f in callbacks),
            "http_methods": http_methods,
        }
    )
    parts += [_callback(f, i) for i, f in enumerate(callbacks)]
    return "\n\n".join(parts) + "\n"
