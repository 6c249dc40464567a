/* Self-test entry point for toolchain checks (not part of real filters).
 *
 * Linked together with runtime.c and a frozen module `hello` defining f(x):
 * pw_runtime_post_init() looks hello.f up once (at pre-initialisation time),
 * and the exported pw_call_test(x) returns int(hello.f(x)), or -1 with the
 * traceback on stderr if anything fails.
 */
#include <Python.h>

static PyObject *pw_hello_f;

int pw_runtime_post_init(void) {
    PyObject *mod = PyImport_ImportModule("hello");
    if (mod == NULL) return -1;
    pw_hello_f = PyObject_GetAttrString(mod, "f");
    Py_DECREF(mod);
    return pw_hello_f == NULL ? -1 : 0;
}

__attribute__((export_name("pw_call_test"))) int32_t pw_call_test(int32_t x) {
    if (pw_hello_f == NULL) return -1;
    PyObject *arg = PyLong_FromLong(x);
    if (arg == NULL) goto fail;
    PyObject *res = PyObject_CallOneArg(pw_hello_f, arg);
    Py_DECREF(arg);
    if (res == NULL) goto fail;
    long v = PyLong_AsLong(res);
    Py_DECREF(res);
    if (v == -1 && PyErr_Occurred()) goto fail;
    return (int32_t)v;
fail:
    PyErr_Print();
    return -1;
}
