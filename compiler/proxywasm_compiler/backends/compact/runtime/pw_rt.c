/* The compact backend's runtime (see pw_rt.h): allocation and the collector,
 * exceptions with tracebacks, 64-bit ints, UTF-8 str, dynamic values, JSON. */
#include "pw_rt.h"
#include "pw_unicode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>


pw_obj pw_none = {PW_NONE, PW_STATIC, 0};
pw_int pw_true = {{PW_BOOL, PW_STATIC, 0}, 1};
pw_int pw_false = {{PW_BOOL, PW_STATIC, 0}, 0};
pw_exc *pw_err;

/* -- exception types (the builtins a filter meets; user classes come later) -- */
const pw_exc_type pw_BaseException = {"BaseException", NULL};
const pw_exc_type pw_Exception = {"Exception", &pw_BaseException};
const pw_exc_type pw_TypeError = {"TypeError", &pw_Exception};
const pw_exc_type pw_ValueError = {"ValueError", &pw_Exception};
const pw_exc_type pw_AttributeError = {"AttributeError", &pw_Exception};
const pw_exc_type pw_LookupError = {"LookupError", &pw_Exception};
const pw_exc_type pw_KeyError = {"KeyError", &pw_LookupError};
const pw_exc_type pw_IndexError = {"IndexError", &pw_LookupError};
const pw_exc_type pw_ArithmeticError = {"ArithmeticError", &pw_Exception};
const pw_exc_type pw_OverflowError = {"OverflowError", &pw_ArithmeticError};
const pw_exc_type pw_ZeroDivisionError = {"ZeroDivisionError", &pw_ArithmeticError};
const pw_exc_type pw_UnicodeError = {"UnicodeError", &pw_ValueError};
const pw_exc_type pw_UnicodeDecodeError = {"UnicodeDecodeError", &pw_UnicodeError};
const pw_exc_type pw_NotImplementedError = {"NotImplementedError", &pw_RuntimeError};
const pw_exc_type pw_RecursionError = {"RecursionError", &pw_RuntimeError};
const pw_exc_type pw_StopIteration = {"StopIteration", &pw_Exception};
const pw_exc_type pw_AssertionError = {"AssertionError", &pw_Exception};
const pw_exc_type pw_RuntimeError = {"RuntimeError", &pw_Exception};
const pw_exc_type pw_MemoryError = {"MemoryError", &pw_Exception};
const pw_exc_type pw_JSONDecodeError = {"json.decoder.JSONDecodeError", &pw_ValueError};

/* -- allocation and the collector ------------------------------------------- */

static pw_obj *pw_heap;            /* every object made at run time */
static size_t pw_since_gc;         /* bytes allocated since the last collection */
static size_t pw_live_bytes;
static pw_root_walker pw_roots;
#define PW_GC_THRESHOLD (64 * 1024)

/* Small objects (the many a request makes and the collector frees) are reused from one free
 * list per 16-byte size class instead of going back to malloc: in wasm a malloc/free pair
 * costs hundreds of instructions, a list pop a handful. */
#define PW_SMALL_CLASSES 8 /* up to 128 bytes */
static pw_obj *pw_free_small[PW_SMALL_CLASSES + 1];

void *pw_alloc(size_t size, uint8_t tag) {
    size_t c = (size + 15) >> 4;
    pw_obj *o;
    if (c <= PW_SMALL_CLASSES && (o = pw_free_small[c]) != NULL) {
        pw_free_small[c] = o->next;
        memset(o, 0, c << 4);
    } else {
        o = calloc(1, c <= PW_SMALL_CLASSES ? c << 4 : size);
        if (o == NULL) pw_fatal("out of memory");
    }
    o->sclass = c <= PW_SMALL_CLASSES ? (uint8_t)c : 0;
    o->tag = tag;
    o->next = pw_heap;
    pw_heap = o;
    pw_since_gc += size;
    return o;
}

void pw_gc_set_roots(pw_root_walker walker) { pw_roots = walker; }
size_t pw_gc_live_bytes(void) { return pw_live_bytes; }

static int pw_is_container(pw_obj *o) {
    return o->tag == PW_LIST || o->tag == PW_DICT || o->tag == PW_INST || o->tag == PW_EXC || o->tag == PW_TUPLE ||
           o->tag == PW_SET || o->tag == PW_ITER || o->tag == PW_BOUND;
}

/* Mark what `root` (already marked) reaches; an explicit stack bounds the
   recursion of deep JSON, a full stack recurses once more. */
static void pw_scan(pw_obj *root) {
    pw_obj *stack[128];
    int sp = 0;
    stack[sp++] = root;
    while (sp > 0) {
        pw_obj *cur = stack[--sp];
        pw_obj *one[64];
        pw_obj **arrays[2] = {NULL, NULL};
        uint32_t n = 0;
        if (cur->tag == PW_LIST || cur->tag == PW_TUPLE) {
            arrays[0] = ((pw_list *)cur)->items; n = ((pw_list *)cur)->len;
        } else if (cur->tag == PW_SET) {
            arrays[0] = ((pw_dict *)cur)->keys; n = ((pw_dict *)cur)->len;
        } else if (cur->tag == PW_ITER || cur->tag == PW_BOUND) {
            one[0] = *(pw_obj **)(cur + 1); n = 1; arrays[0] = one;
        } else if (cur->tag == PW_DICT) {
            arrays[0] = ((pw_dict *)cur)->keys; arrays[1] = ((pw_dict *)cur)->values;
            n = ((pw_dict *)cur)->len;
        } else if (cur->tag == PW_INST) {
            pw_inst *in = (pw_inst *)cur;
            for (uint32_t i = 0; i < in->cls->nfields; i++)
                if ((in->cls->ptr_fields >> i) & 1) one[n++] = in->f[i].p;
            arrays[0] = one;
        } else if (cur->tag == PW_EXC) {
            one[0] = ((pw_exc *)cur)->message; n = 1; arrays[0] = one;
        }
        for (int a = 0; a < 2; a++) {
            if (arrays[a] == NULL) continue;
            for (uint32_t i = 0; i < n; i++) {
                pw_obj *k = arrays[a][i];
                if (k == NULL || k->mark) continue;
                k->mark = 1;
                if (!pw_is_container(k)) continue;
                if (sp < 128) stack[sp++] = k;
                else pw_scan(k);
            }
        }
    }
}

static void pw_mark(pw_obj *o) {
    if (o == NULL || o->mark) return;
    o->mark = 1;
    if (pw_is_container(o)) pw_scan(o);
}

static void pw_free(pw_obj *o) {
    if (o->tag == PW_LIST || o->tag == PW_TUPLE) free(((pw_list *)o)->items);
    if (o->tag == PW_DICT || o->tag == PW_SET) {
        free(((pw_dict *)o)->keys); free(((pw_dict *)o)->values); free(((pw_dict *)o)->index);
    }
    if (o->sclass) {
        o->next = pw_free_small[o->sclass];
        pw_free_small[o->sclass] = o;
    } else {
        free(o);
    }
}

void pw_gc(void) {
    if (pw_since_gc < PW_GC_THRESHOLD) return;
    if (pw_roots) pw_roots(pw_mark);
    if (pw_err) pw_mark(&pw_err->h);
    pw_obj **link = &pw_heap;
    size_t live = 0;
    while (*link) {
        pw_obj *o = *link;
        if (o->mark) { o->mark = 0; live++; link = &o->next; }
        else { *link = o->next; pw_free(o); }
    }
    pw_live_bytes = live;
    pw_since_gc = 0;
}

/* -- growable byte buffer ---------------------------------------------------- */

typedef struct { char *data; size_t len, cap; } pw_buf;

static void buf_put(pw_buf *b, const char *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        b->data = realloc(b->data, cap);
        if (b->data == NULL) pw_fatal("out of memory");
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}
static void buf_puts(pw_buf *b, const char *s) { buf_put(b, s, strlen(s)); }
static void buf_obj(pw_buf *b, pw_obj *s) { buf_put(b, ((pw_str *)s)->data, ((pw_str *)s)->len); }
static pw_obj *buf_done(pw_buf *b, uint8_t tag) {
    pw_obj *s = pw_str_new(b->data ? b->data : "", b->len, tag);
    free(b->data);
    return s;
}

/* -- exceptions --------------------------------------------------------------- */

void pw_raise(const pw_exc_type *type, pw_obj *message) {
    pw_exc *e = pw_alloc(sizeof(pw_exc), PW_EXC);
    e->type = type;
    e->message = message;
    pw_err = e;
}

void pw_raise_c(const pw_exc_type *type, const char *message) {
    pw_raise(type, pw_str_new(message, strlen(message), PW_STR));
}

void pw_tb_add(const char *file, const char *func, int line) {
    if (pw_err == NULL) return;
    int n = pw_err->nframes;
    if (n < PW_TB_MAX) {
        pw_err->frames[n] = (pw_frame){file, func, line};
        pw_err->nframes = n + 1;
    }
}

int pw_exc_matches(const pw_exc_type *type) {
    for (const pw_exc_type *t = pw_err ? pw_err->type : NULL; t; t = t->base)
        if (t == type) return 1;
    return 0;
}

pw_obj *pw_format_exception(pw_exc *exc) {
    pw_buf b = {0};
    char line[24];
    if (exc->nframes) buf_puts(&b, "Traceback (most recent call last):\n");
    for (int i = exc->nframes - 1; i >= 0; i--) {
        buf_puts(&b, "  File \"");
        buf_puts(&b, exc->frames[i].file);
        buf_puts(&b, "\", line ");
        snprintf(line, sizeof line, "%d", exc->frames[i].line);
        buf_puts(&b, line);
        buf_puts(&b, ", in ");
        buf_puts(&b, exc->frames[i].func);
        buf_puts(&b, "\n");
    }
    buf_puts(&b, exc->type->name);
    pw_obj *message = exc->message ? pw_str_of(&exc->h) : NULL;
    if (message && ((pw_str *)message)->len) {
        buf_puts(&b, ": ");
        buf_obj(&b, message);
    }
    /* the SDK logs "".join(traceback.format_exception(exc)).rstrip() */
    while (b.len && (b.data[b.len - 1] == ' ' || (b.data[b.len - 1] >= '\t' && b.data[b.len - 1] <= '\r'))) b.len--;
    return buf_done(&b, PW_STR);
}

/* -- ints -------------------------------------------------------------------- */

static int64_t overflow(void) {
    pw_raise_c(&pw_OverflowError, "int result does not fit in 64 bits (compact backend)");
    return 0;
}
int64_t pw_int_add(int64_t a, int64_t b) { int64_t r; return __builtin_add_overflow(a, b, &r) ? overflow() : r; }
int64_t pw_int_sub(int64_t a, int64_t b) { int64_t r; return __builtin_sub_overflow(a, b, &r) ? overflow() : r; }
int64_t pw_int_mul(int64_t a, int64_t b) { int64_t r; return __builtin_mul_overflow(a, b, &r) ? overflow() : r; }
int64_t pw_int_neg(int64_t a) { return a == INT64_MIN ? overflow() : -a; }

int64_t pw_int_floordiv(int64_t a, int64_t b) {
    if (b == 0) { pw_raise_c(&pw_ZeroDivisionError, "integer division or modulo by zero"); return 0; }
    if (a == INT64_MIN && b == -1) return overflow();
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;  /* Python floors */
    return q;
}

