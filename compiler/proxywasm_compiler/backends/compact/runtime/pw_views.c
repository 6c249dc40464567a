/* proxywasm.views in C: self.request / self.response, their HeaderMap and Body views.
 *
 * Each function mirrors the Python method of the same name in sdk/proxywasm/views.py (and
 * the collections.abc mixins HeaderMap inherits): one name is one host call; the whole map is
 * fetched on first whole-map use in a callback and kept while pw_map_epoch lasts (bumped at
 * every callback and every host call that changes a map); a write through the view goes to the host at once and updates the
 * kept copy as Envoy does. The generic operations of pw_rt.c (getitem, in, len, iteration,
 * methods) reach these classes through their dispatcher in slots[0] (PW_NATIVE).
 *
 * The linker keeps this file's code only in filters that use the views (pw_http_view). */
#include <stdio.h>
#include <stdlib.h>

#include "pw_host.h"
#include "pw_sdk.h"

enum { HM_CTX, HM_MAP, HM_PAIRS, HM_EPOCH, HM_NFIELDS };
enum { BODY_CTX, BODY_BUF, BODY_NFIELDS };
enum { DIR_CTX, DIR_HEADERS, DIR_TRAILERS, DIR_BODY, DIR_KIND, DIR_NFIELDS };  /* trailers follow headers */

static pw_obj *hm_method(pw_obj *self, const char *name, int argc, pw_obj **argv);
static pw_obj *body_method(pw_obj *self, const char *name, int argc, pw_obj **argv);
static pw_obj *dir_method(pw_obj *self, const char *name, int argc, pw_obj **argv);

const pw_class pw_cls_HeaderMap = {"HeaderMap", NULL, HM_NFIELDS, 1u << HM_PAIRS, PW_NATIVE, {(void *)hm_method}};
const pw_class pw_cls_Body = {"Body", NULL, BODY_NFIELDS, 0, PW_NATIVE, {(void *)body_method}};
const pw_class pw_cls_Request = {"Request", NULL, DIR_NFIELDS,
                                 (1u << DIR_HEADERS) | (1u << DIR_TRAILERS) | (1u << DIR_BODY), PW_NATIVE,
                                 {(void *)dir_method}};
const pw_class pw_cls_Response = {"Response", NULL, DIR_NFIELDS,
                                  (1u << DIR_HEADERS) | (1u << DIR_TRAILERS) | (1u << DIR_BODY), PW_NATIVE,
                                  {(void *)dir_method}};

#define F(o, i) (((pw_inst *)(o))->f[i])

static pw_obj *new_view(const pw_class *cls, int64_t context_id) {
    pw_inst *o = (pw_inst *)pw_inst_new(cls);
    o->f[0].i = context_id;
    o->set = ~UINT64_C(0);  /* every field is "assigned": NULL pointers are views not made yet */
    return &o->h;
}

