/* The compact backend's runtime: values, allocation, the collector, exceptions.
 *
 * Every Python value that is not an int, float or bool travels as a
 * `pw_obj *`. None is the static object `pw_none`; NULL never is a value: in
 * an instance field it means "not assigned yet" (AttributeError on read).
 * Objects made at run time sit on one list; `pw_gc()` marks from the roots
 * (live contexts, the pending exception) and frees the rest. It only runs
 * between callbacks, when no C local can hold a reference (no stack maps).
 */
#ifndef PW_RT_H
#define PW_RT_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    PW_NONE = 1, PW_BOOL, PW_INT, PW_FLOAT, PW_STR, PW_BYTES, PW_LIST, PW_DICT, PW_INST, PW_EXC,
    PW_TUPLE,  /* a pw_list that never changes */
    PW_SET,    /* a pw_dict whose values are None */
    PW_ITER,   /* for loops: a position in a list, tuple, dict, set or str */
    PW_BOUND   /* a bound method used as a value */
};

typedef struct pw_obj {
    uint8_t tag;
    uint8_t mark;    /* PW_STATIC: never collected */
    uint8_t sclass;  /* pw_alloc's size class (16-byte steps), 0: a malloc'd block of its own */
    struct pw_obj *next;
} pw_obj;
#define PW_STATIC 2

typedef struct { pw_obj h; int64_t v; } pw_int;
typedef struct { pw_obj h; double v; } pw_float;
typedef struct { pw_obj h; uint32_t len; const char *data; } pw_str;  /* UTF-8; also bytes */
typedef struct { pw_obj h; uint32_t len, cap; pw_obj **items; } pw_list;
/* dicts (and sets) keep insertion order in keys/values; past a few entries a hash index
   (open addressing, entry position + 1, 0 = empty) makes lookups O(1) */
typedef struct { pw_obj h; uint32_t len, cap; pw_obj **keys; pw_obj **values; uint32_t *index; uint32_t icap; } pw_dict;
void pw_dict_drop_index(pw_obj *dict);  /* after removing entries (rebuilt on the next insertion) */

/* A class: the vtable of its methods follows the header (slot indices are
   fixed by codegen; the SDK's callbacks come first, see pw_sdk.h). */
typedef struct pw_class {
    const char *name;
    const struct pw_class *base;
    uint32_t nfields;
    uint64_t ptr_fields;         /* bit i: field i holds a pw_obj * */
    int fail_open;               /* root classes: the failure policy; PW_NATIVE: see below */
    void *slots[];
} pw_class;

/* A class the runtime implements in C (the views of proxywasm.views) has fail_open ==
   PW_NATIVE and its method dispatcher in slots[0]. The generic operations ask it by name:
   "__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__", "__bool__", "__iter__"
   (returns a list), "__repr__", then any method. */
#define PW_NATIVE 2
typedef struct pw_obj *(*pw_native_fn)(struct pw_obj *self, const char *name, int argc, struct pw_obj **argv);

typedef union { int64_t i; double f; pw_obj *p; } pw_field;
typedef struct { pw_obj h; const pw_class *cls; uint64_t set; pw_field f[]; } pw_inst;

/* Exception types form a tree; raising one makes a PW_EXC object. */
typedef struct pw_exc_type {
    const char *name;           /* as Python prints it, e.g. "json.decoder.JSONDecodeError" */
    const struct pw_exc_type *base;
} pw_exc_type;

#define PW_TB_MAX 32
typedef struct { const char *file; const char *func; int line; } pw_frame;
typedef struct {
    pw_obj h;
    const pw_exc_type *type;
    pw_obj *message;            /* a str */
    int nframes;                /* innermost first */
    pw_frame frames[PW_TB_MAX];
} pw_exc;

extern pw_obj pw_none;
extern pw_int pw_true, pw_false;
extern pw_exc *pw_err;          /* the exception being raised, or NULL */
#define PW_NONE_V (&pw_none)
#define PW_ERR (pw_err != NULL)

extern const pw_exc_type pw_BaseException, pw_Exception, pw_TypeError, pw_ValueError,
    pw_AttributeError, pw_KeyError, pw_IndexError, pw_OverflowError, pw_ZeroDivisionError,
    pw_RuntimeError, pw_JSONDecodeError, pw_MemoryError, pw_LookupError, pw_ArithmeticError,
    pw_UnicodeDecodeError, pw_UnicodeError, pw_NotImplementedError, pw_StopIteration, pw_AssertionError, pw_RecursionError;