int64_t pw_int_mod(int64_t a, int64_t b) {
    if (b == 0) { pw_raise_c(&pw_ZeroDivisionError, "integer division or modulo by zero"); return 0; }
    if (b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;  /* the sign of the divisor */
    return r;
}

int64_t pw_int_from_str(pw_obj *s) {
    pw_str *t = (pw_str *)s;
    const char *p = t->data, *end = t->data + t->len;
    while (p < end && (*p == ' ' || (*p >= '\t' && *p <= '\r'))) p++;
    while (end > p && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r'))) end--;
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) neg = *p++ == '-';
    uint64_t v = 0;
    int digits = 0, last_us = 1;
    for (; p < end; p++) {
        if (*p == '_' && !last_us && p + 1 < end) { last_us = 1; continue; }
        if (*p < '0' || *p > '9') { digits = 0; break; }
        last_us = 0;
        if (v > (UINT64_MAX - 9) / 10) return overflow();
        v = v * 10 + (uint64_t)(*p - '0');
        digits++;
    }
    if (!digits || last_us) {
        pw_obj *r = pw_repr_of(s);
        pw_buf b = {0};
        buf_puts(&b, "invalid literal for int() with base 10: ");
        buf_obj(&b, r);
        pw_raise(&pw_ValueError, buf_done(&b, PW_STR));
        return 0;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return overflow();
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

int64_t pw_int_from_float(double v) {
    if (isnan(v)) { pw_raise_c(&pw_ValueError, "cannot convert float NaN to integer"); return 0; }
    if (isinf(v)) { pw_raise_c(&pw_OverflowError, "cannot convert float infinity to integer"); return 0; }
    if (v >= 9223372036854775808.0 || v < -9223372036854775808.0) return overflow();
    return (int64_t)v;
}
int64_t pw_int_abs(int64_t v) { return v < 0 ? pw_int_neg(v) : v; }
int64_t pw_int_min(int64_t a, int64_t b) { return b < a ? b : a; }
int64_t pw_int_max(int64_t a, int64_t b) { return b > a ? b : a; }
double pw_float_div(double a, double b) {
    if (b == 0.0) { pw_raise_c(&pw_ZeroDivisionError, "division by zero"); return 0; }
    return a / b;
}

pw_obj *pw_box_int(int64_t v) {
    pw_int *o = pw_alloc(sizeof(pw_int), PW_INT);
    o->v = v;
    return &o->h;
}
pw_obj *pw_box_float(double v) {
    pw_float *o = pw_alloc(sizeof(pw_float), PW_FLOAT);
    o->v = v;
    return &o->h;
}
pw_obj *pw_box_bool(int v) { return v ? &pw_true.h : &pw_false.h; }

/* -- str and bytes -------------------------------------------------------------- */

pw_obj *pw_str_new(const char *data, size_t len, uint8_t tag) {
    pw_str *s = pw_alloc(sizeof(pw_str) + len + 1, tag);
    char *d = (char *)(s + 1);
    if (len) memcpy(d, data, len);
    d[len] = 0;
    s->len = (uint32_t)len;
    s->data = d;
    return &s->h;
}

pw_obj *pw_str_concat(pw_obj *a, pw_obj *b) {
    pw_obj *parts[2] = {a, b};
    return pw_str_join_n(2, parts);
}

pw_obj *pw_str_join_n(int n, pw_obj **parts) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += ((pw_str *)parts[i])->len;
    pw_str *s = pw_alloc(sizeof(pw_str) + len + 1, n ? parts[0]->tag : PW_STR);
    char *d = (char *)(s + 1);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        pw_str *part = (pw_str *)parts[i];
        memcpy(d + at, part->data, part->len);
        at += part->len;
    }
    d[len] = 0;
    s->len = (uint32_t)len;
    s->data = d;
    return &s->h;
}

int pw_str_eq(pw_obj *a, pw_obj *b) {
    pw_str *x = (pw_str *)a, *y = (pw_str *)b;
    return x->len == y->len && memcmp(x->data, y->data, x->len) == 0;
}

int pw_str_cmp(pw_obj *a, pw_obj *b) {
    /* UTF-8 byte order is code point order */
    pw_str *x = (pw_str *)a, *y = (pw_str *)b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    if (c) return c < 0 ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

pw_obj *pw_str_of_int(int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return pw_str_new(tmp, (size_t)n, PW_STR);
}

pw_obj *pw_str_of_bool(int v) { return v ? pw_str_new("True", 4, PW_STR) : pw_str_new("False", 5, PW_STR); }

/* Scientific digits of v at `prec` significant digits, nudged by `step` units
 * in the last place (0, +1 or -1); returns strtod of the result. */
static double float_digits(double v, int prec, int step, char *digits, int *nd, int *exp) {
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, fabs(v));
    int n = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++) if (*p != '.') digits[n++] = *p;
    int e = atoi(p + 1);
    if (step > 0) {
        int i = n - 1;
        while (i >= 0 && digits[i] == '9') digits[i--] = '0';
        if (i >= 0) digits[i]++;
        else { memmove(digits + 1, digits, (size_t)n - 1); digits[0] = '1'; e++; }
    } else if (step < 0) {
        int i = n - 1;
        while (i >= 0 && digits[i] == '0') digits[i--] = '9';
        if (i >= 0) digits[i]--;
        if (digits[0] == '0' && n > 1) { memmove(digits, digits + 1, (size_t)n - 1); digits[n - 1] = '9'; e--; }
    }
    *nd = n;
    *exp = e;
    int o = 0;
    tmp[o++] = digits[0];
    if (n > 1) { tmp[o++] = '.'; for (int i = 1; i < n; i++) tmp[o++] = digits[i]; }
    snprintf(tmp + o, sizeof tmp - (size_t)o, "e%d", e);
    double r = strtod(tmp, NULL);
    return v < 0 ? -r : r;
}

/* repr(float) as Python writes it: the shortest digits that read back the same
 * and, among those, the closest to v. At a power of two the correctly rounded
 * digits may miss while the next ones up read back (2**-24 -> ...063e-08). */
pw_obj *pw_str_of_float(double v) {
    char out[48];
    if (isnan(v)) return pw_str_new("nan", 3, PW_STR);
    if (isinf(v)) return v > 0 ? pw_str_new("inf", 3, PW_STR) : pw_str_new("-inf", 4, PW_STR);
    char digits[24];
    int nd = 0, exp = 0, neg = signbit(v) != 0;
    for (int prec = 1; prec <= 17; prec++) {
        double r = float_digits(v, prec, 0, digits, &nd, &exp);
        if (r == v) break;
        int toward = fabs(r) < fabs(v) ? 1 : -1;
        if (prec < 17 && float_digits(v, prec, toward, digits, &nd, &exp) == v) break;
    }
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) out[o++] = digits[i];
            else out[o++] = '0';
        } else {
            out[o++] = '0'; out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        }
    } else {
        out[o++] = digits[0];
        if (nd > 1) { out[o++] = '.'; for (int i = 1; i < nd; i++) out[o++] = digits[i]; }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    return pw_str_new(out, (size_t)o, PW_STR);
}

/* str.isprintable() of one code point, from the generated run-length table. */
static int cp_printable(uint32_t cp) {
    uint32_t at = 0;
    int printable = 1;
    for (size_t i = 0; i < PW_PRINTABLE_RUNS_LEN;) {
        uint32_t n = 0;
        int shift = 0;
        unsigned char byte;
        do { byte = pw_printable_runs[i++]; n |= (uint32_t)(byte & 0x7f) << shift; shift += 7; } while (byte & 0x80);
        if (cp < at + n) return printable;
        at += n;
        printable = !printable;
    }
    return 0;
}

/* One code point of well-formed UTF-8 at s[*i] (strings are decoded strictly,
 * so the input is well formed; a stray byte is taken as itself). */
static uint32_t utf8_next(const unsigned char *s, uint32_t len, uint32_t *i) {
    unsigned char c = s[*i];
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (extra && *i + (uint32_t)extra >= len) extra = 0;
    uint32_t cp = extra == 0 ? c : extra == 1 ? c & 0x1fu : extra == 2 ? c & 0x0fu : c & 0x07u;
    for (int k = 1; k <= extra; k++) cp = (cp << 6) | (s[*i + (uint32_t)k] & 0x3fu);
    *i += 1u + (uint32_t)extra;
    return cp;
}

/* repr(str) / repr(bytes) exactly as CPython writes them: the quote chosen
 * by which quotes occur, non-printable code points escaped as \xNN, \uNNNN
 * or \UNNNNNNNN (str.isprintable), bytes >= 0x80 always \xNN. */
static void repr_str(pw_buf *b, pw_str *s, int is_bytes) {
    int has_sq = memchr(s->data, '\'', s->len) != NULL, has_dq = memchr(s->data, '"', s->len) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    const unsigned char *d = (const unsigned char *)s->data;
    if (is_bytes) buf_put(b, "b", 1);
    buf_put(b, &q, 1);
    for (uint32_t i = 0; i < s->len;) {
        uint32_t start = i;
        uint32_t c = is_bytes ? d[i++] : utf8_next(d, s->len, &i);
        char esc[12];
        if (c == (unsigned char)q || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; buf_put(b, esc, 2); }
        else if (c == '\n') buf_puts(b, "\\n");
        else if (c == '\r') buf_puts(b, "\\r");
        else if (c == '\t') buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f || (is_bytes && c >= 0x80) || (!is_bytes && c >= 0x80 && !cp_printable(c))) {
            if (c < 0x100) snprintf(esc, sizeof esc, "\\x%02x", (unsigned)c);
            else if (c < 0x10000) snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
            else snprintf(esc, sizeof esc, "\\U%08x", (unsigned)c);
            buf_puts(b, esc);
        } else buf_put(b, (const char *)d + start, i - start);
    }
    buf_put(b, &q, 1);
}

static void repr_into(pw_buf *b, pw_obj *v, int depth) {
    if (depth > 64) { buf_puts(b, "..."); return; }
    switch (v->tag) {
    case PW_STR: repr_str(b, (pw_str *)v, 0); return;
    case PW_BYTES: repr_str(b, (pw_str *)v, 1); return;
    case PW_LIST: case PW_TUPLE: {
        pw_list *l = (pw_list *)v;
        int tuple = v->tag == PW_TUPLE;
        buf_puts(b, tuple ? "(" : "[");
        for (uint32_t i = 0; i < l->len; i++) {
            if (i) buf_puts(b, ", ");
            repr_into(b, l->items[i], depth + 1);
        }
        buf_puts(b, tuple ? (l->len == 1 ? ",)" : ")") : "]");
        return;
    }
    case PW_SET: {
        pw_dict *d = (pw_dict *)v;
        if (!d->len) { buf_puts(b, "set()"); return; }
        buf_puts(b, "{");
        for (uint32_t i = 0; i < d->len; i++) {
            if (i) buf_puts(b, ", ");
            repr_into(b, d->keys[i], depth + 1);
        }
        buf_puts(b, "}");
        return;
    }
    case PW_EXC: {
        pw_exc *e = (pw_exc *)v;
        const char *name = strrchr(e->type->name, '.');
        buf_puts(b, name ? name + 1 : e->type->name);
        buf_puts(b, "(");
        if (e->message) repr_into(b, e->message, depth + 1);
        buf_puts(b, ")");
        return;
    }
    case PW_DICT: {
        pw_dict *d = (pw_dict *)v;
        buf_puts(b, "{");
        for (uint32_t i = 0; i < d->len; i++) {
            if (i) buf_puts(b, ", ");
            repr_into(b, d->keys[i], depth + 1);
            buf_puts(b, ": ");
            repr_into(b, d->values[i], depth + 1);
        }
        buf_puts(b, "}");
        return;
    }
    default: {
        pw_obj *s = pw_str_of(v);
        if (s) buf_obj(b, s);
    }
    }
}

pw_obj *pw_repr_of(pw_obj *v) {
    pw_buf b = {0};
    repr_into(&b, v, 0);
    return buf_done(&b, PW_STR);
}

pw_native_fn pw_native_of(pw_obj *v) {
    if (v->tag != PW_INST || ((pw_inst *)v)->cls->fail_open != PW_NATIVE) return NULL;
    return (pw_native_fn)((pw_inst *)v)->cls->slots[0];
}

pw_obj *pw_str_of(pw_obj *v) {
    pw_native_fn native = pw_native_of(v);
    if (native) return native(v, "__repr__", 0, NULL);
    switch (v->tag) {
    case PW_STR: return v;
    case PW_NONE: return pw_str_new("None", 4, PW_STR);
    case PW_BOOL: return pw_str_of_bool((int)((pw_int *)v)->v);
    case PW_INT: return pw_str_of_int(((pw_int *)v)->v);
    case PW_FLOAT: return pw_str_of_float(((pw_float *)v)->v);
    case PW_EXC: {
        pw_exc *e = (pw_exc *)v;
        if (e->message == NULL) return pw_str_new("", 0, PW_STR);
        for (const pw_exc_type *t = e->type; t; t = t->base)  /* KeyError.__str__ is repr() of its key */
            if (t == &pw_KeyError) return pw_repr_of(e->message);
        return pw_str_of(e->message);
    }
    case PW_INST: {
        pw_buf b = {0};
        buf_puts(&b, "<");
        buf_puts(&b, ((pw_inst *)v)->cls->name);
        buf_puts(&b, " object>");
        return buf_done(&b, PW_STR);
    }
    default: return pw_repr_of(v);
    }
}

/* Strict UTF-8 validation, as bytes.decode() does it. */
static long utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if ((c >> 5) == 6) { k = 1; cp = c & 0x1f; }
        else if ((c >> 4) == 14) { k = 2; cp = c & 0x0f; }
        else if ((c >> 3) == 30) { k = 3; cp = c & 0x07; }
        else return (long)i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return (long)i;
        i += k + 1;
    }
    return -1;
}