static int want_args(const char *cls, const char *name, int argc, int lo, int hi) {
    if (argc >= lo && argc <= hi) return 1;
    char msg[160];
    snprintf(msg, sizeof msg, "%s.%s() takes %d to %d arguments (%d given)", cls, name, lo, hi, argc);
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

/* _serde.to_bytes: str (UTF-8, as the host gave it) or bytes, else TypeError */
static int str_or_bytes(pw_obj *v, const char *what) {
    if (v->tag == PW_STR || v->tag == PW_BYTES) return 1;
    char msg[120];
    snprintf(msg, sizeof msg, "%s must be str or bytes, not %s", what, pw_type_name(v));
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

#define IS_TEXT(v) ((v)->tag == PW_STR || (v)->tag == PW_BYTES)  /* str_or_bytes' test, inline */

static pw_obj *as_text(pw_obj *v) {  /* to_str(bytes(value)): the same bytes, as a str */
    return v->tag == PW_STR ? v : pw_str_new(((pw_str *)v)->data, ((pw_str *)v)->len, PW_STR);
}

static pw_obj *pair(pw_obj *k, pw_obj *v) {
    pw_obj *kv[2] = {k, v};
    return pw_tuple_new(2, kv);
}

/* -- HeaderMap --------------------------------------------------------------------------- */

/* _items(): the map as (name, value) pairs, fetched once per epoch */
static pw_obj *hm_items(pw_obj *m) {
    if (F(m, HM_EPOCH).i != pw_map_epoch) {
        pw_enter_id((uint32_t)F(m, HM_CTX).i);
        pw_obj *pairs = pw_get_headers(NULL, F(m, HM_MAP).i);
        if (pairs == NULL) return NULL;
        F(m, HM_PAIRS).p = pairs;
        F(m, HM_EPOCH).i = pw_map_epoch;
    }
    return F(m, HM_PAIRS).p;
}

/* _name(): name.lower(); the name itself when it is ASCII with no upper case (the usual case:
 * no allocation, no method lookup) */
static pw_obj *key_scan(pw_obj *name) {
    if (name->tag == PW_STR) {
        pw_str *s = (pw_str *)name;
        uint32_t i = 0;
        while (i < s->len && (unsigned char)s->data[i] < 0x80 && !(s->data[i] >= 'A' && s->data[i] <= 'Z')) i++;
        if (i == s->len) return name;
    }
    return pw_meth_str(name, "lower", 0, NULL);
}
/* a literal known lower-case when compiled needs no scan (its mark says so: PW_STR_LIT_LOWER) */
static inline __attribute__((always_inline)) pw_obj *key_of(pw_obj *name) {
    return name->mark == PW_STATIC_LOWER ? name : key_scan(name);
}

static pw_obj *pk(pw_obj *p) { return ((pw_list *)p)->items[0]; }
static pw_obj *pv(pw_obj *p) { return ((pw_list *)p)->items[1]; }

/* pw_enter_id with its test inline (the call only when the context changes) */
#define ENTER(id)                                           \
    do {                                                    \
        uint32_t id_ = (id);                                \
        if (id_ != pw_effective_id) pw_enter_id(id_);       \
    } while (0)

/* inlined: on the hot path of a single read it saves a call and its argument passing */
#define HOT static inline __attribute__((always_inline))
HOT int host_first(uint32_t context_id, uint32_t map, pw_obj *key, pw_obj **out);

/* _first(name): 1 and *out when present, 0 when absent, -1 on an error. From the kept copy
 * when the whole map is here; else one host call for that name (hostcalls.find_map_value):
 * in Envoy a whole-map fetch costs more than two single reads. Absent also when the host has
 * let go of the map (BAD_ARGUMENT), as the whole-map read sees it empty. */
static int hm_first(pw_obj *m, pw_obj *name, pw_obj **out) {
    pw_obj *key = key_of(name);
    if (key == NULL) return -1;
    if (F(m, HM_EPOCH).i == pw_map_epoch) {
        pw_list *l = (pw_list *)F(m, HM_PAIRS).p;
        for (uint32_t i = 0; i < l->len; i++)
            if (pw_dyn_eq(pk(l->items[i]), key)) { *out = pv(l->items[i]); return 1; }
        return 0;
    }
    return host_first((uint32_t)F(m, HM_CTX).i, (uint32_t)F(m, HM_MAP).i, key, out);
}

/* the host call of hm_first (also for a map with no view made: pw_ctx_hm_*) */
HOT int host_first(uint32_t context_id, uint32_t map, pw_obj *key, pw_obj **out) {
    ENTER(context_id);
    pw_str *k = (pw_str *)key;
    char *data = NULL;
    uint32_t size = 0;
    uint32_t status = proxy_get_header_map_value(map, k->data, k->len, &data, &size);
    if (status == 1 || status == 2) { free(data); return 0; }
    if (status != 0) { pw_map_check("proxy_get_header_map_value", status, map); free(data); return -1; }
    *out = pw_str_new(data ? data : "", data ? size : 0, PW_STR);
    free(data);
    return 1;
}

/* _names(): each name once, in order */
static pw_obj *hm_names(pw_obj *m) {
    pw_obj *items = hm_items(m);
    if (items == NULL) return NULL;
    pw_obj *seen = pw_dict_new(), *out = pw_list_new(0);
    pw_list *l = (pw_list *)items;
    for (uint32_t i = 0; i < l->len; i++) {
        pw_obj *k = pk(l->items[i]);
        if (pw_dict_lookup(seen, k)) continue;
        pw_dict_set(seen, k, PW_NONE_V);
        pw_list_append(out, k);
    }
    return out;
}

/* the same over a list of pairs (a FrozenHeaders) */
static int first_in(pw_obj *pairs, pw_obj *name, pw_obj **out) {
    pw_obj *key = key_of(name);
    if (key == NULL) return -1;
    pw_list *l = (pw_list *)pairs;
    for (uint32_t i = 0; i < l->len; i++)
        if (pw_dyn_eq(pk(l->items[i]), key)) { *out = pv(l->items[i]); return 1; }
    return 0;
}

static pw_obj *names_in(pw_obj *pairs) {
    pw_obj *seen = pw_dict_new(), *out = pw_list_new(0);
    pw_list *l = (pw_list *)pairs;
    for (uint32_t i = 0; i < l->len; i++) {
        pw_obj *k = pk(l->items[i]);
        if (pw_dict_lookup(seen, k)) continue;
        pw_dict_set(seen, k, PW_NONE_V);
        pw_list_append(out, k);
    }
    return out;
}

/* One host call that changes the map (replace 'r', add 'a', remove 'd'), as hostcalls does it. */
HOT int host_write(uint32_t context_id, uint32_t map, int op, pw_obj *name, pw_obj *value, int text);

static int hm_host(pw_obj *m, int op, pw_obj *name, pw_obj *value) {
    return host_write((uint32_t)F(m, HM_CTX).i, (uint32_t)F(m, HM_MAP).i, op, name, value, 0);
}

/* hm_host's work (also for a map with no view made: pw_ctx_hm_*); `text`: the frontend proved
 * name and value str or bytes. 0 when it raised (pw_map_check raises for any status it gets). */
HOT int host_write(uint32_t context_id, uint32_t map, int op, pw_obj *name, pw_obj *value, int text) {
    ENTER(context_id);
    pw_map_epoch++;
    if (!text && !IS_TEXT(name) && !str_or_bytes(name, "header name")) return 0;
    if (!text && op != 'd' && !IS_TEXT(value) && !str_or_bytes(value, "header value")) return 0;
    pw_str *k = (pw_str *)name, *v = (pw_str *)value;
    if (op == 'd') {
        uint32_t status = proxy_remove_header_map_value(map, k->data, k->len);
        if (status == 0 || status == 1) return 1;
        pw_map_check("proxy_remove_header_map_value", status, map);
        return 0;
    }
    uint32_t status = op == 'r' ? proxy_replace_header_map_value(map, k->data, k->len, v->data, v->len)
                                : proxy_add_header_map_value(map, k->data, k->len, v->data, v->len);
    if (status == 0) return 1;
    pw_map_check(op == 'r' ? "proxy_replace_header_map_value" : "proxy_add_header_map_value", status, map);
    return 0;
}

/* the kept pairs without `key` (and, if `add` is set, with it appended) */
static pw_obj *hm_without(pw_obj *m, pw_obj *key, pw_obj *add) {
    pw_list *l = (pw_list *)F(m, HM_PAIRS).p;
    pw_obj *out = pw_list_new(l ? l->len + 1 : 1);
    for (uint32_t i = 0; l && i < l->len; i++)
        if (!pw_dyn_eq(pk(l->items[i]), key)) pw_list_append(out, l->items[i]);
    if (add) pw_list_append(out, add);
    return out;
}

static int hm_setitem(pw_obj *m, pw_obj *name, pw_obj *value) {
    int valid = F(m, HM_EPOCH).i == pw_map_epoch;
    if (!hm_host(m, 'r', name, value)) return 0;
    if (valid) {
        /* As Envoy 1.40 (measured): every value goes, the new one is appended at the end. */
        pw_obj *key = key_of(name);
        if (key == NULL) return 0;
        F(m, HM_PAIRS).p = hm_without(m, key, pair(key, as_text(value)));
    }
    F(m, HM_EPOCH).i = valid ? pw_map_epoch : -1;
    return 1;
}

static int hm_add(pw_obj *m, pw_obj *name, pw_obj *value) {
    int valid = F(m, HM_EPOCH).i == pw_map_epoch;
    if (!hm_host(m, 'a', name, value)) return 0;
    if (valid) {
        pw_obj *key = key_of(name);
        if (key == NULL) return 0;
        pw_list_append(F(m, HM_PAIRS).p = hm_without(m, PW_NONE_V, NULL), pair(key, as_text(value)));
    }
    F(m, HM_EPOCH).i = valid ? pw_map_epoch : -1;
    return 1;
}

static int hm_remove(pw_obj *m, pw_obj *name) {
    int valid = F(m, HM_EPOCH).i == pw_map_epoch;
    if (!hm_host(m, 'd', name, NULL)) return 0;
    if (valid) {
        pw_obj *key = key_of(name);
        if (key == NULL) return 0;
        F(m, HM_PAIRS).p = hm_without(m, key, NULL);
    }
    F(m, HM_EPOCH).i = valid ? pw_map_epoch : -1;
    return 1;
}

/* every value of `key` among `pairs` (their str values, or the host's bytes) */
static pw_obj *values_of(pw_obj *pairs, pw_obj *key, int as_bytes) {
    pw_obj *out = pw_list_new(0);
    pw_list *l = (pw_list *)pairs;
    for (uint32_t i = 0; i < l->len; i++) {
        if (!pw_dyn_eq(pk(l->items[i]), key)) continue;
        pw_str *v = (pw_str *)pv(l->items[i]);
        pw_list_append(out, as_bytes ? pw_str_new(v->data, v->len, PW_BYTES) : &v->h);
    }
    return out;
}

/* -- the direct entry points -------------------------------------------------------------
 * What the frontend calls when mypy types the receiver a HeaderMap (pw_sdk.h): no method name
 * compared at run time. hm_method (the by-name path) calls the same code, so both behave alike.
 * A receiver that is not a HeaderMap after all (an Any mypy took at its word) goes by name. */

static pw_obj *by_name(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    pw_native_fn f = pw_native_of(self);
    if (f == NULL) { pw_attr_error(self, name); return NULL; }
    return f(self, name, argc, argv);
}

#define NOT_HM(m) ((m)->tag != PW_INST || ((pw_inst *)(m))->cls != &pw_cls_HeaderMap)

pw_obj *pw_hm_get(pw_obj *m, pw_obj *name, pw_obj *dflt) {
    if (NOT_HM(m)) return by_name(m, "get", 2, (pw_obj *[]){name, dflt});
    pw_obj *v = NULL;
    int found = hm_first(m, name, &v);
    return found < 0 ? NULL : found ? v : dflt;
}

pw_obj *pw_hm_getitem(pw_obj *m, pw_obj *name) {
    if (NOT_HM(m)) return by_name(m, "__getitem__", 1, &name);
    pw_obj *v = NULL;
    int found = hm_first(m, name, &v);
    if (found == 0) pw_raise(&pw_KeyError, name);
    return found > 0 ? v : NULL;
}

int pw_hm_contains(pw_obj *m, pw_obj *name) {
    if (NOT_HM(m)) {
        pw_obj *r = by_name(m, "__contains__", 1, &name);
        return r ? pw_truthy(r) : 0;
    }
    if (name->tag != PW_STR) return 0;
    pw_obj *v = NULL;
    return hm_first(m, name, &v) > 0;
}

pw_obj *pw_hm_setitem(pw_obj *m, pw_obj *name, pw_obj *value) {
    if (NOT_HM(m)) return by_name(m, "__setitem__", 2, (pw_obj *[]){name, value});
    return hm_setitem(m, name, value) ? PW_NONE_V : NULL;
}

pw_obj *pw_hm_add(pw_obj *m, pw_obj *name, pw_obj *value) {
    if (NOT_HM(m)) return by_name(m, "add", 2, (pw_obj *[]){name, value});
    return hm_add(m, name, value) ? PW_NONE_V : NULL;
}

pw_obj *pw_hm_delitem(pw_obj *m, pw_obj *name) {
    if (NOT_HM(m)) return by_name(m, "__delitem__", 1, &name);
    pw_obj *v = NULL;
    int found = name->tag == PW_STR ? hm_first(m, name, &v) : 0;
    if (found < 0) return NULL;
    if (!found) { pw_raise(&pw_KeyError, name); return NULL; }
    return hm_remove(m, name) ? PW_NONE_V : NULL;
}

/* pop(name) (dflt NULL: KeyError when absent) or pop(name, dflt) */
pw_obj *pw_hm_pop(pw_obj *m, pw_obj *name, pw_obj *dflt) {
    if (NOT_HM(m)) return by_name(m, "pop", dflt ? 2 : 1, (pw_obj *[]){name, dflt});
    pw_obj *v = NULL;
    int found = hm_first(m, name, &v);
    if (found < 0) return NULL;
    if (!found) {
        if (dflt) return dflt;
        pw_raise(&pw_KeyError, name);
        return NULL;
    }
    return hm_remove(m, name) ? v : NULL;
}

/* The same for ctx.request.headers (map 0), .trailers (1), ctx.response.headers (2), .trailers (3)
 * with no view made: the frontend calls these when the map is only the receiver of such calls.
 * A map made already is used (its kept copy may answer); else a view not made yet would be a
 * new one, with nothing kept (epoch -1), which these calls leave so: only their host calls are
 * left to do, as the methods do them with nothing kept. */
static pw_obj *made_map(pw_obj *ctx, int64_t map) {
    /* map 0-3: request / response (fields 2, 3 of the context), headers / trailers */
    pw_obj *d = F(ctx, PW_F_REQUEST + (map >> 1)).p;
    return d ? F(d, DIR_HEADERS + (map & 1)).p : NULL;
}
#define CTX_ID(ctx) ((uint32_t)F(ctx, PW_F_CONTEXT_ID).i)

pw_obj *pw_ctx_hm_get(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *dflt) {
    pw_obj *m = made_map(ctx, map), *v = NULL, *key;
    if (m) return pw_hm_get(m, name, dflt);
    if ((key = key_of(name)) == NULL) return NULL;
    int found = host_first(CTX_ID(ctx), (uint32_t)map, key, &v);
    return found < 0 ? NULL : found ? v : dflt;
}

pw_obj *pw_ctx_hm_getitem(pw_obj *ctx, int64_t map, pw_obj *name) {
    pw_obj *m = made_map(ctx, map), *v = NULL, *key;
    if (m) return pw_hm_getitem(m, name);
    if ((key = key_of(name)) == NULL) return NULL;
    int found = host_first(CTX_ID(ctx), (uint32_t)map, key, &v);
    if (found == 0) pw_raise(&pw_KeyError, name);
    return found > 0 ? v : NULL;
}

int pw_ctx_hm_contains(pw_obj *ctx, int64_t map, pw_obj *name) {
    pw_obj *m = made_map(ctx, map), *v = NULL, *key;
    if (m) return pw_hm_contains(m, name);
    if (name->tag != PW_STR || (key = key_of(name)) == NULL) return 0;
    return host_first(CTX_ID(ctx), (uint32_t)map, key, &v) > 0;
}

/* map | PW_MAP_TEXT: the frontend proved name and value str or bytes (no test left to do) */
pw_obj *pw_ctx_hm_setitem(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *value) {
    pw_obj *m = made_map(ctx, map & 3);
    if (m) return pw_hm_setitem(m, name, value);
    int text = (map & PW_MAP_TEXT) != 0;
    return host_write(CTX_ID(ctx), (uint32_t)map & 3, 'r', name, value, text) ? PW_NONE_V : NULL;
}

pw_obj *pw_ctx_hm_add(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *value) {
    pw_obj *m = made_map(ctx, map & 3);
    if (m) return pw_hm_add(m, name, value);
    int text = (map & PW_MAP_TEXT) != 0;
    return host_write(CTX_ID(ctx), (uint32_t)map & 3, 'a', name, value, text) ? PW_NONE_V : NULL;
}

pw_obj *pw_ctx_hm_delitem(pw_obj *ctx, int64_t map, pw_obj *name) {
    pw_obj *m = made_map(ctx, map), *v = NULL, *key;
    if (m) return pw_hm_delitem(m, name);
    int found = name->tag == PW_STR && (key = key_of(name)) != NULL ? host_first(CTX_ID(ctx), (uint32_t)map, key, &v)
                                                                    : 0;
    if (PW_ERR) return NULL;
    if (!found) { pw_raise(&pw_KeyError, name); return NULL; }
    return host_write(CTX_ID(ctx), (uint32_t)map, 'd', name, NULL, 0) ? PW_NONE_V : NULL;
}

pw_obj *pw_ctx_hm_pop(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *dflt) {
    pw_obj *m = made_map(ctx, map), *v = NULL, *key;
    if (m) return pw_hm_pop(m, name, dflt);
    if ((key = key_of(name)) == NULL) return NULL;
    int found = host_first(CTX_ID(ctx), (uint32_t)map, key, &v);
    if (found < 0) return NULL;
    if (!found) {
        if (dflt) return dflt;
        pw_raise(&pw_KeyError, name);
        return NULL;
    }
    return host_write(CTX_ID(ctx), (uint32_t)map, 'd', name, NULL, 0) ? v : NULL;
}

static pw_obj *hm_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    static const char C[] = "HeaderMap";
#define IS(s) (strcmp(name, s) == 0)
#define ARGS(lo, hi) \
    if (!want_args(C, name, argc, lo, hi)) return NULL
    pw_obj *v = NULL;
    int found;
    if (IS("get")) {
        ARGS(1, 2);
        return pw_hm_get(self, argv[0], argc > 1 ? argv[1] : PW_NONE_V);
    }
    if (IS("__getitem__")) { ARGS(1, 1); return pw_hm_getitem(self, argv[0]); }
    if (IS("pop")) { ARGS(1, 64); return pw_hm_pop(self, argv[0], argc > 1 ? argv[1] : NULL); }
    if (IS("__contains__")) {
        ARGS(1, 1);
        found = pw_hm_contains(self, argv[0]);
        return PW_ERR ? NULL : pw_box_bool(found);
    }
    if (IS("__setitem__")) { ARGS(2, 2); return pw_hm_setitem(self, argv[0], argv[1]); }
    if (IS("add")) { ARGS(2, 2); return pw_hm_add(self, argv[0], argv[1]); }
    if (IS("__delitem__")) { ARGS(1, 1); return pw_hm_delitem(self, argv[0]); }
    if (IS("__len__") || IS("__bool__") || IS("__iter__") || IS("keys")) {
        ARGS(0, 0);
        pw_obj *names = hm_names(self);
        if (names == NULL) return NULL;
        if (IS("__len__")) return pw_box_int(((pw_list *)names)->len);
        if (IS("__bool__")) return pw_box_bool(((pw_list *)names)->len != 0);
        return names;
    }
    if (IS("values") || IS("items")) {  /* Mapping's mixins: the first value of each name */
        ARGS(0, 0);
        pw_obj *names = hm_names(self);
        if (names == NULL) return NULL;
        pw_obj *out = pw_list_new(((pw_list *)names)->len);
        for (uint32_t i = 0; i < ((pw_list *)names)->len; i++) {
            pw_obj *k = ((pw_list *)names)->items[i];
            if (hm_first(self, k, &v) < 0) return NULL;
            pw_list_append(out, IS("items") ? pair(k, v) : v);
        }
        return out;
    }
    if (IS("get_all")) {
        ARGS(1, 1);
        pw_obj *key = key_of(argv[0]), *items = key ? hm_items(self) : NULL;
        return items ? values_of(items, key, 0) : NULL;
    }
    if (IS("multi_items")) {
        ARGS(0, 0);
        pw_obj *items = hm_items(self);
        return items ? pw_to_list(items) : NULL;
    }
    if (IS("get_bytes")) {
        ARGS(1, 1);
        pw_enter_id((uint32_t)F(self, HM_CTX).i);
        if (!str_or_bytes(argv[0], "header name")) return NULL;
        pw_str *k = (pw_str *)argv[0];
        char *data = NULL;
        uint32_t size = 0;
        uint32_t map = (uint32_t)F(self, HM_MAP).i;
        uint32_t status = proxy_get_header_map_value(map, k->data, k->len, &data, &size);
        if (status == 1) { free(data); return PW_NONE_V; }
        pw_map_check("proxy_get_header_map_value", status, map);
        if (PW_ERR) { free(data); return NULL; }
        v = pw_str_new(data ? data : "", data ? size : 0, PW_BYTES);
        free(data);
        return v;
    }
    if (IS("get_all_bytes")) {
        ARGS(1, 1);
        pw_enter_id((uint32_t)F(self, HM_CTX).i);
        pw_obj *key = key_of(argv[0]);
        if (key == NULL) return NULL;
        pw_obj *pairs = pw_get_headers(NULL, F(self, HM_MAP).i);
        return pairs ? values_of(pairs, as_text(key), 1) : NULL;
    }
    if (IS("setdefault")) {  /* MutableMapping.setdefault */
        ARGS(1, 2);
        if ((found = hm_first(self, argv[0], &v)) < 0) return NULL;
        if (found) return v;
        pw_obj *dflt = argc > 1 ? argv[1] : PW_NONE_V;
        return hm_setitem(self, argv[0], dflt) ? dflt : NULL;
    }
    if (IS("update")) {  /* MutableMapping.update(other): a mapping's items, or pairs */
        ARGS(0, 1);
        if (argc == 0) return PW_NONE_V;
        pw_obj *src = argv[0];
        pw_obj *pairs = src->tag == PW_DICT || pw_native_of(src) ? pw_items_of(src) : src;
        pw_obj *it = pairs ? pw_iter(pairs) : NULL, *item;
        if (it == NULL) return NULL;
        while ((item = pw_next(it)) != NULL) {
            pw_obj *kv[2];
            pw_unpack(item, 2, kv);
            if (PW_ERR || !hm_setitem(self, kv[0], kv[1])) return NULL;
        }
        return PW_ERR ? NULL : PW_NONE_V;
    }
    if (IS("clear")) {  /* MutableMapping.clear: popitem until empty, a name at a time */
        ARGS(0, 0);
        for (;;) {
            pw_obj *names = hm_names(self);
            if (names == NULL) return NULL;
            if (((pw_list *)names)->len == 0) return PW_NONE_V;
            if (!hm_remove(self, ((pw_list *)names)->items[0])) return NULL;
        }
    }
    if (IS("replace_all")) {
        ARGS(1, 1);
        pw_enter_id((uint32_t)F(self, HM_CTX).i);
        pw_set_headers(NULL, F(self, HM_MAP).i, argv[0]);
        F(self, HM_EPOCH).i = -1;
        return PW_ERR ? NULL : PW_NONE_V;
    }
    if (IS("__repr__")) {
        pw_obj *items = hm_items(self);
        if (items == NULL) return NULL;
        pw_obj *parts[3] = {pw_str_new("HeaderMap(", 10, PW_STR), pw_repr_of(items), pw_str_new(")", 1, PW_STR)};
        return pw_str_join_n(3, parts);
    }
    pw_attr_error(self, name);
    return NULL;
}

/* -- Body ------------------------------------------------------------------------------------ */

static const char *const buffer_names[] = {"HTTP_REQUEST_BODY", "HTTP_RESPONSE_BODY", "DOWNSTREAM_DATA",
                                           "UPSTREAM_DATA", "HTTP_CALL_RESPONSE_BODY", "GRPC_CALL_MESSAGE",
                                           "VM_CONFIGURATION", "PLUGIN_CONFIGURATION", "FOREIGN_FUNCTION_ARGUMENTS"};

static const char *buffer_name(pw_obj *b) {
    int64_t t = F(b, BODY_BUF).i;
    return t >= 0 && t < 9 ? buffer_names[t] : "?";
}

static pw_obj *body_read(pw_obj *b) {
    pw_enter_id((uint32_t)F(b, BODY_CTX).i);
    char *data = NULL;
    uint32_t got = 0;
    uint32_t status = proxy_get_buffer_bytes((uint32_t)F(b, BODY_BUF).i, 0, 0xffffffffu, &data, &got);
    if (status != 0 && status != 1 && status != 7 /* EMPTY */) {
        free(data);
        pw_host_error("proxy_get_buffer_bytes", status, buffer_name(b));
        return NULL;
    }
    pw_obj *v = pw_str_new(status == 0 && data ? data : "", status == 0 && data ? got : 0, PW_BYTES);
    free(data);
    return v;
}

static int body_len(pw_obj *b, int64_t *out) {  /* __len__ (get_buffer_status), -1 on an error */
    pw_enter_id((uint32_t)F(b, BODY_CTX).i);
    uint32_t size = 0, flags = 0;
    uint32_t status = proxy_get_buffer_status((uint32_t)F(b, BODY_BUF).i, &size, &flags);
    *out = 0;
    if (status == 1) return 0;
    if (status != 0) { pw_host_error("proxy_get_buffer_status", status, buffer_name(b)); return -1; }
    *out = size;
    return 0;
}

/* hostcalls.set_buffer_bytes(buffer, value, start, size); size < 0: to the end */
static pw_obj *body_set(pw_obj *b, pw_obj *value, int64_t start, int64_t size) {
    if (size < 0) {
        int64_t cur;
        if (body_len(b, &cur) < 0) return NULL;
        size = cur - start > 0 ? cur - start : 0;
    }
    pw_str *v = (pw_str *)value;
    uint32_t status = proxy_set_buffer_bytes((uint32_t)F(b, BODY_BUF).i, (uint32_t)start, (uint32_t)size, v->data,
                                             v->len);
    if (status != 0) {
        char detail[120];
        snprintf(detail, sizeof detail, "%s start=%lld size=%lld", buffer_name(b), (long long)start, (long long)size);
        pw_host_error("proxy_set_buffer_bytes", status, detail);
        return NULL;
    }
    return PW_NONE_V;
}

static pw_obj *body_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    static const char C[] = "Body";
    if (IS("read")) { ARGS(0, 0); return body_read(self); }
    if (IS("__len__") || IS("__bool__")) {
        ARGS(0, 0);
        int64_t n;
        if (body_len(self, &n) < 0) return NULL;
        return IS("__len__") ? pw_box_int(n) : pw_box_bool(n != 0);
    }
    if (IS("text")) {
        ARGS(0, 1);
        if (argc == 1) {
            pw_obj *enc = argv[0]->tag == PW_STR ? pw_meth_str(argv[0], "lower", 0, NULL) : NULL;
            pw_str *e = (pw_str *)enc;
            if (!(e && ((e->len == 5 && !memcmp(e->data, "utf-8", 5)) || (e->len == 4 && !memcmp(e->data, "utf8", 4)) ||
                        (e->len == 5 && !memcmp(e->data, "utf_8", 5))))) {
                pw_err = NULL;
                pw_raise_c(&pw_LookupError, "Body.text() decodes UTF-8 only in the compact backend");
                return NULL;
            }
        }
        pw_obj *raw = body_read(self);
        return raw ? pw_bytes_decode_replace(raw) : NULL;
    }
    if (IS("json")) {
        ARGS(0, 0);
        pw_obj *raw = body_read(self);
        return raw ? pw_json_loads(raw) : NULL;
    }
    if (IS("replace") || IS("append") || IS("prepend")) {
        ARGS(1, 1);
        pw_enter_id((uint32_t)F(self, BODY_CTX).i);
        if (!str_or_bytes(argv[0], "body")) return NULL;
        int64_t start = 0, size = IS("replace") ? -1 : 0;
        if (IS("append") && body_len(self, &start) < 0) return NULL;
        return body_set(self, argv[0], start, size);
    }
    if (IS("__repr__")) {
        char text[64];
        int n = snprintf(text, sizeof text, "Body(%s)", buffer_name(self));
        return pw_str_new(text, (size_t)n, PW_STR);
    }
    pw_attr_error(self, name);
    return NULL;
}

