/* The compact backend's dispatcher and host calls (see pw_sdk.h).
 *
 * It mirrors proxywasm.dispatcher: root contexts are made at
 * proxy_on_context_create, stream contexts on their first callback through
 * the root's create_http_context; every callback runs inside the exception
 * barrier (one error entry with the traceback, then the failure policy:
 * closed = a 500 local reply and PAUSE, open = CONTINUE); the collector runs
 * when a callback returns. */
#include "pw_sdk.h"

#include <stdio.h>
#include <stdlib.h>

#include "pw_host.h"

const pw_exc_type pw_HostCallError = {"proxywasm.types.HostCallError", &pw_Exception};
pw_obj *(*pw_root_factory)(int64_t context_id);

/* -- the context table: id -> context, open addressing ------------------------- */

enum { K_EMPTY, K_ROOT, K_HTTP, K_PENDING, K_BROKEN, K_DEAD };
typedef struct { uint32_t id, parent; uint8_t kind; pw_obj *obj; } pw_slot;
static pw_slot *tab;
static uint32_t tab_cap, tab_used;

static pw_slot *find(uint32_t id) {
    if (!tab_cap) return NULL;
    for (uint32_t i = (id * 2654435761u) & (tab_cap - 1);; i = (i + 1) & (tab_cap - 1)) {
        if (tab[i].kind == K_EMPTY) return NULL;
        if (tab[i].id == id && tab[i].kind != K_DEAD) return &tab[i];
    }
}

static pw_slot *put(uint32_t id) {
    pw_slot *s = find(id);
    if (s) return s;
    if ((tab_used + 1) * 4 >= tab_cap * 3) {
        /* Rehash, dropping the slots of deleted contexts: size for the live ones. */
        pw_slot *old = tab;
        uint32_t old_cap = tab_cap, live = 0;
        for (uint32_t i = 0; i < old_cap; i++) live += old[i].kind != K_EMPTY && old[i].kind != K_DEAD;
        tab_cap = 64;
        while ((live + 1) * 2 >= tab_cap) tab_cap *= 2;
        tab = calloc(tab_cap, sizeof(pw_slot));
        if (tab == NULL) pw_fatal("out of memory");
        tab_used = 0;
        for (uint32_t i = 0; i < old_cap; i++)
            if (old[i].kind != K_EMPTY && old[i].kind != K_DEAD) *put(old[i].id) = old[i];
        free(old);
    }
    for (uint32_t i = (id * 2654435761u) & (tab_cap - 1);; i = (i + 1) & (tab_cap - 1)) {
        if (tab[i].kind == K_EMPTY || tab[i].kind == K_DEAD) {
            if (tab[i].kind == K_EMPTY) tab_used++;
            tab[i] = (pw_slot){id, 0, K_PENDING, NULL};
            return &tab[i];
        }
    }
}

static void forget(uint32_t id) {
    pw_slot *s = find(id);
    if (s) { s->kind = K_DEAD; s->obj = NULL; }
}

static void walk_roots(void (*mark)(pw_obj *)) {
    for (uint32_t i = 0; i < tab_cap; i++)
        if (tab[i].kind != K_EMPTY && tab[i].kind != K_DEAD && tab[i].obj) mark(tab[i].obj);
}

/* -- errors ------------------------------------------------------------------ */

void pw_fatal(const char *message) {
    proxy_log(5, message, strlen(message));
    __builtin_trap();
}

static uint32_t effective;  /* the host's effective context, as far as we know */

static void enter(pw_obj *ctx) {
    uint32_t id = (uint32_t)((pw_inst *)ctx)->f[PW_F_CONTEXT_ID].i;
    if (id != effective) { proxy_set_effective_context(id); effective = id; }
}

/* Log the pending exception as one error entry, as the dispatcher's _report does. */
static void report(const char *where, uint32_t context_id) {
    pw_exc *e = pw_err;
    pw_err = NULL;
    pw_str *tb = (pw_str *)pw_format_exception(e);
    char head[160];
    int n = snprintf(head, sizeof head, "python exception in %s (context %u):\n", where, context_id);
    pw_obj *parts[2] = {pw_str_new(head, (size_t)n, PW_STR), &tb->h};
    pw_str *msg = (pw_str *)pw_str_join_n(2, parts);
    proxy_log(4, msg->data, msg->len);
}