/* The invalid subpart of UTF-8 at s[i] (CPython's decoder): its length, and why. */
static size_t utf8_bad(const unsigned char *s, size_t n, size_t i, const char **why) {
    unsigned c = s[i], lo = 0x80, hi = 0xbf;
    size_t need = 0, j = 1;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    *why = "invalid start byte";
    if (!need) return 1;
    for (; j <= need; j++) {
        if (i + j >= n) { *why = "unexpected end of data"; return j; }
        unsigned d = s[i + j];
        if (j == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xbf)) { *why = "invalid continuation byte"; return j; }
    }
    return 0;  /* valid */
}

pw_obj *pw_bytes_decode(pw_obj *bytes) {
    pw_str *b = (pw_str *)bytes;
    long bad = utf8_check((const unsigned char *)b->data, b->len);
    if (bad >= 0) {
        const char *why;
        size_t len = utf8_bad((const unsigned char *)b->data, b->len, (size_t)bad, &why);
        char msg[160];
        if (len <= 1)
            snprintf(msg, sizeof msg, "'utf-8' codec can't decode byte 0x%02x in position %ld: %s",
                     (unsigned char)b->data[bad], bad, why);
        else
            snprintf(msg, sizeof msg, "'utf-8' codec can't decode bytes in position %ld-%ld: %s", bad,
                     bad + (long)len - 1, why);
        pw_raise_c(&pw_UnicodeDecodeError, msg);  /* a ValueError */
        return NULL;
    }
    return pw_str_new(b->data, b->len, PW_STR);
}

/* errors="replace" as CPython: each maximal invalid subpart (a bad start byte, or a valid
   start whose continuation breaks off) becomes one U+FFFD. */
pw_obj *pw_bytes_decode_replace(pw_obj *bytes) {
    pw_str *b = (pw_str *)bytes;
    const unsigned char *s = (const unsigned char *)b->data;
    size_t n = b->len, i = 0;
    if (utf8_check(s, n) < 0) return pw_str_new(b->data, n, PW_STR);
    pw_buf out = {0};
    while (i < n) {
        const char *why;
        size_t bad = s[i] < 0x80 ? 0 : utf8_bad(s, n, i, &why);
        if (bad == 0) {  /* one valid character */
            size_t len = s[i] < 0x80 ? 1 : s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : 4;
            buf_put(&out, (const char *)s + i, len);
            i += len;
            continue;
        }
        buf_put(&out, "\xef\xbf\xbd", 3);
        i += bad;
    }
    return buf_done(&out, PW_STR);
}

static int64_t utf8_count(const char *s, size_t n) {
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

int64_t pw_len(pw_obj *v) {
    pw_native_fn native = pw_native_of(v);
    if (native) { pw_obj *n = native(v, "__len__", 0, NULL); return n ? ((pw_int *)n)->v : 0; }
    switch (v->tag) {
    case PW_STR: return utf8_count(((pw_str *)v)->data, ((pw_str *)v)->len);
    case PW_BYTES: return ((pw_str *)v)->len;
    case PW_LIST: case PW_TUPLE: return ((pw_list *)v)->len;
    case PW_DICT: case PW_SET: return ((pw_dict *)v)->len;
    default: {
        char msg[80];
        snprintf(msg, sizeof msg, "object of type '%s' has no len()", pw_type_name(v));
        pw_raise_c(&pw_TypeError, msg);
        return 0;
    }
    }
}

/* -- dynamic values ----------------------------------------------------------- */

const char *pw_type_name(pw_obj *v) {
    switch (v->tag) {
    case PW_NONE: return "NoneType";
    case PW_BOOL: return "bool";
    case PW_INT: return "int";
    case PW_FLOAT: return "float";
    case PW_STR: return "str";
    case PW_BYTES: return "bytes";
    case PW_LIST: return "list";
    case PW_DICT: return "dict";
    case PW_INST: return ((pw_inst *)v)->cls->name;
    case PW_TUPLE: return "tuple";
    case PW_SET: return "set";
    case PW_BOUND: return "method";
    case PW_EXC: { const char *n = strrchr(((pw_exc *)v)->type->name, '.'); return n ? n + 1 : ((pw_exc *)v)->type->name; }
    default: return "object";
    }
}

int pw_truthy(pw_obj *v) {
    pw_native_fn native = pw_native_of(v);
    if (native) { pw_obj *r = native(v, "__bool__", 0, NULL); return r ? r == &pw_true.h : 0; }
    switch (v->tag) {
    case PW_NONE: return 0;
    case PW_BOOL: case PW_INT: return ((pw_int *)v)->v != 0;
    case PW_FLOAT: return ((pw_float *)v)->v != 0.0;
    case PW_STR: case PW_BYTES: return ((pw_str *)v)->len != 0;
    case PW_LIST: case PW_TUPLE: return ((pw_list *)v)->len != 0;
    case PW_DICT: case PW_SET: return ((pw_dict *)v)->len != 0;
    default: return 1;
    }
}

static int is_num(pw_obj *v) { return v->tag == PW_BOOL || v->tag == PW_INT || v->tag == PW_FLOAT; }
static double num_val(pw_obj *v) { return v->tag == PW_FLOAT ? ((pw_float *)v)->v : (double)((pw_int *)v)->v; }

int pw_dyn_eq(pw_obj *a, pw_obj *b) {
    if (a == b) return 1;
    if (is_num(a) && is_num(b)) {
        if (a->tag != PW_FLOAT && b->tag != PW_FLOAT) return ((pw_int *)a)->v == ((pw_int *)b)->v;
        return num_val(a) == num_val(b);
    }
    if (a->tag != b->tag) return 0;
    switch (a->tag) {
    case PW_STR: case PW_BYTES: return pw_str_eq(a, b);
    case PW_SET: {
        pw_dict *x = (pw_dict *)a;
        if (x->len != ((pw_dict *)b)->len) return 0;
        for (uint32_t i = 0; i < x->len; i++) if (pw_dict_lookup(b, x->keys[i]) == NULL) return 0;
        return 1;
    }
    case PW_LIST: case PW_TUPLE: {
        pw_list *x = (pw_list *)a, *y = (pw_list *)b;
        if (x->len != y->len) return 0;
        for (uint32_t i = 0; i < x->len; i++) if (!pw_dyn_eq(x->items[i], y->items[i])) return 0;
        return 1;
    }
    case PW_DICT: {
        pw_dict *x = (pw_dict *)a;
        if (x->len != ((pw_dict *)b)->len) return 0;
        for (uint32_t i = 0; i < x->len; i++) {
            pw_obj *other = pw_dict_lookup(b, x->keys[i]);
            if (other == NULL || !pw_dyn_eq(x->values[i], other)) return 0;
        }
        return 1;
    }
    default: return 0;
    }
}

static void no_attribute(pw_obj *self, const char *name) {
    char msg[160];
    snprintf(msg, sizeof msg, "'%s' object has no attribute '%s'", pw_type_name(self), name);
    pw_raise_c(&pw_AttributeError, msg);
}

static void type_expected(const char *want, pw_obj *v) {
    char msg[120];
    snprintf(msg, sizeof msg, "expected %s, got %s (a JSON value used as %s)", want, pw_type_name(v), want);
    pw_raise_c(&pw_TypeError, msg);
}

pw_obj *pw_to_str(pw_obj *v) {
    if (v->tag == PW_STR) return v;
    type_expected("str", v);
    return NULL;
}
pw_obj *pw_to_bytes(pw_obj *v) {
    if (v->tag == PW_BYTES) return v;
    type_expected("bytes", v);
    return NULL;
}
int64_t pw_to_int(pw_obj *v) {
    if (v->tag == PW_INT || v->tag == PW_BOOL) return ((pw_int *)v)->v;
    type_expected("int", v);
    return 0;
}
double pw_to_float(pw_obj *v) {
    if (is_num(v)) return num_val(v);
    type_expected("float", v);
    return 0;
}
int pw_to_bool(pw_obj *v) {
    if (v->tag == PW_BOOL) return (int)((pw_int *)v)->v;
    type_expected("bool", v);
    return 0;
}

/* -- containers (dicts: insertion order, linear probe over keys for now) --------- */

pw_obj *pw_list_new(uint32_t cap) {
    pw_list *l = pw_alloc(sizeof(pw_list), PW_LIST);
    if (cap) {
        l->items = malloc(cap * sizeof(pw_obj *));
        if (l->items == NULL) pw_fatal("out of memory");
        l->cap = cap;
    }
    return &l->h;
}

void pw_list_append(pw_obj *list, pw_obj *item) {
    pw_list *l = (pw_list *)list;
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->items = realloc(l->items, l->cap * sizeof(pw_obj *));
        if (l->items == NULL) pw_fatal("out of memory");
    }
    l->items[l->len++] = item;
}

pw_obj *pw_dict_new(void) { return pw_alloc(sizeof(pw_dict), PW_DICT); }

/* A hash consistent with pw_dyn_eq: 1, True and 1.0 hash alike; containers by content. */
static uint64_t pw_hash(pw_obj *v) {
    uint64_t h = 1469598103934665603ull;
    switch (v->tag) {
    case PW_STR: case PW_BYTES: {
        pw_str *s = (pw_str *)v;
        for (uint32_t i = 0; i < s->len; i++) h = (h ^ (unsigned char)s->data[i]) * 1099511628211ull;
        return h;
    }
    case PW_INT: case PW_BOOL: return (uint64_t)((pw_int *)v)->v * 0x9e3779b97f4a7c15ull;
    case PW_FLOAT: {
        double f = ((pw_float *)v)->v;
        if (f >= -9.2e18 && f <= 9.2e18 && f == (double)(int64_t)f) return (uint64_t)(int64_t)f * 0x9e3779b97f4a7c15ull;
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        return bits * 0x9e3779b97f4a7c15ull;
    }
    case PW_NONE: return 0x1234567ull;
    case PW_LIST: case PW_TUPLE: {
        pw_list *l = (pw_list *)v;
        for (uint32_t i = 0; i < l->len; i++) h = (h ^ pw_hash(l->items[i])) * 1099511628211ull;
        return h;
    }
    case PW_DICT: case PW_SET: {  /* order-independent, as their equality */
        pw_dict *d = (pw_dict *)v;
        uint64_t sum = 0;
        for (uint32_t i = 0; i < d->len; i++) sum += pw_hash(d->keys[i]);
        return sum;
    }
    default: return (uint64_t)(uintptr_t)v * 0x9e3779b97f4a7c15ull;
    }
}

#define PW_DICT_INDEX_MIN 8

static void dict_index_put(pw_dict *d, uint32_t pos) {
    uint32_t mask = d->icap - 1;
    for (uint32_t i = (uint32_t)(pw_hash(d->keys[pos]) >> 32) & mask;; i = (i + 1) & mask) {
        if (d->index[i] == 0) { d->index[i] = pos + 1; return; }
    }
}

static void dict_reindex(pw_dict *d) {
    free(d->index);
    d->icap = 16;
    while (d->icap < d->len * 2 + 2) d->icap *= 2;
    d->index = calloc(d->icap, sizeof(uint32_t));
    if (d->index == NULL) pw_fatal("out of memory");
    for (uint32_t i = 0; i < d->len; i++) dict_index_put(d, i);
}

void pw_dict_drop_index(pw_obj *dict) {
    pw_dict *d = (pw_dict *)dict;
    free(d->index);
    d->index = NULL;
    d->icap = 0;
}

static int64_t dict_index(pw_dict *d, pw_obj *key) {
    if (d->index == NULL) {
        for (uint32_t i = 0; i < d->len; i++) if (pw_dyn_eq(d->keys[i], key)) return i;
        return -1;
    }
    uint32_t mask = d->icap - 1;
    for (uint32_t i = (uint32_t)(pw_hash(key) >> 32) & mask;; i = (i + 1) & mask) {
        uint32_t at = d->index[i];
        if (at == 0) return -1;
        if (pw_dyn_eq(d->keys[at - 1], key)) return at - 1;
    }
}

pw_obj *pw_dict_lookup(pw_obj *dict, pw_obj *key) {
    int64_t i = dict_index((pw_dict *)dict, key);
    return i < 0 ? NULL : ((pw_dict *)dict)->values[i];
}

void pw_dict_set(pw_obj *dict, pw_obj *key, pw_obj *value) {
    pw_dict *d = (pw_dict *)dict;
    int64_t i = dict_index(d, key);
    if (i >= 0) { d->values[i] = value; return; }
    if (d->len == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4;
        d->keys = realloc(d->keys, d->cap * sizeof(pw_obj *));
        d->values = realloc(d->values, d->cap * sizeof(pw_obj *));
        if (d->keys == NULL || d->values == NULL) pw_fatal("out of memory");
    }
    d->keys[d->len] = key;
    d->values[d->len++] = value;
    if (d->len < PW_DICT_INDEX_MIN) return;
    if (d->index == NULL || d->len * 2 + 2 > d->icap) dict_reindex(d);
    else dict_index_put(d, d->len - 1);
}