/* -- Request, Response ------------------------------------------------------------------------ */

pw_obj *pw_http_view(pw_obj *self, int64_t which) {
    int f = which ? PW_F_RESPONSE : PW_F_REQUEST;
    pw_inst *c = (pw_inst *)self;
    if (c->f[f].p == NULL) {
        pw_obj *d = new_view(which ? &pw_cls_Response : &pw_cls_Request, c->f[PW_F_CONTEXT_ID].i);
        F(d, DIR_KIND).i = which;
        c->f[f].p = d;
        c->set |= UINT64_C(1) << f;
    }
    return c->f[f].p;
}

static pw_obj *dir_view(pw_obj *d, int field) {
    if (F(d, field).p == NULL) {
        int64_t kind = F(d, DIR_KIND).i;
        pw_obj *v;
        if (field == DIR_BODY) {
            v = new_view(&pw_cls_Body, F(d, DIR_CTX).i);
            F(v, BODY_BUF).i = kind;  /* HTTP_REQUEST_BODY 0, HTTP_RESPONSE_BODY 1 */
        } else {
            v = new_view(&pw_cls_HeaderMap, F(d, DIR_CTX).i);
            F(v, HM_MAP).i = kind * 2 + (field == DIR_TRAILERS);  /* request 0/1, response 2/3 */
            F(v, HM_PAIRS).p = NULL;
            F(v, HM_EPOCH).i = -1;  /* nothing fetched yet */
        }
        F(d, field).p = v;
    }
    return F(d, field).p;
}

