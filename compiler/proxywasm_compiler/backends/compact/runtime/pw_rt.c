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
const pw_exc_type pw_OverflowError = {"OverflowError", &pw_Exception};  /* ArithmeticError's */
const pw_exc_type pw_ZeroDivisionError = {"ZeroDivisionError", &pw_Exception};
const pw_exc_type pw_RuntimeError = {"RuntimeError", &pw_Exception};
const pw_exc_type pw_MemoryError = {"MemoryError", &pw_Exception};
const pw_exc_type pw_JSONDecodeError = {"json.decoder.JSONDecodeError", &pw_ValueError};

/* -- allocation and the collector ------------------------------------------- */

static pw_obj *pw_heap;            /* every object made at run time */
static size_t pw_since_gc;         /* bytes allocated since the last collection */
static size_t pw_live_bytes;
static pw_root_walker pw_roots;
#define PW_GC_THRESHOLD (64 * 1024)

void *pw_alloc(size_t size, uint8_t tag) {
    pw_obj *o = calloc(1, size);
    if (o == NULL) pw_fatal("out of memory");
    o->tag = tag;
    o->next = pw_heap;
    pw_heap = o;
    pw_since_gc += size;
    return o;
}

void pw_gc_set_roots(pw_root_walker walker) { pw_roots = walker; }
size_t pw_gc_live_bytes(void) { return pw_live_bytes; }

static int pw_is_container(pw_obj *o) {
    return o->tag == PW_LIST || o->tag == PW_DICT || o->tag == PW_INST || o->tag == PW_EXC;
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
        if (cur->tag == PW_LIST) {
            arrays[0] = ((pw_list *)cur)->items; n = ((pw_list *)cur)->len;
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
    if (o->tag == PW_LIST) free(((pw_list *)o)->items);
    if (o->tag == PW_DICT) { free(((pw_dict *)o)->keys); free(((pw_dict *)o)->values); }
    free(o);
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
    if (exc->message && ((pw_str *)exc->message)->len) {
        buf_puts(&b, ": ");
        buf_obj(&b, exc->message);
    }
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
    case PW_LIST: {
        pw_list *l = (pw_list *)v;
        buf_puts(b, "[");
        for (uint32_t i = 0; i < l->len; i++) {
            if (i) buf_puts(b, ", ");
            repr_into(b, l->items[i], depth + 1);
        }
        buf_puts(b, "]");
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
    default: buf_obj(b, pw_str_of(v));
    }
}

pw_obj *pw_repr_of(pw_obj *v) {
    pw_buf b = {0};
    repr_into(&b, v, 0);
    return buf_done(&b, PW_STR);
}

pw_obj *pw_str_of(pw_obj *v) {
    switch (v->tag) {
    case PW_STR: return v;
    case PW_NONE: return pw_str_new("None", 4, PW_STR);
    case PW_BOOL: return pw_str_of_bool((int)((pw_int *)v)->v);
    case PW_INT: return pw_str_of_int(((pw_int *)v)->v);
    case PW_FLOAT: return pw_str_of_float(((pw_float *)v)->v);
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

pw_obj *pw_bytes_decode(pw_obj *bytes) {
    pw_str *b = (pw_str *)bytes;
    long bad = utf8_check((const unsigned char *)b->data, b->len);
    if (bad >= 0) {
        char msg[120];
        snprintf(msg, sizeof msg, "'utf-8' codec can't decode byte 0x%02x in position %ld: invalid start byte",
                 (unsigned char)b->data[bad], bad);
        pw_raise_c(&pw_ValueError, msg);  /* UnicodeDecodeError is a ValueError */
        return NULL;
    }
    return pw_str_new(b->data, b->len, PW_STR);
}

static int64_t utf8_count(const char *s, size_t n) {
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

int64_t pw_len(pw_obj *v) {
    switch (v->tag) {
    case PW_STR: return utf8_count(((pw_str *)v)->data, ((pw_str *)v)->len);
    case PW_BYTES: return ((pw_str *)v)->len;
    case PW_LIST: return ((pw_list *)v)->len;
    case PW_DICT: return ((pw_dict *)v)->len;
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
    default: return "object";
    }
}

int pw_truthy(pw_obj *v) {
    switch (v->tag) {
    case PW_NONE: return 0;
    case PW_BOOL: case PW_INT: return ((pw_int *)v)->v != 0;
    case PW_FLOAT: return ((pw_float *)v)->v != 0.0;
    case PW_STR: case PW_BYTES: return ((pw_str *)v)->len != 0;
    case PW_LIST: return ((pw_list *)v)->len != 0;
    case PW_DICT: return ((pw_dict *)v)->len != 0;
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
    case PW_LIST: {
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

pw_obj *pw_dyn_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    if (self->tag == PW_DICT && strcmp(name, "get") == 0) {
        if (argc < 1 || argc > 2) {
            char msg[80];
            snprintf(msg, sizeof msg, "get expected at most 2 arguments, got %d", argc);
            pw_raise_c(&pw_TypeError, argc < 1 ? "get expected at least 1 argument, got 0" : msg);
            return NULL;
        }
        pw_obj *v = pw_dict_lookup(self, argv[0]);
        return v ? v : argc == 2 ? argv[1] : PW_NONE_V;
    }
    no_attribute(self, name);
    return NULL;
}

pw_obj *pw_dyn_getitem(pw_obj *self, pw_obj *key) {
    if (self->tag == PW_DICT) {
        pw_obj *v = pw_dict_lookup(self, key);
        if (v == NULL) pw_raise(&pw_KeyError, pw_repr_of(key));
        return v;
    }
    if (self->tag == PW_LIST && (key->tag == PW_INT || key->tag == PW_BOOL)) {
        pw_list *l = (pw_list *)self;
        int64_t i = ((pw_int *)key)->v;
        if (i < 0) i += l->len;
        if (i < 0 || i >= l->len) { pw_raise_c(&pw_IndexError, "list index out of range"); return NULL; }
        return l->items[i];
    }
    char msg[100];
    snprintf(msg, sizeof msg, "'%s' object is not subscriptable", pw_type_name(self));
    pw_raise_c(&pw_TypeError, msg);
    return NULL;
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

static int64_t dict_index(pw_dict *d, pw_obj *key) {
    for (uint32_t i = 0; i < d->len; i++) if (pw_dyn_eq(d->keys[i], key)) return i;
    return -1;
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
    if (++p->depth > 200) { pw_raise_c(&pw_RuntimeError, "maximum recursion depth exceeded while decoding a JSON document"); return NULL; }
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