/* -- JSON (json.loads: the messages and positions of CPython's decoder) --------- */

typedef struct { const char *s; size_t n, i; int depth; } jp;

static void json_fail(jp *p, const char *what, size_t pos) {
    int64_t line = 1;
    size_t last_nl = 0;
    int seen_nl = 0;
    for (size_t k = 0; k < pos && k < p->n; k++)
        if (p->s[k] == '\n') { line++; last_nl = k; seen_nl = 1; }
    int64_t chr = utf8_count(p->s, pos);
    int64_t col = seen_nl ? utf8_count(p->s + last_nl + 1, pos - last_nl - 1) + 1 : chr + 1;
    char msg[200];
    snprintf(msg, sizeof msg, "%s: line %lld column %lld (char %lld)", what, (long long)line,
             (long long)col, (long long)chr);
    pw_raise_c(&pw_JSONDecodeError, msg);
}

static void jws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static void put_utf8(pw_buf *b, uint32_t cp) {
    char u[4];
    if (cp < 0x80) { u[0] = (char)cp; buf_put(b, u, 1); }
    else if (cp < 0x800) { u[0] = (char)(0xc0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3f)); buf_put(b, u, 2); }
    else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[2] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, u, 4);
    }
}

static int hex4(jp *p, size_t at, uint32_t *out) {
    uint32_t v = 0;
    if (at + 4 > p->n) return 0;
    for (size_t k = at; k < at + 4; k++) {
        char c = p->s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static pw_obj *jstring(jp *p) {
    size_t start = p->i++;  /* at the opening quote */
    pw_buf b = {0};
    for (;;) {
        if (p->i >= p->n) { free(b.data); json_fail(p, "Unterminated string starting at", start); return NULL; }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; return buf_done(&b, PW_STR); }
        if (c < 0x20) { free(b.data); json_fail(p, "Invalid control character at", p->i); return NULL; }
        if (c != '\\') { buf_put(&b, (const char *)&c, 1); p->i++; continue; }
        size_t esc = p->i;
        if (p->i + 1 >= p->n) { free(b.data); json_fail(p, "Unterminated string starting at", start); return NULL; }
        char e = p->s[p->i + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            buf_put(&b, &map[simple - "\"\\/bfnrt"], 1);
            p->i += 2;
            continue;
        }
        if (e != 'u') { free(b.data); json_fail(p, "Invalid \\escape", esc); return NULL; }
        uint32_t cp;
        if (!hex4(p, p->i + 2, &cp)) { free(b.data); json_fail(p, "Invalid \\uXXXX escape", esc + 1); return NULL; }
        p->i += 6;
        uint32_t lo;
        if (cp >= 0xd800 && cp < 0xdc00 && p->i + 1 < p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u' &&
            hex4(p, p->i + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p->i += 6;
        }
        put_utf8(&b, cp);  /* a lone surrogate is kept, encoded as CPython's str holds it */
    }
}

static pw_obj *jvalue(jp *p);

static pw_obj *jnumber(jp *p) {
    size_t start = p->i, k = p->i;
    if (k < p->n && p->s[k] == '-') k++;
    if (k >= p->n || p->s[k] < '0' || p->s[k] > '9') { json_fail(p, "Expecting value", start); return NULL; }
    if (p->s[k] == '0') k++;
    else while (k < p->n && p->s[k] >= '0' && p->s[k] <= '9') k++;
    int is_float = 0;
    if (k + 1 < p->n && p->s[k] == '.' && p->s[k + 1] >= '0' && p->s[k + 1] <= '9') {
        is_float = 1;
        k++;
        while (k < p->n && p->s[k] >= '0' && p->s[k] <= '9') k++;
    }
    if (k < p->n && (p->s[k] == 'e' || p->s[k] == 'E')) {
        size_t m = k + 1;
        if (m < p->n && (p->s[m] == '+' || p->s[m] == '-')) m++;
        if (m < p->n && p->s[m] >= '0' && p->s[m] <= '9') {
            while (m < p->n && p->s[m] >= '0' && p->s[m] <= '9') m++;
            k = m;
            is_float = 1;
        }
    }
    char tmp[64];
    size_t len = k - start;
    p->i = k;
    if (is_float) {
        char *heap = len < sizeof tmp ? tmp : malloc(len + 1);
        memcpy(heap, p->s + start, len);
        heap[len] = 0;
        double v = strtod(heap, NULL);
        if (heap != tmp) free(heap);
        return pw_box_float(v);
    }
    uint64_t v = 0;
    int neg = p->s[start] == '-';
    for (size_t j = start + (size_t)neg; j < k; j++) {
        if (v > (UINT64_MAX - 9) / 10) { overflow(); return NULL; }
        v = v * 10 + (uint64_t)(p->s[j] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) { overflow(); return NULL; }
    return pw_box_int(neg ? (int64_t)(0 - v) : (int64_t)v);
}

static int jword(jp *p, const char *w) {
    size_t n = strlen(w);
    if (p->i + n <= p->n && memcmp(p->s + p->i, w, n) == 0) { p->i += n; return 1; }
    return 0;
}

static pw_obj *jvalue(jp *p) {
    if (p->i >= p->n) { json_fail(p, "Expecting value", p->i); return NULL; }
    if (++p->depth > 200) { pw_raise_c(&pw_RecursionError, "maximum recursion depth exceeded while decoding a JSON document"); return NULL; }
    pw_obj *result = NULL;
    char c = p->s[p->i];
    if (c == '"') result = jstring(p);
    else if (c == '{') {
        pw_obj *d = pw_dict_new();
        p->i++;
        jws(p);
        if (p->i < p->n && p->s[p->i] == '}') { p->i++; result = d; goto out; }
        for (;;) {
            if (p->i >= p->n || p->s[p->i] != '"') {
                json_fail(p, "Expecting property name enclosed in double quotes", p->i);
                goto out;
            }
            pw_obj *key = jstring(p);
            if (key == NULL) goto out;
            jws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { json_fail(p, "Expecting ':' delimiter", p->i); goto out; }
            p->i++;
            jws(p);
            pw_obj *value = jvalue(p);
            if (value == NULL) goto out;
            pw_dict_set(d, key, value);
            jws(p);
            if (p->i < p->n && p->s[p->i] == '}') { p->i++; result = d; goto out; }
            if (p->i >= p->n || p->s[p->i] != ',') { json_fail(p, "Expecting ',' delimiter", p->i); goto out; }
            p->i++;
            jws(p);
        }
    } else if (c == '[') {
        pw_obj *l = pw_list_new(0);
        p->i++;
        jws(p);
        if (p->i < p->n && p->s[p->i] == ']') { p->i++; result = l; goto out; }
        for (;;) {
            pw_obj *value = jvalue(p);
            if (value == NULL) goto out;
            pw_list_append(l, value);
            jws(p);
            if (p->i < p->n && p->s[p->i] == ']') { p->i++; result = l; goto out; }
            if (p->i >= p->n || p->s[p->i] != ',') { json_fail(p, "Expecting ',' delimiter", p->i); goto out; }
            p->i++;
            jws(p);
        }
    } else if (jword(p, "null")) result = PW_NONE_V;
    else if (jword(p, "true")) result = &pw_true.h;
    else if (jword(p, "false")) result = &pw_false.h;
    else if (jword(p, "NaN")) result = pw_box_float(NAN);
    else if (jword(p, "Infinity")) result = pw_box_float(INFINITY);
    else if (jword(p, "-Infinity")) result = pw_box_float(-INFINITY);
    else result = jnumber(p);
out:
    p->depth--;
    return pw_err ? NULL : result;
}

pw_obj *pw_json_loads_any(pw_obj *text) {
    if (text->tag == PW_STR || text->tag == PW_BYTES) return pw_json_loads(text);
    char msg[120];
    snprintf(msg, sizeof msg, "the JSON object must be str, bytes or bytearray, not %s", pw_type_name(text));
    pw_raise_c(&pw_TypeError, msg);
    return NULL;
}

pw_obj *pw_json_loads(pw_obj *text) {
    pw_str *t = (pw_str *)text;
    if (t->h.tag == PW_BYTES && utf8_check((const unsigned char *)t->data, t->len) >= 0) {
        pw_bytes_decode(text);
        return NULL;
    }
    jp p = {t->data, t->len, 0, 0};
    /* json.loads(bytes) drops a UTF-8 byte-order mark; a str keeps it (an error) */
    if (t->h.tag == PW_BYTES && p.n >= 3 && memcmp(p.s, "\xef\xbb\xbf", 3) == 0) p.i = 3;
    else if (t->h.tag == PW_STR && p.n >= 3 && memcmp(p.s, "\xef\xbb\xbf", 3) == 0) {
        pw_raise_c(&pw_JSONDecodeError, "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)");
        return NULL;
    }
    jws(&p);
    pw_obj *v = jvalue(&p);
    if (v == NULL) return NULL;
    jws(&p);
    if (p.i != p.n) { json_fail(&p, "Extra data", p.i); return NULL; }
    return v;
}

/* -- instances ---------------------------------------------------------------- */

pw_obj *pw_inst_new(const pw_class *cls) {
    pw_inst *o = pw_alloc(sizeof(pw_inst) + cls->nfields * sizeof(pw_field), PW_INST);
    o->cls = cls;
    return &o->h;
}

int pw_is_subclass(const pw_class *cls, const pw_class *base) {
    for (; cls; cls = cls->base) if (cls == base) return 1;
    return 0;
}

void pw_attr_error(pw_obj *self, const char *name) { no_attribute(self, name); }

/* -- tuples, sets, iteration, operators and methods of dynamic values ----------- */

static int is_int(pw_obj *v) { return v->tag == PW_INT || v->tag == PW_BOOL; }
static int is_seq(pw_obj *v) { return v->tag == PW_LIST || v->tag == PW_TUPLE; }
static void type_error2(const char *fmt, const char *a, const char *b) {
    char msg[200];
    snprintf(msg, sizeof msg, fmt, a, b);
    pw_raise_c(&pw_TypeError, msg);
}

pw_obj *pw_list_of(uint32_t n, pw_obj **items) {
    pw_obj *l = pw_list_new(n);
    for (uint32_t i = 0; i < n; i++) pw_list_append(l, items[i]);
    return l;
}
pw_obj *pw_tuple_new(uint32_t n, pw_obj **items) {
    pw_obj *t = pw_list_of(n, items);
    t->tag = PW_TUPLE;
    return t;
}
pw_obj *pw_set_of(uint32_t n, pw_obj **items) {
    pw_obj *s = pw_dict_new();
    s->tag = PW_SET;
    for (uint32_t i = 0; i < n; i++) pw_dict_set(s, items[i], PW_NONE_V);
    return s;
}
pw_obj *pw_dict_of(uint32_t n, pw_obj **kv) {
    pw_obj *d = pw_dict_new();
    for (uint32_t i = 0; i < n; i++) pw_dict_set(d, kv[2 * i], kv[2 * i + 1]);
    return d;
}

/* byte offset of code point `index` of s (ASCII strings: the index itself) */
static uint32_t cp_offset(pw_str *s, int64_t index) {
    uint32_t at = 0;
    for (int64_t k = 0; k < index && at < s->len; k++) utf8_next((const unsigned char *)s->data, s->len, &at);
    return at;
}

static int norm_index(int64_t *i, int64_t len) {
    if (*i < 0) *i += len;
    return *i >= 0 && *i < len;
}

pw_obj *pw_dyn_getitem(pw_obj *self, pw_obj *key) {
    pw_native_fn native = pw_native_of(self);
    if (native) return native(self, "__getitem__", 1, &key);
    if (self->tag == PW_DICT) {
        pw_obj *v = pw_dict_lookup(self, key);
        if (v == NULL) pw_raise(&pw_KeyError, key);  /* str(KeyError(k)) is repr(k) */
        return v;
    }
    if (is_seq(self) && is_int(key)) {
        pw_list *l = (pw_list *)self;
        int64_t i = ((pw_int *)key)->v;
        if (!norm_index(&i, l->len)) {
            pw_raise_c(&pw_IndexError, self->tag == PW_TUPLE ? "tuple index out of range" : "list index out of range");
            return NULL;
        }
        return l->items[i];
    }
    if ((self->tag == PW_STR || self->tag == PW_BYTES) && is_int(key)) {
        pw_str *t = (pw_str *)self;
        int64_t i = ((pw_int *)key)->v;
        int64_t n = pw_len(self);
        if (!norm_index(&i, n)) {
            pw_raise_c(&pw_IndexError, self->tag == PW_STR ? "string index out of range" : "index out of range");
            return NULL;
        }
        if (self->tag == PW_BYTES) return pw_box_int((unsigned char)t->data[i]);
        uint32_t at = cp_offset(t, i), end = at;
        utf8_next((const unsigned char *)t->data, t->len, &end);
        return pw_str_new(t->data + at, end - at, PW_STR);
    }
    if (is_seq(self) || self->tag == PW_STR || self->tag == PW_BYTES) {
        type_error2("%s indices must be integers or slices, not %s", pw_type_name(self), pw_type_name(key));
        return NULL;
    }
    type_error2("'%s' object is not subscriptable%s", pw_type_name(self), "");
    return NULL;
}

void pw_dyn_setitem(pw_obj *self, pw_obj *key, pw_obj *value) {
    pw_native_fn native = pw_native_of(self);
    if (native) { pw_obj *kv[2] = {key, value}; native(self, "__setitem__", 2, kv); return; }
    if (self->tag == PW_DICT) { pw_dict_set(self, key, value); return; }
    if (self->tag == PW_LIST && is_int(key)) {
        pw_list *l = (pw_list *)self;
        int64_t i = ((pw_int *)key)->v;
        if (!norm_index(&i, l->len)) { pw_raise_c(&pw_IndexError, "list assignment index out of range"); return; }
        l->items[i] = value;
        return;
    }
    type_error2("'%s' object does not support item assignment%s", pw_type_name(self), "");
}

static int64_t slice_arg(pw_obj *v, int64_t dflt) { return v == PW_NONE_V ? dflt : ((pw_int *)v)->v; }

pw_obj *pw_dyn_slice(pw_obj *self, pw_obj *start_o, pw_obj *stop_o, pw_obj *step_o) {
    if ((start_o != PW_NONE_V && !is_int(start_o)) || (stop_o != PW_NONE_V && !is_int(stop_o)) ||
        (step_o != PW_NONE_V && !is_int(step_o))) {
        pw_raise_c(&pw_TypeError, "slice indices must be integers or None or have an __index__ method");
        return NULL;
    }
    int64_t len = pw_len(self);
    if (pw_err) return NULL;
    int64_t step = slice_arg(step_o, 1);
    if (step == 0) { pw_raise_c(&pw_ValueError, "slice step cannot be zero"); return NULL; }
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? len : len - 1;
    int64_t start = slice_arg(start_o, step > 0 ? 0 : len - 1), stop = slice_arg(stop_o, step > 0 ? len : -len - 1);
    if (start < 0) { start += len; if (start < lo) start = lo; } else if (start > hi) start = hi;
    if (stop < 0) { stop += len; if (stop < lo) stop = lo; } else if (stop > hi) stop = hi;
    if (self->tag == PW_STR || self->tag == PW_BYTES) {
        pw_str *t = (pw_str *)self;
        int ascii = self->tag == PW_BYTES || (int64_t)t->len == len;
        pw_buf b = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (ascii) { buf_put(&b, t->data + i, 1); continue; }
            uint32_t at = cp_offset(t, i), end = at;
            utf8_next((const unsigned char *)t->data, t->len, &end);
            buf_put(&b, t->data + at, end - at);
        }
        return buf_done(&b, self->tag);
    }
    if (is_seq(self)) {
        pw_list *l = (pw_list *)self;
        pw_obj *out = pw_list_new(0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) pw_list_append(out, l->items[i]);
        out->tag = self->tag;
        return out;
    }
    type_error2("'%s' object is not subscriptable%s", pw_type_name(self), "");
    return NULL;
}

static pw_obj *concat_seq(pw_obj *a, pw_obj *b) {
    pw_list *x = (pw_list *)a, *y = (pw_list *)b;
    pw_obj *out = pw_list_new(x->len + y->len);
    for (uint32_t i = 0; i < x->len; i++) pw_list_append(out, x->items[i]);
    for (uint32_t i = 0; i < y->len; i++) pw_list_append(out, y->items[i]);
    out->tag = a->tag;
    return out;
}

static const char *op_name(int op) {
    switch (op) {
    case '+': return "+"; case '-': return "-"; case '*': return "*"; case '&': return "&"; case '|': return "|";
    case '<': return "<"; case 'l': return "<="; case '>': return ">"; case 'g': return ">="; default: return "?";
    }
}

pw_obj *pw_dyn_binop(int op, pw_obj *a, pw_obj *b) {
    if (is_int(a) && is_int(b)) {
        int64_t x = ((pw_int *)a)->v, y = ((pw_int *)b)->v, r = 0;
        switch (op) {
        case '+': r = pw_int_add(x, y); break;
        case '-': r = pw_int_sub(x, y); break;
        case '*': r = pw_int_mul(x, y); break;
        case '&': r = x & y; break;
        case '|': r = x | y; break;
        }
        if (pw_err) return NULL;
        if ((op == '&' || op == '|') && a->tag == PW_BOOL && b->tag == PW_BOOL) return pw_box_bool((int)r);
        return pw_box_int(r);
    }
    if (is_num(a) && is_num(b) && (op == '+' || op == '-' || op == '*')) {
        double x = num_val(a), y = num_val(b);
        return pw_box_float(op == '+' ? x + y : op == '-' ? x - y : x * y);
    }
    if (op == '+' && a->tag == b->tag && (a->tag == PW_STR || a->tag == PW_BYTES)) return pw_str_concat(a, b);
    if (op == '+' && a->tag == b->tag && is_seq(a)) return concat_seq(a, b);
    if (a->tag == PW_SET && b->tag == PW_SET && (op == '-' || op == '&' || op == '|')) {
        pw_dict *x = (pw_dict *)a, *y = (pw_dict *)b;
        pw_obj *out = pw_set_of(0, NULL);
        for (uint32_t i = 0; i < x->len; i++) {
            int in_b = pw_dict_lookup(b, x->keys[i]) != NULL;
            if (op == '|' || (op == '-' && !in_b) || (op == '&' && in_b)) pw_dict_set(out, x->keys[i], PW_NONE_V);
        }
        if (op == '|') for (uint32_t i = 0; i < y->len; i++) pw_dict_set(out, y->keys[i], PW_NONE_V);
        return out;
    }
    if (op == '*' && is_int(b) && (is_seq(a) || a->tag == PW_STR || a->tag == PW_BYTES)) {
        int64_t n = ((pw_int *)b)->v;
        pw_obj *out = is_seq(a) ? pw_list_new(0) : pw_str_new("", 0, a->tag);
        for (int64_t k = 0; k < n; k++) out = is_seq(a) ? concat_seq(out, a) : pw_str_concat(out, a);
        out->tag = a->tag;
        return out;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "unsupported operand type(s) for %s: '%s' and '%s'", op_name(op), pw_type_name(a),
             pw_type_name(b));
    pw_raise_c(&pw_TypeError, msg);
    return NULL;
}

static int cmp_result(int op, int c) {
    return op == '<' ? c < 0 : op == 'l' ? c <= 0 : op == '>' ? c > 0 : c >= 0;
}

int pw_dyn_compare(int op, pw_obj *a, pw_obj *b) {
    if (is_int(a) && is_int(b)) {
        int64_t x = ((pw_int *)a)->v, y = ((pw_int *)b)->v;
        return cmp_result(op, x < y ? -1 : x > y);
    }
    if (is_num(a) && is_num(b)) {
        double x = num_val(a), y = num_val(b);
        return op == '<' ? x < y : op == 'l' ? x <= y : op == '>' ? x > y : x >= y;
    }
    if (a->tag == b->tag && (a->tag == PW_STR || a->tag == PW_BYTES)) return cmp_result(op, pw_str_cmp(a, b));
    if (a->tag == b->tag && is_seq(a)) {
        pw_list *x = (pw_list *)a, *y = (pw_list *)b;
        for (uint32_t i = 0; i < x->len && i < y->len; i++) {
            if (pw_dyn_eq(x->items[i], y->items[i])) continue;
            return pw_dyn_compare(op, x->items[i], y->items[i]);
        }
        return cmp_result(op, x->len < y->len ? -1 : x->len > y->len);
    }
    char msg[200];
    snprintf(msg, sizeof msg, "'%s' not supported between instances of '%s' and '%s'", op_name(op), pw_type_name(a),
             pw_type_name(b));
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

static pw_str *as_str(pw_obj *v) { return (pw_str *)v; }

static const char *str_find(pw_str *h, pw_str *n, uint32_t from) {
    if (n->len == 0) return h->data + from;
    for (uint32_t i = from; i + n->len <= h->len; i++)
        if (memcmp(h->data + i, n->data, n->len) == 0) return h->data + i;
    return NULL;
}

int pw_contains(pw_obj *c, pw_obj *item) {
    pw_native_fn native = pw_native_of(c);
    if (native) { pw_obj *r = native(c, "__contains__", 1, &item); return r ? pw_truthy(r) : 0; }
    switch (c->tag) {
    case PW_DICT: case PW_SET: return pw_dict_lookup(c, item) != NULL;
    case PW_LIST: case PW_TUPLE: {
        pw_list *l = (pw_list *)c;
        for (uint32_t i = 0; i < l->len; i++) if (pw_dyn_eq(l->items[i], item)) return 1;
        return 0;
    }
    case PW_STR: case PW_BYTES:
        if (item->tag == c->tag) return str_find(as_str(c), as_str(item), 0) != NULL;
        if (c->tag == PW_BYTES && is_int(item)) return memchr(as_str(c)->data, (int)((pw_int *)item)->v, as_str(c)->len) != NULL;
        type_error2("'in <%s>' requires %s as left operand", pw_type_name(c), c->tag == PW_STR ? "string" : "a bytes-like object");
        return 0;
    default:
        type_error2("argument of type '%s' is not iterable%s", pw_type_name(c), "");
        return 0;
    }
}

typedef struct { pw_obj h; pw_obj *of; uint32_t at, len0; } pw_iter_t;

pw_obj *pw_iter(pw_obj *v) {
    pw_native_fn native = pw_native_of(v);
    if (native) { v = native(v, "__iter__", 0, NULL); if (v == NULL) return NULL; }
    if (!(is_seq(v) || v->tag == PW_DICT || v->tag == PW_SET || v->tag == PW_STR || v->tag == PW_BYTES)) {
        type_error2("'%s' object is not iterable%s", pw_type_name(v), "");
        return NULL;
    }
    pw_iter_t *it = pw_alloc(sizeof(pw_iter_t), PW_ITER);
    it->of = v;
    it->len0 = v->tag == PW_DICT || v->tag == PW_SET ? ((pw_dict *)v)->len : 0;
    return &it->h;
}

pw_obj *pw_next(pw_obj *iter) {
    pw_iter_t *it = (pw_iter_t *)iter;
    pw_obj *v = it->of;
    switch (v->tag) {
    case PW_LIST: case PW_TUPLE:
        return it->at < ((pw_list *)v)->len ? ((pw_list *)v)->items[it->at++] : NULL;
    case PW_DICT: case PW_SET:
        if (((pw_dict *)v)->len != it->len0) {
            pw_raise_c(&pw_RuntimeError, v->tag == PW_DICT ? "dictionary changed size during iteration"
                                                           : "Set changed size during iteration");
            return NULL;
        }
        return it->at < ((pw_dict *)v)->len ? ((pw_dict *)v)->keys[it->at++] : NULL;
    case PW_BYTES:
        return it->at < as_str(v)->len ? pw_box_int((unsigned char)as_str(v)->data[it->at++]) : NULL;
    default: {
        pw_str *s = as_str(v);
        if (it->at >= s->len) return NULL;
        uint32_t start = it->at;
        utf8_next((const unsigned char *)s->data, s->len, &it->at);
        return pw_str_new(s->data + start, it->at - start, PW_STR);
    }
    }
}

void pw_unpack(pw_obj *v, uint32_t n, pw_obj **out) {
    pw_obj *l = is_seq(v) ? v : pw_to_list(v);
    if (pw_err) return;
    uint32_t len = ((pw_list *)l)->len;
    if (len != n) {
        char msg[100];
        if (len > n) snprintf(msg, sizeof msg, "too many values to unpack (expected %u)", n);
        else snprintf(msg, sizeof msg, "not enough values to unpack (expected %u, got %u)", n, len);
        pw_raise_c(&pw_ValueError, msg);
        return;
    }
    for (uint32_t i = 0; i < n; i++) out[i] = ((pw_list *)l)->items[i];
}

pw_obj *pw_to_list(pw_obj *v) {
    pw_obj *it = pw_iter(v);
    if (it == NULL) return NULL;
    pw_obj *out = pw_list_new(0), *x;
    while ((x = pw_next(it)) != NULL) pw_list_append(out, x);
    return pw_err ? NULL : out;
}
pw_obj *pw_to_tuple(pw_obj *v) {
    pw_obj *l = pw_to_list(v);
    if (l) l->tag = PW_TUPLE;
    return l;
}
pw_obj *pw_to_set(pw_obj *v) {
    pw_obj *it = pw_iter(v);
    if (it == NULL) return NULL;
    pw_obj *out = pw_set_of(0, NULL), *x;
    while ((x = pw_next(it)) != NULL) pw_dict_set(out, x, PW_NONE_V);
    return pw_err ? NULL : out;
}
pw_obj *pw_to_dict(pw_obj *v) {
    pw_native_fn native = pw_native_of(v);  /* dict(mapping): its items */
    if (native && (v = native(v, "items", 0, NULL)) == NULL) return NULL;
    if (v->tag == PW_DICT) {
        pw_dict *d = (pw_dict *)v;
        pw_obj *out = pw_dict_new();
        for (uint32_t i = 0; i < d->len; i++) pw_dict_set(out, d->keys[i], d->values[i]);
        return out;
    }
    pw_obj *it = pw_iter(v);
    if (it == NULL) return NULL;
    pw_obj *out = pw_dict_new(), *x, *kv[2];
    while ((x = pw_next(it)) != NULL) {
        pw_unpack(x, 2, kv);
        if (pw_err) return NULL;
        pw_dict_set(out, kv[0], kv[1]);
    }
    return pw_err ? NULL : out;
}

pw_obj *pw_sorted(pw_obj *v) {
    pw_obj *l = pw_to_list(v);
    if (l == NULL) return NULL;
    pw_list *x = (pw_list *)l;
    for (uint32_t i = 1; i < x->len; i++) {  /* insertion sort: stable, as list.sort */
        pw_obj *cur = x->items[i];
        uint32_t j = i;
        while (j > 0 && pw_dyn_compare('<', cur, x->items[j - 1])) { x->items[j] = x->items[j - 1]; j--; }
        if (pw_err) return NULL;
        x->items[j] = cur;
    }
    return l;
}

pw_obj *pw_dyn_min_max(pw_obj *v, int want_max) {
    pw_obj *it = pw_iter(v);
    if (it == NULL) return NULL;
    pw_obj *best = NULL, *x;
    while ((x = pw_next(it)) != NULL) {
        if (best == NULL || pw_dyn_compare(want_max ? '>' : '<', x, best)) best = x;
        if (pw_err) return NULL;
    }
    if (pw_err) return NULL;
    if (best == NULL) {
        pw_raise_c(&pw_ValueError, want_max ? "max() iterable argument is empty" : "min() iterable argument is empty");
    }
    return best;
}

pw_obj *pw_str_join(pw_obj *sep, pw_obj *iterable) {
    pw_obj *it = pw_iter(iterable);
    if (it == NULL) return NULL;
    pw_buf b = {0};
    pw_obj *x;
    int64_t i = 0;
    while ((x = pw_next(it)) != NULL) {
        if (x->tag != sep->tag) {
            char msg[120];
            snprintf(msg, sizeof msg, "sequence item %lld: expected %s instance, %s found", (long long)i,
                     sep->tag == PW_STR ? "str" : "a bytes-like object", pw_type_name(x));
            free(b.data);
            pw_raise_c(&pw_TypeError, msg);
            return NULL;
        }
        if (i++) buf_obj(&b, sep);
        buf_obj(&b, x);
    }
    if (pw_err) { free(b.data); return NULL; }
    return buf_done(&b, sep->tag);
}

int pw_isinstance(pw_obj *v, uint32_t mask, const void *cls, const pw_exc_type *exc) {
    if (mask & (1u << v->tag)) return 1;
    if (cls && v->tag == PW_INST && pw_is_subclass(((pw_inst *)v)->cls, cls)) return 1;
    if (exc && v->tag == PW_EXC)
        for (const pw_exc_type *t = ((pw_exc *)v)->type; t; t = t->base) if (t == exc) return 1;
    return 0;
}

pw_obj *pw_exc_new(const pw_exc_type *type, pw_obj *message) {
    pw_exc *e = pw_alloc(sizeof(pw_exc), PW_EXC);
    e->type = type;
    e->message = message;
    return &e->h;
}

void pw_raise_obj(pw_obj *exc) {
    if (exc->tag != PW_EXC) { pw_raise_c(&pw_TypeError, "exceptions must derive from BaseException"); return; }
    pw_err = (pw_exc *)exc;
}

/* -- methods of str, bytes, list, dict and set values ---------------------------- */

static int nargs(const char *name, int argc, int lo, int hi) {
    if (argc >= lo && argc <= hi) return 1;
    char msg[120];
    if (hi == 0) snprintf(msg, sizeof msg, "%s() takes no arguments (%d given)", name, argc);
    else if (argc < lo) snprintf(msg, sizeof msg, "%s() takes at least %d argument%s (%d given)", name, lo, lo == 1 ? "" : "s", argc);
    else snprintf(msg, sizeof msg, "%s() takes at most %d argument%s (%d given)", name, hi, hi == 1 ? "" : "s", argc);
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

static int affix(pw_str *s, pw_obj *p, int end) {
    pw_str *a = (pw_str *)p;
    if (a->len > s->len) return 0;
    return memcmp(s->data + (end ? s->len - a->len : 0), a->data, a->len) == 0;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

static pw_obj *strip(pw_obj *self, pw_obj *chars, int left, int right) {
    pw_str *s = as_str(self);
    uint32_t lo = 0, hi = s->len;
    if (chars != NULL && chars != PW_NONE_V) {
        pw_str *c = as_str(chars);
        /* ASCII strip sets (non-ASCII ones work byte-wise only for ASCII text) */
        while (left && lo < hi && memchr(c->data, s->data[lo], c->len)) lo++;
        while (right && hi > lo && memchr(c->data, s->data[hi - 1], c->len)) hi--;
    } else {
        while (left && lo < hi && is_space((unsigned char)s->data[lo])) lo++;
        while (right && hi > lo && is_space((unsigned char)s->data[hi - 1])) hi--;
    }
    return pw_str_new(s->data + lo, hi - lo, self->tag);
}

static pw_obj *split(pw_obj *self, pw_obj *sep, int64_t maxsplit) {
    pw_str *s = as_str(self);
    pw_obj *out = pw_list_new(0);
    if (sep == NULL || sep == PW_NONE_V) {
        uint32_t i = 0;
        while (i < s->len) {
            while (i < s->len && is_space((unsigned char)s->data[i])) i++;
            if (i >= s->len) break;
            if (maxsplit >= 0 && (int64_t)((pw_list *)out)->len >= maxsplit) {
                uint32_t end = s->len;
                while (end > i && is_space((unsigned char)s->data[end - 1])) end--;
                pw_list_append(out, pw_str_new(s->data + i, end - i, self->tag));
                break;
            }
            uint32_t start = i;
            while (i < s->len && !is_space((unsigned char)s->data[i])) i++;
            pw_list_append(out, pw_str_new(s->data + start, i - start, self->tag));
        }
        return out;
    }
    pw_str *p = as_str(sep);
    if (p->len == 0) { pw_raise_c(&pw_ValueError, "empty separator"); return NULL; }
    uint32_t from = 0;
    const char *hit;
    while ((maxsplit < 0 || (int64_t)((pw_list *)out)->len < maxsplit) && (hit = str_find(s, p, from)) != NULL) {
        uint32_t at = (uint32_t)(hit - s->data);
        pw_list_append(out, pw_str_new(s->data + from, at - from, self->tag));
        from = at + p->len;
    }
    pw_list_append(out, pw_str_new(s->data + from, s->len - from, self->tag));
    return out;
}

static pw_obj *replace(pw_obj *self, pw_obj *old, pw_obj *new_, int64_t count) {
    pw_str *s = as_str(self), *o = as_str(old);
    pw_buf b = {0};
    uint32_t from = 0;
    int64_t done = 0;
    if (o->len == 0) {  /* between every code point */
        uint32_t i = 0;
        while (count < 0 || done < count) {
            buf_obj(&b, new_);
            done++;
            if (i >= s->len) break;
            uint32_t st = i;
            utf8_next((const unsigned char *)s->data, s->len, &i);
            buf_put(&b, s->data + st, i - st);
        }
        buf_put(&b, s->data + i, s->len - i);
        return buf_done(&b, self->tag);
    }
    const char *hit;
    while ((count < 0 || done < count) && (hit = str_find(s, o, from)) != NULL) {
        uint32_t at = (uint32_t)(hit - s->data);
        buf_put(&b, s->data + from, at - from);
        buf_obj(&b, new_);
        from = at + o->len;
        done++;
    }
    buf_put(&b, s->data + from, s->len - from);
    return buf_done(&b, self->tag);
}

static pw_obj *case_map(pw_obj *self, int upper) {
    /* ASCII letters only (non-ASCII text is kept as is: docs/compact.md) */
    pw_str *s = as_str(self);
    pw_obj *out = pw_str_new(s->data, s->len, self->tag);
    char *d = (char *)as_str(out)->data;
    for (uint32_t i = 0; i < s->len; i++) {
        if (upper && d[i] >= 'a' && d[i] <= 'z') d[i] = (char)(d[i] - 32);
        if (!upper && d[i] >= 'A' && d[i] <= 'Z') d[i] = (char)(d[i] + 32);
    }
    return out;
}

static int want_str_arg(pw_obj *self, pw_obj *arg, const char *what) {
    if (arg->tag == self->tag) return 1;
    char msg[160];
    if (self->tag == PW_STR) snprintf(msg, sizeof msg, "%s arg must be None or str", what);
    snprintf(msg, sizeof msg, self->tag == PW_STR ? "must be str, not %s" : "a bytes-like object is required, not '%s'",
             pw_type_name(arg));
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

static pw_obj *str_method(pw_obj *self, const char *name, int argc, pw_obj **argv, int *found) {
    pw_str *s = as_str(self);
    *found = 1;
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (!nargs(name, argc, 1, 1)) return NULL;
        int end = name[0] == 'e';
        if (argv[0]->tag == PW_TUPLE) {
            pw_list *t = (pw_list *)argv[0];
            for (uint32_t i = 0; i < t->len; i++) {
                if (!want_str_arg(self, t->items[i], name)) return NULL;
                if (affix(s, t->items[i], end)) return pw_box_bool(1);
            }
            return pw_box_bool(0);
        }
        if (argv[0]->tag != self->tag) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s first arg must be %s or a tuple of %s, not %s", name,
                     self->tag == PW_STR ? "str" : "bytes", self->tag == PW_STR ? "str" : "bytes", pw_type_name(argv[0]));
            pw_raise_c(&pw_TypeError, msg);
            return NULL;
        }
        return pw_box_bool(affix(s, argv[0], end));
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower")) {
        if (!nargs(name, argc, 0, 0)) return NULL;
        return case_map(self, name[0] == 'u');
    }
    if (!strcmp(name, "isdigit") || !strcmp(name, "isalpha") || !strcmp(name, "isalnum") || !strcmp(name, "isspace")) {
        if (!nargs(name, argc, 0, 0)) return NULL;
        if (s->len == 0) return pw_box_bool(0);
        for (uint32_t i = 0; i < s->len; i++) {
            unsigned char c = (unsigned char)s->data[i];
            int digit = c >= '0' && c <= '9', alpha = (c | 32) >= 'a' && (c | 32) <= 'z';
            int ok = name[2] == 'd' ? digit : name[3] == 'l' && name[4] == 'p' ? alpha : name[2] == 'a' ? alpha || digit
                                                                                                      : is_space(c);
            if (!ok) return pw_box_bool(0);
        }
        return pw_box_bool(1);
    }
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        if (!nargs(name, argc, 0, 1)) return NULL;
        if (argc && argv[0] != PW_NONE_V && !want_str_arg(self, argv[0], name)) return NULL;
        return strip(self, argc ? argv[0] : NULL, name[0] != 'r', name[0] != 'l');
    }
    if (!strcmp(name, "split")) {
        if (!nargs(name, argc, 0, 2)) return NULL;
        if (argc && argv[0] != PW_NONE_V && !want_str_arg(self, argv[0], name)) return NULL;
        if (argc > 1 && !is_int(argv[1])) { pw_raise_c(&pw_TypeError, "maxsplit must be an int"); return NULL; }
        return split(self, argc ? argv[0] : NULL, argc > 1 ? ((pw_int *)argv[1])->v : -1);
    }
    if (!strcmp(name, "join")) {
        if (!nargs(name, argc, 1, 1)) return NULL;
        return pw_str_join(self, argv[0]);
    }
    if (!strcmp(name, "replace")) {
        if (!nargs(name, argc, 2, 3)) return NULL;
        if (!want_str_arg(self, argv[0], name) || !want_str_arg(self, argv[1], name)) return NULL;
        return replace(self, argv[0], argv[1], argc > 2 ? ((pw_int *)argv[2])->v : -1);
    }
    if (!strcmp(name, "find") || !strcmp(name, "index") || !strcmp(name, "count")) {
        if (!nargs(name, argc, 1, 1) || !want_str_arg(self, argv[0], name)) return NULL;
        if (name[0] == 'c') {
            pw_str *n = as_str(argv[0]);
            if (n->len == 0) return pw_box_int(pw_len(self) + 1);
            int64_t c = 0;
            const char *hit;
            uint32_t from = 0;
            while ((hit = str_find(s, n, from)) != NULL) { c++; from = (uint32_t)(hit - s->data) + n->len; }
            return pw_box_int(c);
        }
        const char *hit = str_find(s, as_str(argv[0]), 0);
        if (hit == NULL && name[0] == 'i') { pw_raise_c(&pw_ValueError, "substring not found"); return NULL; }
        if (hit == NULL) return pw_box_int(-1);
        return pw_box_int(self->tag == PW_STR ? utf8_count(s->data, (size_t)(hit - s->data)) : hit - s->data);
    }
    if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
        if (!nargs(name, argc, 1, 1) || !want_str_arg(self, argv[0], name)) return NULL;
        int end = name[6] == 's';
        uint32_t n = as_str(argv[0])->len;
        if (!affix(s, argv[0], end)) return self;
        return pw_str_new(s->data + (end ? 0 : n), s->len - n, self->tag);
    }
    if (!strcmp(name, "encode") && self->tag == PW_STR) {
        if (!nargs(name, argc, 0, 2)) return NULL;
        return pw_str_new(s->data, s->len, PW_BYTES);
    }
    if (!strcmp(name, "decode") && self->tag == PW_BYTES) {
        if (!nargs(name, argc, 0, 2)) return NULL;
        return pw_bytes_decode(self);  /* UTF-8, strict (`b.decode(enc, "replace")` compiles to the replacing one) */
    }
    if (!strcmp(name, "hex") && self->tag == PW_BYTES) {
        if (!nargs(name, argc, 0, 0)) return NULL;
        pw_buf b = {0};
        for (uint32_t i = 0; i < s->len; i++) {
            char two[3];
            snprintf(two, sizeof two, "%02x", (unsigned char)s->data[i]);
            buf_put(&b, two, 2);
        }
        return buf_done(&b, PW_STR);
    }
    *found = 0;
    return NULL;
}

static pw_obj *dict_method(pw_obj *self, const char *name, int argc, pw_obj **argv, int *found) {
    *found = 1;
    pw_dict *d = (pw_dict *)self;
    if (!strcmp(name, "get")) {
        if (!nargs(name, argc, 1, 2)) return NULL;
        pw_obj *v = pw_dict_lookup(self, argv[0]);
        return v ? v : argc == 2 ? argv[1] : PW_NONE_V;
    }
    if (!strcmp(name, "items") || !strcmp(name, "keys") || !strcmp(name, "values")) {
        if (!nargs(name, argc, 0, 0)) return NULL;
        pw_obj *out = pw_list_new(d->len);
        for (uint32_t i = 0; i < d->len; i++) {
            pw_obj *kv[2] = {d->keys[i], d->values[i]};
            pw_list_append(out, name[0] == 'i' ? pw_tuple_new(2, kv) : name[0] == 'k' ? kv[0] : kv[1]);
        }
        return out;
    }
    if (!strcmp(name, "pop")) {
        if (!nargs(name, argc, 1, 2)) return NULL;
        int64_t i = dict_index(d, argv[0]);
        if (i < 0) {
            if (argc == 2) return argv[1];
            pw_raise(&pw_KeyError, argv[0]);
            return NULL;
        }
        pw_obj *v = d->values[i];
        memmove(d->keys + i, d->keys + i + 1, (d->len - (uint32_t)i - 1) * sizeof(pw_obj *));
        memmove(d->values + i, d->values + i + 1, (d->len - (uint32_t)i - 1) * sizeof(pw_obj *));
        d->len--;
        pw_dict_drop_index(self);
        return v;
    }
    if (!strcmp(name, "setdefault")) {
        if (!nargs(name, argc, 1, 2)) return NULL;
        pw_obj *v = pw_dict_lookup(self, argv[0]);
        if (v) return v;
        pw_dict_set(self, argv[0], argc == 2 ? argv[1] : PW_NONE_V);
        return argc == 2 ? argv[1] : PW_NONE_V;
    }
    if (!strcmp(name, "copy")) { if (!nargs(name, argc, 0, 0)) return NULL; return pw_to_dict(self); }
    if (!strcmp(name, "update")) {
        if (!nargs(name, argc, 1, 1)) return NULL;
        pw_obj *o = pw_to_dict(argv[0]);
        if (o == NULL) return NULL;
        for (uint32_t i = 0; i < ((pw_dict *)o)->len; i++) pw_dict_set(self, ((pw_dict *)o)->keys[i], ((pw_dict *)o)->values[i]);
        return PW_NONE_V;
    }
    *found = 0;
    return NULL;
}

static pw_obj *list_method(pw_obj *self, const char *name, int argc, pw_obj **argv, int *found) {
    *found = 1;
    pw_list *l = (pw_list *)self;
    if (!strcmp(name, "append")) { if (!nargs(name, argc, 1, 1)) return NULL; pw_list_append(self, argv[0]); return PW_NONE_V; }
    if (!strcmp(name, "extend")) {
        if (!nargs(name, argc, 1, 1)) return NULL;
        pw_obj *o = pw_to_list(argv[0]);
        if (o == NULL) return NULL;
        for (uint32_t i = 0; i < ((pw_list *)o)->len; i++) pw_list_append(self, ((pw_list *)o)->items[i]);
        return PW_NONE_V;
    }
    if (!strcmp(name, "pop")) {
        if (!nargs(name, argc, 0, 1)) return NULL;
        int64_t i = argc ? ((pw_int *)argv[0])->v : -1;
        if (l->len == 0) { pw_raise_c(&pw_IndexError, "pop from empty list"); return NULL; }
        if (!norm_index(&i, l->len)) { pw_raise_c(&pw_IndexError, "pop index out of range"); return NULL; }
        pw_obj *v = l->items[i];
        memmove(l->items + i, l->items + i + 1, (l->len - (uint32_t)i - 1) * sizeof(pw_obj *));
        l->len--;
        return v;
    }
    if (!strcmp(name, "insert")) {
        if (!nargs(name, argc, 2, 2)) return NULL;
        int64_t i = ((pw_int *)argv[0])->v;
        if (i < 0) i += l->len;
        if (i < 0) i = 0;
        if (i > l->len) i = l->len;
        pw_list_append(self, argv[1]);
        memmove(l->items + i + 1, l->items + i, (l->len - 1 - (uint32_t)i) * sizeof(pw_obj *));
        l->items[i] = argv[1];
        return PW_NONE_V;
    }
    if (!strcmp(name, "copy")) { if (!nargs(name, argc, 0, 0)) return NULL; return pw_to_list(self); }
    *found = 0;
    return NULL;
}

static pw_obj *set_method(pw_obj *self, const char *name, int argc, pw_obj **argv, int *found) {
    *found = 1;
    if (!strcmp(name, "add")) { if (!nargs(name, argc, 1, 1)) return NULL; pw_dict_set(self, argv[0], PW_NONE_V); return PW_NONE_V; }
    *found = 0;
    return NULL;
}

/* One family of methods each (codegen calls these when the name tells the family), so the
   linker keeps only the families a filter uses; pw_dyn_method dispatches on the value. */
#define PW_FAMILY(public, test, impl)                                                  \
    pw_obj *public(pw_obj *self, const char *name, int argc, pw_obj **argv) {          \
        int found = 0;                                                                 \
        if (test) { pw_obj *r = impl(self, name, argc, argv, &found); if (found) return r; } \
        pw_native_fn native = pw_native_of(self);                                      \
        if (native) return native(self, name, argc, argv);                             \
        no_attribute(self, name);                                                      \
        return NULL;                                                                   \
    }
PW_FAMILY(pw_meth_dict, self->tag == PW_DICT, dict_method)
PW_FAMILY(pw_meth_list, self->tag == PW_LIST, list_method)
PW_FAMILY(pw_meth_set, self->tag == PW_SET, set_method)
PW_FAMILY(pw_meth_str, self->tag == PW_STR || self->tag == PW_BYTES, str_method)

pw_obj *pw_dyn_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    pw_native_fn native = pw_native_of(self);
    if (native) return native(self, name, argc, argv);
    int found = 0;
    pw_obj *r = NULL;
    if (self->tag == PW_STR || self->tag == PW_BYTES) r = str_method(self, name, argc, argv, &found);
    else if (self->tag == PW_DICT) r = dict_method(self, name, argc, argv, &found);
    else if (self->tag == PW_LIST) r = list_method(self, name, argc, argv, &found);
    else if (self->tag == PW_SET) r = set_method(self, name, argc, argv, &found);
    if (found) return r;
    if (is_seq(self) && (!strcmp(name, "index") || !strcmp(name, "count"))) {
        if (!nargs(name, argc, 1, 1)) return NULL;
        pw_list *l = (pw_list *)self;
        int64_t c = 0;
        for (uint32_t i = 0; i < l->len; i++) {
            if (!pw_dyn_eq(l->items[i], argv[0])) continue;
            if (name[0] == 'i') return pw_box_int(i);
            c++;
        }
        if (name[0] == 'c') return pw_box_int(c);
        pw_obj *r = pw_repr_of(argv[0]);
        pw_buf b = {0};
        buf_obj(&b, r);
        buf_puts(&b, self->tag == PW_LIST ? " is not in list" : " is not in tuple");
        pw_raise(&pw_ValueError, buf_done(&b, PW_STR));
        return NULL;
    }
    no_attribute(self, name);
    return NULL;
}