static pw_obj *response_getattr(pw_obj *r, const char *name);

/* view.headers / .trailers / .body with no name compared (the frontend's direct calls when mypy
 * types the view a Request or Response; anything else, as a callout's answer, goes by name) */
static pw_obj *dir_field(pw_obj *view, int field, const char *name) {
    const pw_class *c = ((pw_inst *)view)->cls;
    if (view->tag != PW_INST || (c != &pw_cls_Request && c != &pw_cls_Response)) return pw_view_getattr(view, name);
    return dir_view(view, field);
}
pw_obj *pw_view_headers(pw_obj *view) { return dir_field(view, DIR_HEADERS, "headers"); }
pw_obj *pw_view_trailers(pw_obj *view) { return dir_field(view, DIR_TRAILERS, "trailers"); }
pw_obj *pw_view_body(pw_obj *view) { return dir_field(view, DIR_BODY, "body"); }

pw_obj *pw_view_getattr(pw_obj *view, const char *name) {
    if (((pw_inst *)view)->cls == &pw_cls_HttpResponse) return response_getattr(view, name);
    if (IS("headers")) return dir_view(view, DIR_HEADERS);
    if (IS("trailers")) return dir_view(view, DIR_TRAILERS);
    if (IS("body")) return dir_view(view, DIR_BODY);
    int response = F(view, DIR_KIND).i == 1;
    if (!response && (IS("method") || IS("path") || IS("authority") || IS("scheme"))) {
        /* str(self.headers.get(":method", "")) */
        char key[16];
        int n = snprintf(key, sizeof key, ":%s", name);
        pw_obj *v = NULL;
        int found = hm_first(dir_view(view, DIR_HEADERS), pw_str_new(key, (size_t)n, PW_STR), &v);
        if (found < 0) return NULL;
        return found ? pw_str_of(v) : pw_str_new("", 0, PW_STR);
    }
    if (response && IS("status")) {
        /* int(value) if isinstance(value, str) and value.isdigit() else None */
        pw_obj *v = NULL;
        int found = hm_first(dir_view(view, DIR_HEADERS), pw_str_new(":status", 7, PW_STR), &v);
        if (found < 0) return NULL;
        if (!found || v->tag != PW_STR || ((pw_str *)v)->len == 0) return PW_NONE_V;
        pw_str *s = (pw_str *)v;
        for (uint32_t i = 0; i < s->len; i++)
            if (s->data[i] < '0' || s->data[i] > '9') return PW_NONE_V;
        int64_t status = pw_int_from_str(v);
        return PW_ERR ? NULL : pw_box_int(status);
    }
    pw_attr_error(view, name);
    return NULL;
}