/* allocation and collection (pw_fatal: log at CRITICAL, then trap the VM) */
__attribute__((noreturn)) void pw_fatal(const char *message);
void *pw_alloc(size_t size, uint8_t tag);
void pw_gc(void);
typedef void (*pw_root_walker)(void (*mark)(pw_obj *));
void pw_gc_set_roots(pw_root_walker walker);
size_t pw_gc_live_bytes(void);

/* exceptions */
void pw_raise(const pw_exc_type *type, pw_obj *message);
void pw_raise_c(const pw_exc_type *type, const char *message);
void pw_tb_add(const char *file, const char *func, int line);
int pw_exc_matches(const pw_exc_type *type);
pw_obj *pw_format_exception(pw_exc *exc);  /* "Traceback ...\nType: message" */

/* ints, floats */
int64_t pw_int_add(int64_t a, int64_t b);
int64_t pw_int_sub(int64_t a, int64_t b);
int64_t pw_int_mul(int64_t a, int64_t b);
int64_t pw_int_floordiv(int64_t a, int64_t b);
int64_t pw_int_mod(int64_t a, int64_t b);
int64_t pw_int_neg(int64_t a);
int64_t pw_int_from_str(pw_obj *s);
int64_t pw_int_from_float(double v);
int64_t pw_int_abs(int64_t v);
int64_t pw_int_min(int64_t a, int64_t b);
int64_t pw_int_max(int64_t a, int64_t b);
double pw_float_div(double a, double b);
double pw_float_from_str(pw_obj *s);  /* float(str): ValueError as CPython */
double pw_float_of(pw_obj *v);        /* float() of a dynamic value */
int64_t pw_int_of(pw_obj *v);        /* int() of a dynamic value */
pw_obj *pw_box_int(int64_t v);
pw_obj *pw_box_float(double v);
pw_obj *pw_box_bool(int v);

/* str and bytes */
pw_obj *pw_str_new(const char *data, size_t len, uint8_t tag);
pw_obj *pw_str_concat(pw_obj *a, pw_obj *b);
pw_obj *pw_str_join_n(int n, pw_obj **parts);
int pw_str_eq(pw_obj *a, pw_obj *b);
int pw_str_cmp(pw_obj *a, pw_obj *b);
pw_obj *pw_str_of_int(int64_t v);
pw_obj *pw_str_of_float(double v);
pw_obj *pw_str_of_bool(int v);
pw_obj *pw_str_of(pw_obj *v);       /* str() of any value */
pw_obj *pw_repr_of(pw_obj *v);      /* repr() of any value */
pw_obj *pw_bytes_decode(pw_obj *b); /* UTF-8 decode (strict) */
pw_obj *pw_bytes_decode_replace(pw_obj *b); /* UTF-8 decode, errors="replace" (as CPython) */
pw_native_fn pw_native_of(pw_obj *v);  /* the dispatcher of a PW_NATIVE instance, else NULL */
int64_t pw_len(pw_obj *v);

/* dynamic values (Any: JSON and friends) */
int pw_truthy(pw_obj *v);
int pw_dyn_eq(pw_obj *a, pw_obj *b);
pw_obj *pw_dyn_method(pw_obj *self, const char *name, int argc, pw_obj **argv);
/* the same, for a name only one family of types has (the linker drops the families not called) */
pw_obj *pw_meth_dict(pw_obj *self, const char *name, int argc, pw_obj **argv);
pw_obj *pw_meth_list(pw_obj *self, const char *name, int argc, pw_obj **argv);
pw_obj *pw_meth_set(pw_obj *self, const char *name, int argc, pw_obj **argv);
pw_obj *pw_meth_str(pw_obj *self, const char *name, int argc, pw_obj **argv);
pw_obj *pw_dyn_getitem(pw_obj *self, pw_obj *key);
pw_obj *pw_to_str(pw_obj *v);       /* check a dynamic value is a str (TypeError) */
pw_obj *pw_to_bytes(pw_obj *v);
int64_t pw_to_int(pw_obj *v);
double pw_to_float(pw_obj *v);
int pw_to_bool(pw_obj *v);
const char *pw_type_name(pw_obj *v);