static const char fail_body[] = "Internal Server Error\n";
static const char fail_details[] = "wasm_python_exception";
/* the serialised header map {content-type: text/plain} */
static const char fail_headers[] = "\1\0\0\0\14\0\0\0\12\0\0\0content-type\0text/plain";

static int64_t fail_http(uint32_t context_id, const pw_class *root_cls) {
    if (root_cls && root_cls->fail_open) return 0;
    proxy_set_effective_context(context_id);
    effective = context_id;
    uint32_t status = proxy_send_local_response(500, fail_details, sizeof fail_details - 1, fail_body,
                                                sizeof fail_body - 1, fail_headers, sizeof fail_headers, 0);
    if (status != 0) proxy_close_stream(1 /* HTTP_RESPONSE */);
    return 1;
}

static void host_error(const char *function, uint32_t status, const char *detail) {
    static const char *const names[] = {"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE",
                                        "PARSE_FAILURE", "5", "INVALID_MEMORY_ACCESS", "EMPTY",
                                        "CAS_MISMATCH", "9", "INTERNAL_FAILURE", "11", "UNIMPLEMENTED"};
    char msg[200], num[12];
    const char *name = status < 13 ? names[status] : (snprintf(num, sizeof num, "%u", status), num);
    snprintf(msg, sizeof msg, "%s failed with %s%s%s", function, name, detail ? ": " : "", detail ? detail : "");
    pw_raise_c(&pw_HostCallError, msg);
}

/* -- SDK classes and their defaults ----------------------------------------- */

int pw_default_on_done(pw_obj *self) { (void)self; return 1; }
void pw_default_on_void(pw_obj *self) { (void)self; }
int pw_default_on_start(pw_obj *self, int64_t size) { (void)self; (void)size; return 1; }
void pw_default_on_tick(pw_obj *self) { (void)self; }
int64_t pw_default_on_headers(pw_obj *self, int64_t n, int end_of_stream) {
    (void)self; (void)n; (void)end_of_stream;
    return 0;
}
int64_t pw_default_on_trailers(pw_obj *self, int64_t n) { (void)self; (void)n; return 0; }

const pw_class pw_cls_RootContext = {
    "RootContext", NULL, 1, 0, 0,
    {(void *)pw_default_on_done, (void *)pw_default_on_void, (void *)pw_default_on_void,
     (void *)pw_default_on_start, (void *)pw_default_on_start, (void *)pw_default_on_tick,
     (void *)pw_default_create_http_context}};

const pw_class pw_cls_HttpContext = {
    "HttpContext", NULL, 2, 1u << PW_F_ROOT, 0,
    {(void *)pw_default_on_done, (void *)pw_default_on_void, (void *)pw_default_on_void,
     (void *)pw_default_on_headers, (void *)pw_default_on_headers, (void *)pw_default_on_trailers,
     (void *)pw_default_on_headers, (void *)pw_default_on_headers, (void *)pw_default_on_trailers}};

void pw_init_root(pw_obj *self, int64_t context_id) {
    pw_inst *o = (pw_inst *)self;
    o->f[PW_F_CONTEXT_ID].i = context_id;
    o->set |= UINT64_C(1) << PW_F_CONTEXT_ID;
}

void pw_init_http(pw_obj *self, int64_t context_id, pw_obj *root, const pw_class *root_class) {
    /* The compact backend types `self.root` as the registered root class: check it. */
    pw_inst *o = (pw_inst *)self;
    if (root->tag != PW_INST || !pw_is_subclass(((pw_inst *)root)->cls, root_class)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s(context_id, root): root must be the plugin's %s, not %s", o->cls->name,
                 root_class->name, pw_type_name(root));
        pw_raise_c(&pw_TypeError, msg);
        return;
    }
    o->f[PW_F_CONTEXT_ID].i = context_id;
    o->f[PW_F_ROOT].p = root;
    o->set |= (UINT64_C(1) << PW_F_CONTEXT_ID) | (UINT64_C(1) << PW_F_ROOT);
}

pw_obj *pw_default_create_http_context(pw_obj *self, int64_t context_id) {
    pw_obj *o = pw_inst_new(&pw_cls_HttpContext);
    pw_init_http(o, context_id, self, &pw_cls_RootContext);
    return pw_err ? NULL : o;
}