static pw_obj *dir_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    (void)argc;
    (void)argv;
    if (IS("__bool__")) return pw_box_bool(1);
    if (IS("__repr__")) {
        const char *cls = ((pw_inst *)self)->cls->name;
        char text[64];
        int n = snprintf(text, sizeof text, "<proxywasm.views.%s object>", cls);
        return pw_str_new(text, (size_t)n, PW_STR);
    }
    pw_attr_error(self, name);
    return NULL;
}

/* -- callouts: HttpCall, gather, HttpResponse, FrozenHeaders (proxywasm.calls) ------------- */

enum { CALL_TOKEN, CALL_CLUSTER, CALL_RESPONSE, CALL_NFIELDS };
enum { RESP_STATUS, RESP_HEADERS, RESP_BODY, RESP_TRAILERS, RESP_NFIELDS };

static pw_obj *frozen_method(pw_obj *self, const char *name, int argc, pw_obj **argv);
static pw_obj *response_method(pw_obj *self, const char *name, int argc, pw_obj **argv);
static pw_obj *call_method(pw_obj *self, const char *name, int argc, pw_obj **argv);

const pw_class pw_cls_FrozenHeaders = {"FrozenHeaders", NULL, 1, 1u, PW_NATIVE, {(void *)frozen_method}};
const pw_class pw_cls_HttpResponse = {"HttpResponse", NULL, RESP_NFIELDS,
                                      (1u << RESP_HEADERS) | (1u << RESP_BODY) | (1u << RESP_TRAILERS), PW_NATIVE,
                                      {(void *)response_method}};