/* -- builtins over iterables (their arguments as one tuple) ------------------------- */

static pw_obj *arg_n(pw_obj *args, uint32_t i) { return ((pw_list *)args)->items[i]; }
static uint32_t argc_of(pw_obj *args) { return ((pw_list *)args)->len; }

pw_obj *pw_builtin_any(pw_obj *args);
pw_obj *pw_builtin_all(pw_obj *args);
pw_obj *pw_builtin_sum(pw_obj *args);
pw_obj *pw_builtin_enumerate(pw_obj *args);
pw_obj *pw_builtin_zip(pw_obj *args);
pw_obj *pw_builtin_range(pw_obj *args);
pw_obj *pw_builtin_reversed(pw_obj *args);

static pw_obj *any_all(pw_obj *args, int want) {
    pw_obj *it = pw_iter(arg_n(args, 0)), *x;
    if (it == NULL) return NULL;
    while ((x = pw_next(it)) != NULL) if (pw_truthy(x) == want) return pw_box_bool(want);
    return pw_err ? NULL : pw_box_bool(!want);
}
pw_obj *pw_builtin_any(pw_obj *args) { return any_all(args, 1); }
pw_obj *pw_builtin_all(pw_obj *args) { return any_all(args, 0); }

pw_obj *pw_builtin_sum(pw_obj *args) {
    pw_obj *acc = argc_of(args) > 1 ? arg_n(args, 1) : pw_box_int(0);
    pw_obj *it = pw_iter(arg_n(args, 0)), *x;
    if (it == NULL) return NULL;
    while ((x = pw_next(it)) != NULL) {
        acc = pw_dyn_binop('+', acc, x);
        if (acc == NULL) return NULL;
    }
    return pw_err ? NULL : acc;
}