static pw_obj *check_str_or_bytes(pw_obj *v, const char *what, int none_ok) {
    if (v->tag == PW_STR || v->tag == PW_BYTES || (none_ok && v->tag == PW_NONE)) return v;
    char msg[120];
    snprintf(msg, sizeof msg, "%s must be str or bytes, not %s", what, pw_type_name(v));
    pw_raise_c(&pw_TypeError, msg);
    return NULL;
}
pw_obj *pw_check_header_name(pw_obj *v) { return check_str_or_bytes(v, "header name", 0); }
pw_obj *pw_check_header_value(pw_obj *v) { return check_str_or_bytes(v, "header value", 1); }

#define SLOT(obj, i) (((pw_inst *)(obj))->cls->slots[i])
#define CLS(obj) (((pw_inst *)(obj))->cls)

/* -- the callbacks ------------------------------------------------------------- */

static int initialised;

static void vm_init(void) {
    if (initialised) return;
    initialised = 1;
    pw_gc_set_roots(walk_roots);
    pw_module_init();
}

__attribute__((export_name("proxy_abi_version_0_2_1"))) void proxy_abi_version_0_2_1(void) {}

__attribute__((export_name("proxy_on_memory_allocate"))) void *proxy_on_memory_allocate(uint32_t size) {
    return malloc(size ? size : 1);
}

__attribute__((export_name("proxy_on_context_create")))
void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {
    vm_init();
    effective = context_id;
    pw_slot *s = put(context_id);
    if (parent_context_id) {
        s->kind = K_PENDING;
        s->parent = parent_context_id;
        return;
    }
    if (pw_root_factory == NULL) {
        pw_raise_c(&pw_LookupError, "no root context registered: call proxywasm.set_root_context(YourRoot) "
                                    "at the end of the filter module");
    } else {
        pw_obj *root = pw_root_factory(context_id);
        s = put(context_id);
        s->kind = K_ROOT;
        s->obj = root;
    }
    if (pw_err) { forget(context_id); report("root context creation", context_id); }
    pw_gc();
}

static pw_obj *root_of(uint32_t id) {
    pw_slot *s = find(id);
    return s && s->kind == K_ROOT ? s->obj : NULL;
}

/* The HTTP context of `id`, made now if this is its first callback. */
static pw_obj *http_ctx(uint32_t id, const pw_class **root_cls) {
    pw_slot *s = find(id);
    *root_cls = NULL;
    if (s == NULL) return NULL;
    if (s->kind == K_HTTP) { *root_cls = CLS(((pw_inst *)s->obj)->f[PW_F_ROOT].p); return s->obj; }
    if (s->kind == K_BROKEN) { pw_obj *r = root_of(s->parent); *root_cls = r ? CLS(r) : NULL; return NULL; }
    if (s->kind != K_PENDING) return NULL;
    pw_obj *root = root_of(s->parent);
    if (root == NULL) {
        char msg[120];
        snprintf(msg, sizeof msg, "stream context %u belongs to root context %u, which failed to start", id,
                 s->parent);
        pw_raise_c(&pw_LookupError, msg);
    } else {
        *root_cls = CLS(root);
        pw_obj *ctx = ((pw_obj * (*)(pw_obj *, int64_t)) SLOT(root, PW_SLOT_CREATE_HTTP_CONTEXT))(root, id);
        if (!pw_err && (ctx == NULL || ctx->tag != PW_INST || !pw_is_subclass(CLS(ctx), &pw_cls_HttpContext))) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s.create_http_context returned %s, expected a proxywasm.HttpContext",
                     CLS(root)->name, ctx ? pw_type_name(ctx) : "None");
            pw_raise_c(&pw_TypeError, msg);
        }
        if (!pw_err) {
            s = put(id);  /* the table may have moved */
            s->kind = K_HTTP;
            s->obj = ctx;
            return ctx;
        }
    }
    s = put(id);
    s->kind = K_BROKEN;
    report("context creation", id);
    return NULL;
}