const pw_class pw_cls_HttpCall = {"HttpCall", NULL, CALL_NFIELDS, (1u << CALL_CLUSTER) | (1u << CALL_RESPONSE),
                                  PW_NATIVE, {(void *)call_method}};
const pw_class pw_cls_Gather = {"_Gather", NULL, 1, 1u, PW_NATIVE, {(void *)call_method}};
const pw_exc_type pw_GeneratorExit = {"GeneratorExit", &pw_BaseException};
pw_obj pw_suspended = {PW_NONE, PW_STATIC, 0};

static pw_obj *frozen_new(pw_obj *pairs) {  /* FrozenHeaders(pairs): names lower-cased */
    pw_obj *out = pw_list_new(((pw_list *)pairs)->len);
    for (uint32_t i = 0; i < ((pw_list *)pairs)->len; i++) {
        pw_obj *p = ((pw_list *)pairs)->items[i], *k = key_of(pk(p));
        if (k == NULL) return NULL;
        pw_list_append(out, pair(k, pv(p)));
    }
    pw_obj *f = new_view(&pw_cls_FrozenHeaders, 0);
    F(f, 0).p = out;
    return f;
}

static pw_obj *frozen_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    static const char C[] = "FrozenHeaders";
    pw_obj *pairs = F(self, 0).p, *v = NULL;
    int found;
    if (IS("__getitem__") || IS("get") || IS("__contains__")) {
        ARGS(1, IS("get") ? 2 : 1);
        if ((found = first_in(pairs, argv[0], &v)) < 0) return NULL;
        if (IS("__contains__")) return pw_box_bool(found);
        if (found) return v;
        if (IS("get")) return argc > 1 ? argv[1] : PW_NONE_V;
        pw_raise(&pw_KeyError, argv[0]);
        return NULL;
    }
    if (IS("__len__") || IS("__bool__") || IS("__iter__") || IS("keys") || IS("values") || IS("items")) {
        ARGS(0, 0);
        pw_obj *names = names_in(pairs);
        uint32_t n = ((pw_list *)names)->len;
        if (IS("__len__")) return pw_box_int(n);
        if (IS("__bool__")) return pw_box_bool(n != 0);
        if (IS("__iter__") || IS("keys")) return names;
        pw_obj *out = pw_list_new(n);
        for (uint32_t i = 0; i < n; i++) {
            pw_obj *k = ((pw_list *)names)->items[i];
            first_in(pairs, k, &v);
            pw_list_append(out, IS("items") ? pair(k, v) : v);
        }
        return out;
    }
    if (IS("get_all")) {
        ARGS(1, 1);
        pw_obj *key = key_of(argv[0]);
        return key ? values_of(pairs, key, 0) : NULL;
    }
    if (IS("multi_items")) { ARGS(0, 0); return pw_to_list(pairs); }
    if (IS("__repr__")) {
        pw_obj *parts[3] = {pw_str_new("FrozenHeaders(", 14, PW_STR), pw_repr_of(pairs), pw_str_new(")", 1, PW_STR)};
        return pw_str_join_n(3, parts);
    }
    pw_attr_error(self, name);
    return NULL;
}

static pw_obj *response_new(pw_obj *headers, pw_obj *body, pw_obj *trailers) {
    pw_obj *h = frozen_new(headers), *t = h ? frozen_new(trailers) : NULL;
    if (t == NULL) return NULL;
    pw_obj *r = new_view(&pw_cls_HttpResponse, 0);
    F(r, RESP_HEADERS).p = h;
    F(r, RESP_BODY).p = body;
    F(r, RESP_TRAILERS).p = t;
    /* status = headers.get(":status", ""); int(status) if status.isdigit() else 0 */
    pw_obj *v = NULL;
    first_in(F(h, 0).p, pw_str_new(":status", 7, PW_STR), &v);
    int digits = v != NULL && v->tag == PW_STR && ((pw_str *)v)->len > 0;
    for (uint32_t i = 0; digits && i < ((pw_str *)v)->len; i++)
        digits = ((pw_str *)v)->data[i] >= '0' && ((pw_str *)v)->data[i] <= '9';
    F(r, RESP_STATUS).i = digits ? pw_int_from_str(v) : 0;
    return PW_ERR ? NULL : r;
}