pw_obj *pw_builtin_enumerate(pw_obj *args) {
    int64_t i = argc_of(args) > 1 ? pw_to_int(arg_n(args, 1)) : 0;
    pw_obj *it = pw_iter(arg_n(args, 0)), *x;
    if (it == NULL || pw_err) return NULL;
    pw_obj *out = pw_list_new(0);
    while ((x = pw_next(it)) != NULL) {
        pw_obj *kv[2] = {pw_box_int(i++), x};
        pw_list_append(out, pw_tuple_new(2, kv));
    }
    return pw_err ? NULL : out;
}

pw_obj *pw_builtin_zip(pw_obj *args) {
    uint32_t n = argc_of(args);
    pw_obj *lists[8];
    if (n > 8) { pw_raise_c(&pw_TypeError, "zip() of more than 8 iterables (compact backend)"); return NULL; }
    uint32_t len = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        lists[i] = pw_to_list(arg_n(args, i));
        if (lists[i] == NULL) return NULL;
        if (((pw_list *)lists[i])->len < len) len = ((pw_list *)lists[i])->len;
    }
    pw_obj *out = pw_list_new(0);
    for (uint32_t k = 0; n && k < len; k++) {
        pw_obj *row[8];
        for (uint32_t i = 0; i < n; i++) row[i] = ((pw_list *)lists[i])->items[k];
        pw_list_append(out, pw_tuple_new(n, row));
    }
    return out;
}

