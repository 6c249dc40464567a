"""Generate the C glue of a compiled module from the ABI table.

Two halves, both derived from ``abi-stubs/abi.toml`` and never written by hand:

* the built-in module ``_proxywasm``: one ``METH_FASTCALL`` wrapper per
  ``env.proxy_*`` host import, with the Python-level signature of
  ``_proxywasm.pyi`` (bytes for pointer/size pairs, ``(status, *outputs)``
  results). Host-allocated output buffers are copied into ``bytes`` and freed.
* the ``proxy_on_*`` exports: each calls the matching method of
  ``proxywasm.dispatcher.vm``, looked up once (at snapshot time) and invoked
  with vectorcall. The dispatcher holds the exception barrier; the C side only
  guards against an exception escaping it (logged through ``sys.stderr``, which
  the runtime routes to ``proxy_log``).
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
        return ("const uint8_t *" if param.c_type.startswith("const") else "uint8_t *") if not param.name.startswith(
            "return_"
        ) else "void *"
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
            lines.append(f"    if (PyBytes_AsStringAndSize(args[{i}], &in{i}, &in{i}n) < 0) return NULL;")
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
    if n:
        lines.append(f"    PyObject *argv[{n}] = {{" + ", ".join(f"PyLong_FromUnsignedLong(a{i})" for i in range(n)) + "};")
    else:
        lines.append("    PyObject **argv = NULL;")
    lines.append(f"    PyObject *r = pw_dispatch({index}, argv, {n});")
    for i in range(n):
        lines.append(f"    Py_XDECREF(argv[{i}]);")
    if fn.results:
        lines.append("    uint32_t value = 0;")
        lines.append("    if (r != NULL && r != Py_None) { value = (uint32_t)PyLong_AsUnsignedLongMask(r); PyErr_Clear(); }")
        lines.append("    Py_XDECREF(r);")
        lines.append("    return value;")
    else:
        lines.append("    Py_XDECREF(r);")
    lines.append("}")
    return "\n".join(lines)


_PRELUDE = r"""/* Generated by proxywasm_compiler.glue from abi-stubs/abi.toml. Do not edit. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

static PyObject *pw_arity(const char *name, Py_ssize_t want, Py_ssize_t got) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, got);
    return NULL;
}
"""

_DISPATCH = r"""
/* The dispatcher catches filter exceptions; this is the last resort. Unlike
   PyErr_Print it never turns a SystemExit into exit(): the VM must live on
   (and the interpreter's finalisation code stays out of the module). */
static void pw_print_error(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (type != NULL) PyErr_Display(type, value, tb);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
}

static PyObject *pw_callbacks[PW_NUM_CALLBACKS];
static const char *const pw_callback_names[PW_NUM_CALLBACKS] = {
%(names)s
};

/* Bind every callback to the dispatcher's bound method, once. Called by the
   runtime after the filter module is imported (before the snapshot). */
int pw_glue_bind(PyObject *vm) {
    for (int i = 0; i < PW_NUM_CALLBACKS; i++) {
        Py_XDECREF(pw_callbacks[i]);
        pw_callbacks[i] = PyObject_GetAttrString(vm, pw_callback_names[i]);
        if (pw_callbacks[i] == NULL) return -1;
    }
    return 0;
}

void pw_runtime_vm_first_call(void);
static int pw_first_call_done;

static PyObject *pw_dispatch(int index, PyObject *const *argv, Py_ssize_t n) {
    if (!pw_first_call_done) {
        pw_first_call_done = 1;
        pw_runtime_vm_first_call();
    }
    PyObject *fn = pw_callbacks[index];
    if (fn == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) if (argv[i] == NULL) { PyErr_Clear(); return NULL; }
    PyObject *r = PyObject_Vectorcall(fn, argv, (size_t)n, NULL);
    if (r == NULL) pw_print_error();
    return r;
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
    if (r == NULL) pw_print_error();
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
    table = ",\n".join(f'    {{"{f.name}", (PyCFunction)(void (*)(void))w_{f.name}, METH_FASTCALL, NULL}}' for f in imports)
    parts.append(
        "static PyMethodDef pw_methods[] = {\n" + table + ",\n    {NULL, NULL, 0, NULL}\n};\n\n"
        "static struct PyModuleDef pw_module = {PyModuleDef_HEAD_INIT, \"_proxywasm\",\n"
        "    \"proxy-wasm ABI v" + abi.version + " host functions (generated glue).\", -1, pw_methods};\n\n"
        "PyMODINIT_FUNC PyInit__proxywasm(void) { return PyModule_Create(&pw_module); }\n"
    )
    parts.append("/* -- callbacks " + "-" * 63 + " */")
    parts.append(f"#define PW_NUM_CALLBACKS {len(callbacks)}")
    parts.append(_DISPATCH % {"names": ",\n".join(f'    "{f.name}"' for f in callbacks)})
    parts += [_callback(f, i) for i, f in enumerate(callbacks)]
    return "\n\n".join(parts) + "\n"