static pw_obj *response_getattr(pw_obj *r, const char *name) {
    if (IS("status")) return pw_box_int(F(r, RESP_STATUS).i);
    if (IS("headers")) return F(r, RESP_HEADERS).p;
    if (IS("body")) return F(r, RESP_BODY).p;
    if (IS("trailers")) return F(r, RESP_TRAILERS).p;
    pw_attr_error(r, name);
    return NULL;
}

static pw_obj *response_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    static const char C[] = "HttpResponse";
    (void)argv;
    if (IS("text")) { ARGS(0, 1); return pw_bytes_decode_replace(F(self, RESP_BODY).p); }
    if (IS("json")) { ARGS(0, 0); return pw_json_loads(F(self, RESP_BODY).p); }
    if (IS("__bool__")) return pw_box_bool(1);
    if (IS("__repr__")) {
        char text[96];
        int n = snprintf(text, sizeof text, "HttpResponse(status=%lld, body=%u bytes)", (long long)F(self, RESP_STATUS).i,
                         ((pw_str *)F(self, RESP_BODY).p)->len);
        return pw_str_new(text, (size_t)n, PW_STR);
    }
    pw_attr_error(self, name);
    return NULL;
}

static pw_obj *call_method(pw_obj *self, const char *name, int argc, pw_obj **argv) {
    (void)argc;
    (void)argv;
    if (IS("__bool__")) return pw_box_bool(1);
    if (IS("__repr__") && ((pw_inst *)self)->cls == &pw_cls_HttpCall) {
        pw_obj *r = pw_repr_of(F(self, CALL_CLUSTER).p);
        char text[300];
        int n = snprintf(text, sizeof text, "HttpCall(%.*s, token=%lld, %s)", (int)((pw_str *)r)->len,
                         ((pw_str *)r)->data, (long long)F(self, CALL_TOKEN).i,
                         F(self, CALL_RESPONSE).p ? "answered" : "pending");
        return pw_str_new(text, (size_t)n, PW_STR);
    }
    pw_attr_error(self, name);
    return NULL;
}

static int is_pseudo(pw_obj *k) {
    if (k->tag != PW_STR) return 0;
    pw_str *s = (pw_str *)k;
    return (s->len == 7 && !memcmp(s->data, ":method", 7)) || (s->len == 5 && !memcmp(s->data, ":path", 5)) ||
           (s->len == 10 && !memcmp(s->data, ":authority", 10));
}

pw_obj *pw_http_call(pw_obj *self, pw_obj *cluster, pw_obj *method, pw_obj *path, pw_obj *headers, pw_obj *body,
                     pw_obj *trailers, int64_t timeout_ms, pw_obj *authority) {
    pw_obj *pairs = pw_list_new(4);
    pw_list_append(pairs, pair(pw_str_new(":method", 7, PW_STR), method));
    pw_list_append(pairs, pair(pw_str_new(":path", 5, PW_STR), path));
    pw_list_append(pairs, pair(pw_str_new(":authority", 10, PW_STR), authority == PW_NONE_V ? cluster : authority));
    if (headers != PW_NONE_V && pw_truthy(headers)) {
        pw_obj *items = headers->tag == PW_DICT || pw_native_of(headers) ? pw_items_of(headers)
                                                                          : headers;
        pw_obj *it = items ? pw_iter(items) : NULL, *item;
        if (it == NULL) return NULL;
        while ((item = pw_next(it)) != NULL) {
            pw_obj *kv[2];
            pw_unpack(item, 2, kv);
            if (PW_ERR) return NULL;
            if (!is_pseudo(kv[0])) pw_list_append(pairs, pair(kv[0], kv[1]));
        }
        if (PW_ERR) return NULL;
    }
    int64_t token = pw_dispatch_http_call(self, cluster, pairs, body, trailers, timeout_ms);
    if (PW_ERR) return NULL;
    pw_obj *c = new_view(&pw_cls_HttpCall, token);
    F(c, CALL_CLUSTER).p = cluster;
    F(c, CALL_RESPONSE).p = NULL;
    return c;
}

pw_obj *pw_gather(pw_obj *calls) {
    pw_list *l = (pw_list *)calls;
    for (uint32_t i = 0; i < l->len; i++) {
        pw_obj *c = l->items[i];
        if (c->tag != PW_INST || ((pw_inst *)c)->cls != &pw_cls_HttpCall) {
            char msg[160];
            snprintf(msg, sizeof msg, "gather() takes the HttpCall objects of self.http_call(...), not %s",
                     pw_type_name(c));
            pw_raise_c(&pw_TypeError, msg);
            return NULL;
        }
    }
    pw_obj *g = new_view(&pw_cls_Gather, 0);
    F(g, 0).p = calls;
    return g;
}

/* the callouts an awaited object waits for (`one` holds a lone HttpCall) */
static uint32_t calls_of(pw_obj *aw, pw_obj **one, pw_obj ***out) {
    if (((pw_inst *)aw)->cls == &pw_cls_HttpCall) { *one = aw; *out = one; return 1; }
    pw_list *l = (pw_list *)F(aw, 0).p;
    *out = l->items;
    return l->len;
}

int pw_await_ready(pw_obj *aw) {
    pw_obj *one = NULL, **calls;
    uint32_t n = calls_of(aw, &one, &calls);
    for (uint32_t i = 0; i < n; i++)
        if (F(calls[i], CALL_RESPONSE).p == NULL) return 0;
    return 1;
}

pw_obj *pw_await_result(pw_obj *frame) {
    if (PW_CO_CANCELLED(frame)) {  /* the context ended: coro.close() throws GeneratorExit here */
        pw_raise(&pw_GeneratorExit, NULL);
        return NULL;
    }
    pw_obj *aw = PW_CO_AWAITED(frame), *one = NULL, **calls;
    uint32_t n = calls_of(aw, &one, &calls);
    pw_obj *out = pw_list_new(n);
    for (uint32_t i = 0; i < n; i++) {
        pw_obj *r = F(calls[i], CALL_RESPONSE).p;
        if (r == NULL) {
            pw_obj *c = pw_repr_of(F(calls[i], CALL_CLUSTER).p);
            char msg[300];
            snprintf(msg, sizeof msg, "callout %lld to %.*s resumed with no answer", (long long)F(calls[i], CALL_TOKEN).i,
                     (int)((pw_str *)c)->len, ((pw_str *)c)->data);
            pw_raise_c(&pw_RuntimeError, msg);
            return NULL;
        }
        if (aw == one) return r;
        pw_list_append(out, r);
    }
    return out;
}