pw_obj *pw_builtin_range(pw_obj *args) {
    uint32_t n = argc_of(args);
    int64_t a = 0, b, step = 1;
    if (n == 1) b = pw_to_int(arg_n(args, 0));
    else { a = pw_to_int(arg_n(args, 0)); b = pw_to_int(arg_n(args, 1)); if (n > 2) step = pw_to_int(arg_n(args, 2)); }
    if (pw_err) return NULL;
    if (step == 0) { pw_raise_c(&pw_ValueError, "range() arg 3 must not be zero"); return NULL; }
    pw_obj *out = pw_list_new(0);
    for (int64_t i = a; step > 0 ? i < b : i > b; i += step) pw_list_append(out, pw_box_int(i));
    return out;
}

pw_obj *pw_builtin_reversed(pw_obj *args) {
    pw_obj *l = pw_to_list(arg_n(args, 0));
    if (l == NULL) return NULL;
    pw_list *x = (pw_list *)l;
    for (uint32_t i = 0; i < x->len / 2; i++) {
        pw_obj *t = x->items[i]; x->items[i] = x->items[x->len - 1 - i]; x->items[x->len - 1 - i] = t;
    }
    return l;
}

/* -- json.dumps (ensure_ascii, separators and sort_keys as CPython's encoder) ------------ */