/* containers */
pw_obj *pw_list_new(uint32_t cap);
void pw_list_append(pw_obj *list, pw_obj *item);
pw_obj *pw_dict_new(void);
void pw_dict_set(pw_obj *dict, pw_obj *key, pw_obj *value);
pw_obj *pw_dict_lookup(pw_obj *dict, pw_obj *key);  /* NULL when missing */

/* tuples, sets, iteration, the operators and methods of dynamic values */
pw_obj *pw_tuple_new(uint32_t n, pw_obj **items);
pw_obj *pw_list_of(uint32_t n, pw_obj **items);
pw_obj *pw_set_of(uint32_t n, pw_obj **items);
pw_obj *pw_dict_of(uint32_t n, pw_obj **keys_and_values);  /* k0, v0, k1, v1, ... */
void pw_dyn_setitem(pw_obj *self, pw_obj *key, pw_obj *value);
pw_obj *pw_dyn_slice(pw_obj *self, pw_obj *start, pw_obj *stop, pw_obj *step);
pw_obj *pw_dyn_binop(int op, pw_obj *a, pw_obj *b);       /* op: '+', '-', '*', '&', '|' */
int pw_dyn_compare(int op, pw_obj *a, pw_obj *b);          /* op: '<', 'l' (<=), '>', 'g' (>=) */
int pw_contains(pw_obj *container, pw_obj *item);         /* `item in container` */
pw_obj *pw_iter(pw_obj *iterable);
pw_obj *pw_next(pw_obj *iter);                            /* NULL at the end (or on an error) */
void pw_unpack(pw_obj *v, uint32_t n, pw_obj **out);      /* a, b = v */
pw_obj *pw_to_list(pw_obj *iterable);
pw_obj *pw_to_set(pw_obj *iterable);
pw_obj *pw_to_tuple(pw_obj *iterable);
pw_obj *pw_to_dict(pw_obj *iterable);
pw_obj *pw_sorted(pw_obj *iterable);
pw_obj *pw_dyn_min_max(pw_obj *iterable, int want_max);
pw_obj *pw_str_join(pw_obj *sep, pw_obj *iterable);
pw_obj *pw_builtin_any(pw_obj *args);  /* these take their arguments as one tuple */
pw_obj *pw_builtin_all(pw_obj *args);
pw_obj *pw_builtin_sum(pw_obj *args);
pw_obj *pw_builtin_enumerate(pw_obj *args);
pw_obj *pw_builtin_zip(pw_obj *args);
pw_obj *pw_builtin_range(pw_obj *args);
pw_obj *pw_builtin_reversed(pw_obj *args);
/* isinstance against builtin types: bit (1 << tag) of `mask`; classes and exception types by pointer */
int pw_isinstance(pw_obj *v, uint32_t mask, const void *cls, const pw_exc_type *exc);
/* exception objects: `ValueError("message")`; raise one */
pw_obj *pw_exc_new(const pw_exc_type *type, pw_obj *message);
pw_obj *pw_bound_new(void *fn, pw_obj *self, int64_t nreq, int64_t nall);
pw_obj *pw_call(pw_obj *f, int argc, pw_obj **argv);
pw_obj *pw_type_name_of(pw_obj *v);  /* type(v).__name__ */
void pw_raise_obj(pw_obj *exc);

/* JSON */
pw_obj *pw_json_loads(pw_obj *text);
pw_obj *pw_json_loads_any(pw_obj *text);  /* json.loads of a dynamic value (TypeError unless str or bytes) */
pw_obj *pw_json_dumps(pw_obj *v, int ensure_ascii, pw_obj *separators, int sort_keys);

/* instances */
pw_obj *pw_inst_new(const pw_class *cls);
int pw_is_subclass(const pw_class *cls, const pw_class *base);
void pw_attr_error(pw_obj *self, const char *name);

#define PW_STR_LIT(ident, text) \
    static pw_str ident = {{PW_STR, PW_STATIC, 0}, sizeof(text) - 1, text}
/* a str literal with no upper-case letter, all ASCII: its mark says so (PW_STATIC_LOWER), so
   a header name needs no lower() (the collector takes any non-zero mark of a static as marked) */
#define PW_STATIC_LOWER (PW_STATIC | 4)
#define PW_STR_LIT_LOWER(ident, text) \
    static pw_str ident = {{PW_STR, PW_STATIC_LOWER, 0}, sizeof(text) - 1, text}
#define PW_BYTES_LIT(ident, text) \
    static pw_str ident = {{PW_BYTES, PW_STATIC, 0}, sizeof(text) - 1, text}

#endif
