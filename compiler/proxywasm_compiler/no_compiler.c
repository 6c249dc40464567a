/* Leave CPython's parser and bytecode compiler out of the module.
 *
 * Every module of a filter is frozen (compiled at build time by CPython 3.11),
 * so the module never needs to compile Python at run time unless the filter
 * calls eval/exec/compile (the build keeps the compiler then). Linked before
 * libpython, these definitions satisfy the references from the rest of the
 * interpreter, so the linker never pulls the parser, the AST, the symbol table
 * or the compiler out of libpython.a: about a fifth of the code, which V8
 * compiles at every Envoy start.
 *
 * What stays real: the opcode tables and name mangling (used by the
 * interpreter itself), the symtable entry type (listed among static types),
 * and the byte-to-character offset helper tracebacks use.
 */
#define Py_BUILD_CORE 1
#define NEED_OPCODE_TABLES 1
#include <Python.h>
#include "internal/pycore_opcode.h"   /* defines _PyOpcode_Caches, _PyOpcode_Deopt */

struct _mod;
struct _arena;
typedef struct _arena PyArena;

static void pw_no_compiler(const char *what) {
    PyErr_Format(PyExc_RuntimeError,
                 "%s: this module was built without the Python compiler (no eval/exec/compile "
                 "was found in the filter's code); rebuild with `proxywasm build --keep-compiler`",
                 what);
}

struct _mod *_PyParser_ASTFromString(const char *str, PyObject *filename, int mode,
                                     PyCompilerFlags *flags, PyArena *arena) {
    pw_no_compiler("parsing Python source");
    return NULL;
}

struct _mod *_PyParser_ASTFromFile(FILE *fp, PyObject *filename_ob, const char *enc, int mode,
                                   const char *ps1, const char *ps2, PyCompilerFlags *flags,
                                   int *errcode, PyArena *arena) {
    pw_no_compiler("parsing Python source");
    return NULL;
}

PyCodeObject *_PyAST_Compile(struct _mod *mod, PyObject *filename, PyCompilerFlags *flags,
                             int optimize, struct _arena *arena) {
    pw_no_compiler("compiling Python code");
    return NULL;
}

PyObject *PyAST_mod2obj(struct _mod *t) {
    pw_no_compiler("ast");
    return NULL;
}

struct _mod *PyAST_obj2mod(PyObject *ast, PyArena *arena, int mode) {
    pw_no_compiler("ast");
    return NULL;
}

int PyAST_Check(PyObject *obj) { return 0; }

int _PyAST_Validate(struct _mod *mod) {
    pw_no_compiler("ast");
    return 0;
}

int _PyAST_Optimize(struct _mod *mod, struct _arena *arena, void *state) {
    pw_no_compiler("ast");
    return 0;
}

void _PyAST_Fini(PyInterpreterState *interp) {}

char *PyOS_Readline(FILE *in, FILE *out, const char *prompt) {
    PyErr_SetString(PyExc_OSError, "no interactive input inside a proxy-wasm module");
    return NULL;
}

int PyCompile_OpcodeStackEffect(int opcode, int oparg) { return PY_INVALID_STACK_EFFECT; }

int PyCompile_OpcodeStackEffectWithJump(int opcode, int oparg, int jump) {
    return PY_INVALID_STACK_EFFECT;
}

char *_PyTokenizer_FindEncodingFilename(int fd, PyObject *filename) { return NULL; }

/* Private name mangling (`__x` inside class C -> `_C__x`), used by the
   interpreter outside the compiler too. */
PyObject *_Py_Mangle(PyObject *privateobj, PyObject *ident) {
    if (privateobj == NULL || !PyUnicode_Check(privateobj) || !PyUnicode_Check(ident) ||
        PyUnicode_READ_CHAR(ident, 0) != '_' || PyUnicode_GET_LENGTH(ident) < 2 ||
        PyUnicode_READ_CHAR(ident, 1) != '_') {
        Py_INCREF(ident);
        return ident;
    }
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(ident);
    /* dunder names and dotted names are left alone */
    if ((PyUnicode_READ_CHAR(ident, nlen - 1) == '_' && PyUnicode_READ_CHAR(ident, nlen - 2) == '_') ||
        PyUnicode_FindChar(ident, '.', 0, nlen, 1) != -1) {
        Py_INCREF(ident);
        return ident;
    }
    Py_ssize_t plen = PyUnicode_GET_LENGTH(privateobj);
    Py_ssize_t ipriv = 0;
    while (ipriv < plen && PyUnicode_READ_CHAR(privateobj, ipriv) == '_') ipriv++;
    if (ipriv == plen) { /* class name made of underscores only */
        Py_INCREF(ident);
        return ident;
    }
    PyObject *stripped = PyUnicode_Substring(privateobj, ipriv, plen);
    if (stripped == NULL) return NULL;
    PyObject *result = PyUnicode_FromFormat("_%U%U", stripped, ident);
    Py_DECREF(stripped);
    return result;
}

/* Listed among CPython's static types; never instantiated without the compiler. */
PyTypeObject PySTEntry_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "symtable entry",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* Tracebacks turn the byte offsets of code positions into character offsets. */
Py_ssize_t _PyPegen_byte_offset_to_character_offset(PyObject *line, Py_ssize_t col_offset) {
    const char *str = PyUnicode_AsUTF8(line);
    if (str == NULL) return -1;
    Py_ssize_t len = (Py_ssize_t)strlen(str);
    if (col_offset > len + 1) col_offset = len + 1;
    PyObject *text = PyUnicode_DecodeUTF8(str, col_offset, "replace");
    if (text == NULL) return -1;
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    Py_DECREF(text);
    return size;
}

/* Width of a source segment for the carets under a traceback line. The real
   one counts East Asian wide characters twice (it needs unicodedata); one
   column per character is close enough for a log entry. */
Py_ssize_t _PyPegen_calculate_display_width(PyObject *segment, Py_ssize_t character_offset) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(segment);
    return character_offset < len ? character_offset : len;
}