/* -- the driver: proxywasm._tasks and the dispatcher's _start / _answer / _cancel_tasks ----- */

typedef struct {
    pw_obj *frame;
    pw_step_fn step;
    uint32_t ctx;
    const char *name;
    int stream;
    int replied;
} pw_task;

typedef struct { uint32_t token; pw_task *task; } pw_wait;
static pw_task **tasks;
static uint32_t ntasks, tasks_cap;
static pw_wait *waits;
static uint32_t nwaits, waits_cap;

static void *grow(void *p, uint32_t *cap, size_t item) {
    *cap = *cap ? *cap * 2 : 8;
    p = realloc(p, *cap * item);
    if (p == NULL) pw_fatal("out of memory");
    return p;
}

static void task_wait(pw_task *t) {  /* register the callouts it awaits now */
    pw_obj *one = NULL, **calls;
    uint32_t n = calls_of(PW_CO_AWAITED(t->frame), &one, &calls);
    for (uint32_t i = 0; i < n; i++) {
        if (F(calls[i], CALL_RESPONSE).p != NULL) continue;
        if (nwaits == waits_cap) waits = grow(waits, &waits_cap, sizeof(pw_wait));
        waits[nwaits++] = (pw_wait){(uint32_t)F(calls[i], CALL_TOKEN).i, t};
    }
}

static int task_waits(pw_task *t) {
    for (uint32_t i = 0; i < nwaits; i++)
        if (waits[i].task == t) return 1;
    return 0;
}

static void task_drop(pw_task *t) {  /* forget it: its waits and its place among the tasks */
    for (uint32_t i = 0; i < nwaits;)
        if (waits[i].task == t) waits[i] = waits[--nwaits];
        else i++;
    for (uint32_t i = 0; i < ntasks; i++)
        if (tasks[i] == t) { tasks[i] = tasks[--ntasks]; break; }
    free(t);
}

/* proxywasm._tasks.step's check of what the coroutine returned */
static int64_t coro_action(pw_obj *r, const char *name) {
    if (r == PW_NONE_V) return 0;
    if (r->tag == PW_INT && (((pw_int *)r)->v == 0 || ((pw_int *)r)->v == 1)) return ((pw_int *)r)->v;
    pw_obj *rep = pw_repr_of(r);
    char msg[400];
    snprintf(msg, sizeof msg, "%s returned %.*s; return Action.CONTINUE or Action.PAUSE", name, (int)((pw_str *)rep)->len,
             ((pw_str *)rep)->data);
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

static void task_failed(pw_task *t) {
    uint32_t ctx = t->ctx;
    int stream = t->stream;
    const char *name = t->name;
    task_drop(t);
    pw_report(name, ctx);
    pw_fail_task(ctx, stream);
}

/* step a task whose callouts have all answered */
static void task_step(pw_task *t) {
    pw_obj *r = t->step(t->frame);
    if (pw_has_replied(t->ctx)) t->replied = 1;
    if (r == &pw_suspended) { task_wait(t); return; }
    int64_t action = r ? coro_action(r, t->name) : 0;
    if (PW_ERR) { task_failed(t); return; }
    uint32_t ctx = t->ctx;
    int stream = t->stream, resume = action == 0 && stream >= 0 && !t->replied;
    const char *name = t->name;
    task_drop(t);
    if (resume) {
        static const char *const streams[] = {"HTTP_REQUEST", "HTTP_RESPONSE", "DOWNSTREAM", "UPSTREAM"};
        uint32_t status = proxy_continue_stream((uint32_t)stream);
        if (status != 0) {
            pw_host_error("proxy_continue_stream", status, streams[stream & 3]);
            pw_report(name, ctx);
        }
    }
}

static int task_answer(uint32_t token, uint32_t nh, uint32_t body_size, uint32_t nt) {
    pw_task *t = NULL;
    for (uint32_t i = 0; i < nwaits; i++)
        if (waits[i].token == token) { t = waits[i].task; waits[i] = waits[--nwaits]; break; }
    if (t == NULL) return 0;
    pw_enter_id(t->ctx);
    pw_obj *one = NULL, **calls, *call = NULL;
    uint32_t n = calls_of(PW_CO_AWAITED(t->frame), &one, &calls);
    for (uint32_t i = 0; i < n; i++)
        if ((uint32_t)F(calls[i], CALL_TOKEN).i == token && F(calls[i], CALL_RESPONSE).p == NULL) call = calls[i];
    pw_obj *headers = nh ? pw_get_headers(NULL, 6) : pw_list_new(0);
    pw_obj *body = headers && body_size ? pw_get_buffer(4, 0, body_size) : PW_NONE_V;
    if (body == PW_NONE_V) body = pw_str_new("", 0, PW_BYTES);
    pw_obj *trailers = body && nt ? pw_get_headers(NULL, 7) : pw_list_new(0);
    pw_obj *resp = trailers && !PW_ERR ? response_new(headers, body, trailers) : NULL;
    if (resp == NULL) { task_failed(t); return 1; }
    if (call) F(call, CALL_RESPONSE).p = resp;
    if (task_waits(t)) return 1;  /* a gather still waiting for others */
    task_step(t);
    return 1;
}

static void task_cancel(uint32_t context_id) {
    for (uint32_t i = 0; i < ntasks;) {
        pw_task *t = tasks[i];
        if (t->ctx != context_id) { i++; continue; }
        pw_obj *frame = t->frame;
        pw_step_fn step = t->step;
        const char *name = t->name;
        task_drop(t);
        PW_CO_CANCELLED(frame) = 1;
        pw_obj *r = step(frame);
        if (r == &pw_suspended) pw_raise_c(&pw_RuntimeError, "coroutine ignored GeneratorExit");
        if (PW_ERR && pw_exc_matches(&pw_GeneratorExit)) pw_err = NULL;
        if (PW_ERR) pw_report(name, context_id);
    }
}

static void task_mark(void (*mark)(pw_obj *)) {
    for (uint32_t i = 0; i < ntasks; i++) mark(tasks[i]->frame);
}

static const pw_task_hooks_t hooks = {task_answer, task_cancel, task_mark};

int64_t pw_task_start(pw_obj *frame, pw_step_fn step, pw_obj *ctx, const char *name, int stream) {
    pw_task_hooks = &hooks;
    uint32_t id = (uint32_t)((pw_inst *)ctx)->f[PW_F_CONTEXT_ID].i;
    pw_obj *r = step(frame);
    int replied = pw_has_replied(id);
    if (r == NULL) return 0;  /* raised: the dispatcher reports it and applies the policy */
    if (r != &pw_suspended) return coro_action(r, name);
    pw_task *t = malloc(sizeof *t);
    if (t == NULL) pw_fatal("out of memory");
    *t = (pw_task){frame, step, id, name, stream, replied};
    if (ntasks == tasks_cap) tasks = grow(tasks, &tasks_cap, sizeof(pw_task *));
    tasks[ntasks++] = t;
    task_wait(t);
    return 1;  /* PAUSE while it awaits */
}