typedef struct { pw_buf b; int ascii, sort; pw_str *item_sep, *key_sep; } jd;

static void jd_str(jd *j, pw_str *s) {
    const unsigned char *d = (const unsigned char *)s->data;
    buf_put(&j->b, "\"", 1);
    for (uint32_t i = 0; i < s->len;) {
        uint32_t start = i;
        uint32_t c = utf8_next(d, s->len, &i);
        char esc[16];
        if (c == '"') buf_puts(&j->b, "\\\"");
        else if (c == '\\') buf_puts(&j->b, "\\\\");
        else if (c == '\n') buf_puts(&j->b, "\\n");
        else if (c == '\r') buf_puts(&j->b, "\\r");
        else if (c == '\t') buf_puts(&j->b, "\\t");
        else if (c == '\b') buf_puts(&j->b, "\\b");
        else if (c == '\f') buf_puts(&j->b, "\\f");
        else if (c < 0x20 || (j->ascii && c > 0x7e)) {
            if (c >= 0x10000) {
                uint32_t v = c - 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
            } else snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_puts(&j->b, esc);
        } else buf_put(&j->b, (const char *)d + start, i - start);
    }
    buf_put(&j->b, "\"", 1);
}

static int jd_float(jd *j, double v) {
    if (isnan(v)) buf_puts(&j->b, "NaN");
    else if (isinf(v)) buf_puts(&j->b, v > 0 ? "Infinity" : "-Infinity");
    else buf_obj(&j->b, pw_str_of_float(v));
    return 1;
}

static int jd_value(jd *j, pw_obj *v, int depth);

static int jd_key(jd *j, pw_obj *k) {
    switch (k->tag) {
    case PW_STR: jd_str(j, (pw_str *)k); return 1;
    case PW_BOOL: buf_puts(&j->b, ((pw_int *)k)->v ? "\"true\"" : "\"false\""); return 1;
    case PW_NONE: buf_puts(&j->b, "\"null\""); return 1;
    case PW_INT: buf_put(&j->b, "\"", 1); buf_obj(&j->b, pw_str_of_int(((pw_int *)k)->v)); buf_put(&j->b, "\"", 1); return 1;
    case PW_FLOAT: buf_put(&j->b, "\"", 1); jd_float(j, ((pw_float *)k)->v); buf_put(&j->b, "\"", 1); return 1;
    default: {
        char msg[120];
        snprintf(msg, sizeof msg, "keys must be str, int, float, bool or None, not %s", pw_type_name(k));
        pw_raise_c(&pw_TypeError, msg);
        return 0;
    }
    }
}

static int jd_value(jd *j, pw_obj *v, int depth) {
    if (depth > 900) { pw_raise_c(&pw_RecursionError, "maximum recursion depth exceeded while encoding a JSON object"); return 0; }
    switch (v->tag) {
    case PW_NONE: buf_puts(&j->b, "null"); return 1;
    case PW_BOOL: buf_puts(&j->b, ((pw_int *)v)->v ? "true" : "false"); return 1;
    case PW_INT: buf_obj(&j->b, pw_str_of_int(((pw_int *)v)->v)); return 1;
    case PW_FLOAT: return jd_float(j, ((pw_float *)v)->v);
    case PW_STR: jd_str(j, (pw_str *)v); return 1;
    case PW_LIST: case PW_TUPLE: {
        pw_list *l = (pw_list *)v;
        buf_puts(&j->b, "[");
        for (uint32_t i = 0; i < l->len; i++) {
            if (i) buf_obj(&j->b, &j->item_sep->h);
            if (!jd_value(j, l->items[i], depth + 1)) return 0;
        }
        buf_puts(&j->b, "]");
        return 1;
    }
    case PW_DICT: {
        pw_dict *d = (pw_dict *)v;
        pw_obj *keys = pw_list_of(d->len, d->keys);
        if (j->sort) { keys = pw_sorted(keys); if (keys == NULL) return 0; }
        pw_list *kl = (pw_list *)keys;
        buf_puts(&j->b, "{");
        for (uint32_t i = 0; i < kl->len; i++) {
            if (i) buf_obj(&j->b, &j->item_sep->h);
            if (!jd_key(j, kl->items[i])) return 0;
            buf_obj(&j->b, &j->key_sep->h);
            if (!jd_value(j, pw_dict_lookup(v, kl->items[i]), depth + 1)) return 0;
        }
        buf_puts(&j->b, "}");
        return 1;
    }
    default: {
        char msg[120];
        snprintf(msg, sizeof msg, "Object of type %s is not JSON serializable", pw_type_name(v));
        pw_raise_c(&pw_TypeError, msg);
        return 0;
    }
    }
}

pw_obj *pw_json_dumps(pw_obj *v, int ensure_ascii, pw_obj *separators, int sort_keys) {
    jd j = {{0}, ensure_ascii, sort_keys, NULL, NULL};
    pw_obj *seps[2];
    if (separators != PW_NONE_V) {
        pw_unpack(separators, 2, seps);
        if (pw_err) return NULL;
        if (seps[0]->tag != PW_STR || seps[1]->tag != PW_STR) {
            pw_raise_c(&pw_TypeError, "separators must be a (str, str) pair");
            return NULL;
        }
    } else {
        seps[0] = pw_str_new(", ", 2, PW_STR);
        seps[1] = pw_str_new(": ", 2, PW_STR);
    }
    j.item_sep = (pw_str *)seps[0];
    j.key_sep = (pw_str *)seps[1];
    if (!jd_value(&j, v, 0)) { free(j.b.data); return NULL; }
    return buf_done(&j.b, PW_STR);
}

/* -- bound methods as values (a C thunk taking the receiver and up to 4 arguments) ---- */

typedef struct { pw_obj h; pw_obj *self; void *fn; int nreq, nall; } pw_bound;
typedef pw_obj *(*pw_thunk0)(pw_obj *);
typedef pw_obj *(*pw_thunk1)(pw_obj *, pw_obj *);
typedef pw_obj *(*pw_thunk2)(pw_obj *, pw_obj *, pw_obj *);
typedef pw_obj *(*pw_thunk3)(pw_obj *, pw_obj *, pw_obj *, pw_obj *);
typedef pw_obj *(*pw_thunk4)(pw_obj *, pw_obj *, pw_obj *, pw_obj *, pw_obj *);

pw_obj *pw_bound_new(void *fn, pw_obj *self, int64_t nreq, int64_t nall) {
    pw_bound *b = pw_alloc(sizeof(pw_bound), PW_BOUND);
    b->self = self;
    b->fn = fn;
    b->nreq = (int)nreq;
    b->nall = (int)nall;
    return &b->h;
}

pw_obj *pw_call(pw_obj *f, int argc, pw_obj **argv) {
    if (f->tag != PW_BOUND) {
        type_error2("'%s' object is not callable%s", pw_type_name(f), "");
        return NULL;
    }
    pw_bound *b = (pw_bound *)f;
    if (argc < b->nreq || argc > b->nall) {
        char msg[120];
        snprintf(msg, sizeof msg, "the method takes %d to %d arguments but %d were given", b->nreq, b->nall, argc);
        pw_raise_c(&pw_TypeError, msg);
        return NULL;
    }
    pw_obj *a[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < argc; i++) a[i] = argv[i];
    switch (b->nall) {
    case 0: return ((pw_thunk0)b->fn)(b->self);
    case 1: return ((pw_thunk1)b->fn)(b->self, a[0]);
    case 2: return ((pw_thunk2)b->fn)(b->self, a[0], a[1]);
    case 3: return ((pw_thunk3)b->fn)(b->self, a[0], a[1], a[2]);
    default: return ((pw_thunk4)b->fn)(b->self, a[0], a[1], a[2], a[3]);
    }
}

pw_obj *pw_type_name_of(pw_obj *v) {
    const char *name = pw_type_name(v);
    return pw_str_new(name, strlen(name), PW_STR);
}

/* -- float() of a str or a dynamic value, as CPython parses it ---------------------------- */

static int lower_eq(const char *s, size_t n, const char *word) {
    if (strlen(word) != n) return 0;
    for (size_t i = 0; i < n; i++) if ((s[i] | 32) != word[i]) return 0;
    return 1;
}

double pw_float_from_str(pw_obj *text) {
    pw_str *t = (pw_str *)text;
    const char *p = t->data, *end = t->data + t->len;
    while (p < end && is_space((unsigned char)*p)) p++;
    while (end > p && is_space((unsigned char)end[-1])) end--;
    char tmp[128];
    size_t n = 0;
    int ok = 1, digits = 0, neg = 0;
    const char *q = p;
    if (q < end && (*q == '+' || *q == '-')) neg = *q++ == '-';
    if (lower_eq(q, (size_t)(end - q), "inf") || lower_eq(q, (size_t)(end - q), "infinity"))
        return neg ? -INFINITY : INFINITY;
    if (lower_eq(q, (size_t)(end - q), "nan")) return neg ? -NAN : NAN;
    /* digits [. digits] [e [sign] digits], underscores only between digits */
    int state = 0;  /* 0 mantissa, 1 fraction, 2 exponent sign, 3 exponent */
    int exp_digits = 0;
    for (const char *c = p; c < end && ok; c++) {
        char ch = *c;
        int d = ch >= '0' && ch <= '9';
        if (ch == '_') {
            ok = c > p && c + 1 < end && c[-1] >= '0' && c[-1] <= '9' && c[1] >= '0' && c[1] <= '9';
            continue;
        }
        if (n + 1 >= sizeof tmp) { ok = 0; break; }
        if (c == p && (ch == '+' || ch == '-')) { tmp[n++] = ch; continue; }
        if (d) { tmp[n++] = ch; if (state < 2) digits++; else { exp_digits++; state = 3; } continue; }
        if (ch == '.' && state == 0) { tmp[n++] = ch; state = 1; continue; }
        if ((ch == 'e' || ch == 'E') && state < 2 && digits) {
            tmp[n++] = 'e';
            state = 2;
            if (c + 1 < end && (c[1] == '+' || c[1] == '-')) tmp[n++] = *++c;
            continue;
        }
        ok = 0;
    }
    if (!ok || !digits || (state >= 2 && !exp_digits)) {
        pw_obj *r = pw_repr_of(text);
        pw_buf b = {0};
        buf_puts(&b, "could not convert string to float: ");
        buf_obj(&b, r);
        pw_raise(&pw_ValueError, buf_done(&b, PW_STR));
        return 0;
    }
    tmp[n] = 0;
    return strtod(tmp, NULL);
}

double pw_float_of(pw_obj *v) {
    if (is_num(v)) return num_val(v);
    if (v->tag == PW_STR) return pw_float_from_str(v);
    char msg[120];
    snprintf(msg, sizeof msg, "float() argument must be a string or a real number, not '%s'", pw_type_name(v));
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

int64_t pw_int_of(pw_obj *v) {
    if (is_int(v)) return ((pw_int *)v)->v;
    if (v->tag == PW_FLOAT) return pw_int_from_float(((pw_float *)v)->v);
    if (v->tag == PW_STR || v->tag == PW_BYTES) return pw_int_from_str(v);
    char msg[140];
    snprintf(msg, sizeof msg, "int() argument must be a string, a bytes-like object or a real number, not '%s'",
             pw_type_name(v));
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}