static uint32_t check_action(int64_t r, pw_obj *ctx, const char *name) {
    if (pw_err) return 0;
    if (r == 0 || r == 1) return (uint32_t)r;
    char msg[200];
    snprintf(msg, sizeof msg, "%s.%s returned %lld; return Action.CONTINUE or Action.PAUSE", CLS(ctx)->name, name,
             (long long)r);
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

typedef int64_t (*pw_headers_fn)(pw_obj *, int64_t, int);
typedef int64_t (*pw_trailers_fn)(pw_obj *, int64_t);

static uint32_t http_cb(uint32_t id, int slot, const char *name, int64_t n, int eos, int trailers) {
    effective = id;
    const pw_class *root_cls;
    pw_obj *ctx = http_ctx(id, &root_cls);
    uint32_t action = 0;
    if (ctx == NULL) {
        pw_slot *s = find(id);
        if (s && s->kind == K_BROKEN) action = (uint32_t)fail_http(id, root_cls);
    } else {
        int64_t r = trailers ? ((pw_trailers_fn)SLOT(ctx, slot))(ctx, n) : ((pw_headers_fn)SLOT(ctx, slot))(ctx, n, eos);
        action = check_action(r, ctx, name);
        if (pw_err) {
            report(name, id);
            action = (uint32_t)fail_http(id, root_cls);
        }
    }
    pw_gc();
    return action;
}

#define HTTP_CB(export, slot, name)                                                             \
    __attribute__((export_name(#export))) uint32_t export(uint32_t id, uint32_t n, uint32_t eos) { \
        return http_cb(id, slot, name, n, eos != 0, 0);                                            \
    }
#define HTTP_TRAILERS_CB(export, slot, name) \
    __attribute__((export_name(#export))) uint32_t export(uint32_t id, uint32_t n) { return http_cb(id, slot, name, n, 0, 1); }

HTTP_CB(proxy_on_request_headers, PW_SLOT_ON_REQUEST_HEADERS, "on_http_request_headers")
HTTP_CB(proxy_on_request_body, PW_SLOT_ON_REQUEST_BODY, "on_http_request_body")
HTTP_TRAILERS_CB(proxy_on_request_trailers, PW_SLOT_ON_REQUEST_TRAILERS, "on_http_request_trailers")
HTTP_CB(proxy_on_response_headers, PW_SLOT_ON_RESPONSE_HEADERS, "on_http_response_headers")
HTTP_CB(proxy_on_response_body, PW_SLOT_ON_RESPONSE_BODY, "on_http_response_body")
HTTP_TRAILERS_CB(proxy_on_response_trailers, PW_SLOT_ON_RESPONSE_TRAILERS, "on_http_response_trailers")

static uint32_t root_start(uint32_t id, uint32_t size, int slot, const char *name) {
    effective = id;
    pw_obj *root = root_of(id);
    int ok = 0;
    if (root != NULL) {
        ok = ((int (*)(pw_obj *, int64_t))SLOT(root, slot))(root, size);
        if (pw_err) { report(name, id); ok = 0; }
    }
    pw_gc();
    return ok != 0;
}

__attribute__((export_name("proxy_on_vm_start"))) uint32_t proxy_on_vm_start(uint32_t id, uint32_t size) {
    return root_start(id, size, PW_SLOT_ON_VM_START, "on_vm_start");
}

__attribute__((export_name("proxy_on_configure"))) uint32_t proxy_on_configure(uint32_t id, uint32_t size) {
    return root_start(id, size, PW_SLOT_ON_CONFIGURE, "on_configure");
}

__attribute__((export_name("proxy_on_tick"))) void proxy_on_tick(uint32_t id) {
    effective = id;
    pw_obj *root = root_of(id);
    if (root != NULL) {
        ((void (*)(pw_obj *))SLOT(root, PW_SLOT_ON_TICK))(root);
        if (pw_err) report("on_tick", id);
    }
    pw_gc();
}

static pw_obj *owner(uint32_t id) {
    pw_slot *s = find(id);
    return s && (s->kind == K_ROOT || s->kind == K_HTTP) ? s->obj : NULL;
}

__attribute__((export_name("proxy_on_done"))) uint32_t proxy_on_done(uint32_t id) {
    effective = id;
    pw_obj *ctx = owner(id);
    int done = 1;
    if (ctx != NULL) {
        done = ((int (*)(pw_obj *))SLOT(ctx, PW_SLOT_ON_DONE))(ctx);
        if (pw_err) { report("on_done", id); done = 1; }
    }
    pw_gc();
    return done != 0;
}

__attribute__((export_name("proxy_on_log"))) void proxy_on_log(uint32_t id) {
    effective = id;
    pw_obj *ctx = owner(id);
    if (ctx != NULL) {
        ((void (*)(pw_obj *))SLOT(ctx, PW_SLOT_ON_LOG))(ctx);
        if (pw_err) report("on_log", id);
    }
    pw_gc();
}

__attribute__((export_name("proxy_on_delete"))) void proxy_on_delete(uint32_t id) {
    effective = id;
    pw_obj *ctx = owner(id);
    forget(id);
    if (ctx != NULL) {
        ((void (*)(pw_obj *))SLOT(ctx, PW_SLOT_ON_DELETE))(ctx);
        if (pw_err) report("on_delete", id);
    }
    pw_gc();
}

/* -- host calls ---------------------------------------------------------------- */

void pw_log(int64_t level, pw_obj *message) {
    pw_str *m = (pw_str *)message;
    uint32_t status = proxy_log((uint32_t)level, m->data, m->len);
    if (status != 0) host_error("proxy_log", status, NULL);
}

static const char *const map_names[] = {
    "HTTP_REQUEST_HEADERS", "HTTP_REQUEST_TRAILERS", "HTTP_RESPONSE_HEADERS", "HTTP_RESPONSE_TRAILERS",
    "GRPC_CALL_INITIAL_METADATA", "GRPC_CALL_TRAILING_METADATA", "HTTP_CALL_RESPONSE_HEADERS",
    "HTTP_CALL_RESPONSE_TRAILERS"};

static void map_check(const char *function, uint32_t status, int64_t map) {
    if (status != 0) host_error(function, status, map >= 0 && map < 8 ? map_names[map] : NULL);
}

pw_obj *pw_get_header(pw_obj *self, int64_t map, pw_obj *name) {
    pw_str *k = (pw_str *)name;
    char *data = NULL;
    uint32_t size = 0;
    enter(self);
    uint32_t status = proxy_get_header_map_value((uint32_t)map, k->data, k->len, &data, &size);
    if (status == 1) return PW_NONE_V;
    map_check("proxy_get_header_map_value", status, map);
    if (pw_err) return NULL;
    /* Header bytes are kept as they are (the SDK decodes with surrogateescape,
       which round-trips them unchanged). */
    pw_obj *v = pw_str_new(data ? data : "", data ? size : 0, PW_STR);
    free(data);
    return v;
}

void pw_set_header(pw_obj *self, int64_t map, pw_obj *name, pw_obj *value) {
    if (value == PW_NONE_V) { pw_remove_header(self, map, name); return; }
    pw_str *k = (pw_str *)name, *v = (pw_str *)value;
    enter(self);
    map_check("proxy_replace_header_map_value",
              proxy_replace_header_map_value((uint32_t)map, k->data, k->len, v->data, v->len), map);
}

void pw_add_header(pw_obj *self, int64_t map, pw_obj *name, pw_obj *value) {
    pw_str *k = (pw_str *)name, *v = (pw_str *)value;
    enter(self);
    map_check("proxy_add_header_map_value", proxy_add_header_map_value((uint32_t)map, k->data, k->len, v->data, v->len),
              map);
}

void pw_remove_header(pw_obj *self, int64_t map, pw_obj *name) {
    pw_str *k = (pw_str *)name;
    enter(self);
    uint32_t status = proxy_remove_header_map_value((uint32_t)map, k->data, k->len);
    if (status != 1) map_check("proxy_remove_header_map_value", status, map);
}

pw_obj *pw_get_buffer(int64_t buffer, int64_t start, int64_t size) {
    char *data = NULL;
    uint32_t got = 0;
    uint32_t status = proxy_get_buffer_bytes((uint32_t)buffer, (uint32_t)start,
                                             size < 0 ? 0xffffffffu : (uint32_t)size, &data, &got);
    if (status == 1 || status == 7 /* EMPTY */) { free(data); return PW_NONE_V; }
    if (status != 0) { host_error("proxy_get_buffer_bytes", status, NULL); return NULL; }
    if (data == NULL || got == 0) { free(data); return PW_NONE_V; }  /* as the SDK: `data or None` */
    pw_obj *v = pw_str_new(data ? data : "", data ? got : 0, PW_BYTES);
    free(data);
    return v;
}
