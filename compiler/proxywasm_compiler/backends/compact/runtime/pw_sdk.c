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

const pw_exc_type pw_ProxyWasmError = {"proxywasm.types.ProxyWasmError", &pw_Exception};
const pw_exc_type pw_HostCallError = {"proxywasm.types.HostCallError", &pw_ProxyWasmError};
const pw_exc_type pw_ConfigError = {"proxywasm.types.ConfigError", &pw_ProxyWasmError};
pw_obj *(*pw_root_factory)(int64_t context_id);

/* -- the context table: id -> context, open addressing ------------------------- */

enum { K_EMPTY, K_ROOT, K_HTTP, K_PENDING, K_BROKEN, K_DEAD, K_TCP };
typedef struct { uint32_t id, parent; uint8_t kind; pw_obj *obj; uint8_t replied; } pw_slot;  /* replied: a local reply went out */
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

const pw_task_hooks_t *pw_task_hooks;

static void walk_roots(void (*mark)(pw_obj *)) {
    for (uint32_t i = 0; i < tab_cap; i++)
        if (tab[i].kind != K_EMPTY && tab[i].kind != K_DEAD && tab[i].obj) mark(tab[i].obj);
    pw_module_roots(mark);
    if (pw_task_hooks) pw_task_hooks->mark(mark);  /* the frames of waiting coroutines */
}

/* HTTP callout token -> the context that dispatched it (a small list: callouts are few) */
typedef struct { uint32_t token, context_id; } pw_callout;
static pw_callout *callouts;
static uint32_t ncallouts, callouts_cap;

static void callout_put(uint32_t token, uint32_t context_id) {
    if (ncallouts == callouts_cap) {
        callouts_cap = callouts_cap ? callouts_cap * 2 : 8;
        callouts = realloc(callouts, callouts_cap * sizeof(pw_callout));
        if (callouts == NULL) pw_fatal("out of memory");
    }
    callouts[ncallouts++] = (pw_callout){token, context_id};
}

static uint32_t callout_pop(uint32_t token, uint32_t dflt) {
    for (uint32_t i = 0; i < ncallouts; i++) {
        if (callouts[i].token != token) continue;
        uint32_t id = callouts[i].context_id;
        callouts[i] = callouts[--ncallouts];
        return id;
    }
    return dflt;
}

/* -- errors ------------------------------------------------------------------ */

void pw_fatal(const char *message) {
    proxy_log(5, message, strlen(message));
    __builtin_trap();
}

uint32_t pw_effective_id;  /* the host's effective context, as far as we know */
int64_t pw_map_epoch;

void pw_enter_id(uint32_t id) {
    if (id != pw_effective_id) { proxy_set_effective_context(id); pw_effective_id = id; }
}

static void enter(pw_obj *ctx) {
    if (ctx) pw_enter_id((uint32_t)((pw_inst *)ctx)->f[PW_F_CONTEXT_ID].i);
}

/* A callback starts: `id` is the effective context and header views fetch their map afresh. */
static void callback(uint32_t id) {
    pw_effective_id = id;
    pw_map_epoch++;
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

void pw_report(const char *where, uint32_t context_id) { report(where, context_id); }

static const char fail_body[] = "Internal Server Error\n";
static const char fail_details[] = "wasm_python_exception";
/* the serialised header map {content-type: text/plain} */
static const char fail_headers[] = "\1\0\0\0\14\0\0\0\12\0\0\0content-type\0text/plain";

/* The stream sent a local reply (or tried to: the dispatcher's `replied`, kept until on_delete). */
void pw_note_reply(uint32_t context_id) {
    pw_slot *s = find(context_id);
    if (s) s->replied = 1;
}

int pw_has_replied(uint32_t context_id) {
    pw_slot *s = find(context_id);
    return s && s->replied;
}

static int64_t fail_http(uint32_t context_id, const pw_class *root_cls) {
    if (root_cls && root_cls->fail_open) return 0;
    if (pw_has_replied(context_id)) {  /* the client has its answer: Envoy would drop a second one */
        pw_enter_id(context_id);
        proxy_close_stream(1 /* HTTP_RESPONSE */);
        return 1;
    }
    pw_note_reply(context_id);
    proxy_set_effective_context(context_id);
    pw_effective_id = context_id;
    uint32_t status = proxy_send_local_response(500, fail_details, sizeof fail_details - 1, fail_body,
                                                sizeof fail_body - 1, fail_headers, sizeof fail_headers, 0);
    if (status != 0) proxy_close_stream(1 /* HTTP_RESPONSE */);
    return 1;
}

static int64_t fail_tcp(uint32_t context_id, const pw_class *root_cls) {
    if (root_cls && root_cls->fail_open) return 0;
    proxy_set_effective_context(context_id);
    pw_effective_id = context_id;
    proxy_close_stream(2 /* DOWNSTREAM */);
    return 1;
}

void pw_host_error(const char *function, uint32_t status, const char *detail) {
    static const char *const names[] = {"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE",
                                        "PARSE_FAILURE", "5", "INVALID_MEMORY_ACCESS", "EMPTY",
                                        "CAS_MISMATCH", "9", "INTERNAL_FAILURE", "11", "UNIMPLEMENTED"};
    char msg[700], num[12];
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
void pw_default_on_http_call_response(pw_obj *self, int64_t token, int64_t nh, int64_t body, int64_t nt) {
    (void)self; (void)token; (void)nh; (void)body; (void)nt;
}
int64_t pw_default_on_new_connection(pw_obj *self) { (void)self; return 0; }
void pw_default_on_close(pw_obj *self, int64_t peer) { (void)self; (void)peer; }

#define BASE_DEFAULTS (void *)pw_default_on_done, (void *)pw_default_on_void, (void *)pw_default_on_void, \
    (void *)pw_default_on_http_call_response

const pw_class pw_cls_RootContext = {
    "RootContext", NULL, 1, 0, 0,
    {BASE_DEFAULTS, (void *)pw_default_on_start, (void *)pw_default_on_start, (void *)pw_default_on_tick,
     (void *)pw_default_create_http_context, (void *)pw_default_create_stream_context}};

const pw_class pw_cls_HttpContext = {
    "HttpContext", NULL, 4, (1u << PW_F_ROOT) | (1u << PW_F_REQUEST) | (1u << PW_F_RESPONSE), 0,
    {BASE_DEFAULTS, (void *)pw_default_on_headers, (void *)pw_default_on_headers, (void *)pw_default_on_trailers,
     (void *)pw_default_on_headers, (void *)pw_default_on_headers, (void *)pw_default_on_trailers}};

const pw_class pw_cls_StreamContext = {
    "StreamContext", NULL, 2, 1u << PW_F_ROOT, 0,
    {BASE_DEFAULTS, (void *)pw_default_on_new_connection, (void *)pw_default_on_headers, (void *)pw_default_on_close,
     (void *)pw_default_on_headers, (void *)pw_default_on_close}};

const pw_class pw_cls_object = {"object", NULL, 0, 0, 0, {NULL}};

/* metrics: field 0 name, 1 id, 2 bound (their type is the class) */
const pw_class pw_cls_Counter = {"Counter", NULL, 3, 1, 0, {NULL}};
const pw_class pw_cls_Gauge = {"Gauge", NULL, 3, 1, 0, {NULL}};
const pw_class pw_cls_Histogram = {"Histogram", NULL, 3, 1, 0, {NULL}};

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

pw_obj *pw_new_stream(const pw_class *cls, int64_t context_id, pw_obj *root) {
    pw_obj *o = pw_inst_new(cls);
    pw_init_http(o, context_id, root, &pw_cls_RootContext);
    return pw_err ? NULL : o;
}

pw_obj *pw_default_create_stream_context(pw_obj *self, int64_t context_id) {
    pw_obj *o = pw_inst_new(&pw_cls_StreamContext);
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
    if (pw_err) {  /* the module body raised: as a failed import, no root context can start */
        report("module initialisation", 0);
        pw_root_factory = NULL;
    }
}

__attribute__((export_name("proxy_abi_version_0_2_1"))) void proxy_abi_version_0_2_1(void) {}

__attribute__((export_name("proxy_on_memory_allocate"))) void *proxy_on_memory_allocate(uint32_t size) {
    return malloc(size ? size : 1);
}

__attribute__((export_name("proxy_on_context_create")))
void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {
    vm_init();
    callback(context_id);
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

/* The HTTP (or, with `tcp`, TCP) context of `id`, made now if this is its first callback. */
static pw_obj *stream_ctx(uint32_t id, const pw_class **root_cls, int tcp) {
    pw_slot *s = find(id);
    *root_cls = NULL;
    if (s == NULL) return NULL;
    if (s->kind == (tcp ? K_TCP : K_HTTP)) { *root_cls = CLS(((pw_inst *)s->obj)->f[PW_F_ROOT].p); return s->obj; }
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
        pw_obj *ctx = ((pw_obj * (*)(pw_obj *, int64_t)) SLOT(
            root, tcp ? PW_SLOT_CREATE_STREAM_CONTEXT : PW_SLOT_CREATE_HTTP_CONTEXT))(root, id);
        const pw_class *want = tcp ? &pw_cls_StreamContext : &pw_cls_HttpContext;
        if (!pw_err && (ctx == NULL || ctx->tag != PW_INST || !pw_is_subclass(CLS(ctx), want))) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s.%s returned %s, expected a proxywasm.%s", CLS(root)->name,
                     tcp ? "create_stream_context" : "create_http_context", ctx ? pw_type_name(ctx) : "None",
                     want->name);
            pw_raise_c(&pw_TypeError, msg);
        }
        if (!pw_err) {
            s = put(id);  /* the table may have moved */
            s->kind = tcp ? K_TCP : K_HTTP;
            s->obj = ctx;
            return ctx;
        }
    }
    s = put(id);
    s->kind = K_BROKEN;
    report("context creation", id);
    return NULL;
}

/* What a stream callback typed `Action | None` (or not typed) returned, as the action the host
   gets: None continues; CONTINUE or PAUSE (any value equal to 0 or 1); else TypeError. */
int64_t pw_callback_action(pw_obj *result, pw_obj *ctx, const char *name) {
    if (result == NULL) return 0;
    if (result == PW_NONE_V) return 0;
    if ((result->tag == PW_INT || result->tag == PW_BOOL) && (((pw_int *)result)->v == 0 || ((pw_int *)result)->v == 1))
        return ((pw_int *)result)->v;
    if (result->tag == PW_FLOAT && (((pw_float *)result)->v == 0.0 || ((pw_float *)result)->v == 1.0))
        return (int64_t)((pw_float *)result)->v;
    pw_obj *r = pw_repr_of(result);
    char head[160];
    int n = snprintf(head, sizeof head, "%s.%s returned ", CLS(ctx)->name, name);
    pw_obj *parts[3] = {pw_str_new(head, (size_t)n, PW_STR), r,
                        pw_str_new("; return Action.CONTINUE or Action.PAUSE", 40, PW_STR)};
    pw_raise(&pw_TypeError, pw_str_join_n(3, parts));
    return 0;
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
    callback(id);
    const pw_class *root_cls;
    pw_obj *ctx = stream_ctx(id, &root_cls, 0);
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

/* TCP: on_new_connection (n < 0), on_*_data (close = 0) and on_*_close (close = 1) */
static uint32_t tcp_cb(uint32_t id, int slot, const char *name, int64_t n, int eos, int close) {
    callback(id);
    const pw_class *root_cls;
    pw_obj *ctx = stream_ctx(id, &root_cls, 1);
    uint32_t action = 0;
    if (ctx == NULL) {
        pw_slot *s = find(id);
        if (s && s->kind == K_BROKEN && !close) action = (uint32_t)fail_tcp(id, root_cls);
    } else if (close) {
        ((void (*)(pw_obj *, int64_t))SLOT(ctx, slot))(ctx, n >= 0 && n <= 2 ? n : 0);
        if (pw_err) report(name, id);
    } else {
        int64_t r = n < 0 ? ((int64_t (*)(pw_obj *))SLOT(ctx, slot))(ctx) : ((pw_headers_fn)SLOT(ctx, slot))(ctx, n, eos);
        action = check_action(r, ctx, name);
        if (pw_err) {
            report(name, id);
            action = (uint32_t)fail_tcp(id, root_cls);
        }
    }
    pw_gc();
    return action;
}

__attribute__((export_name("proxy_on_new_connection"))) uint32_t proxy_on_new_connection(uint32_t id) {
    return tcp_cb(id, PW_SLOT_ON_NEW_CONNECTION, "on_new_connection", -1, 0, 0);
}
__attribute__((export_name("proxy_on_downstream_data")))
uint32_t proxy_on_downstream_data(uint32_t id, uint32_t n, uint32_t eos) {
    return tcp_cb(id, PW_SLOT_ON_DOWNSTREAM_DATA, "on_downstream_data", n, eos != 0, 0);
}
__attribute__((export_name("proxy_on_upstream_data")))
uint32_t proxy_on_upstream_data(uint32_t id, uint32_t n, uint32_t eos) {
    return tcp_cb(id, PW_SLOT_ON_UPSTREAM_DATA, "on_upstream_data", n, eos != 0, 0);
}
__attribute__((export_name("proxy_on_downstream_connection_close")))
void proxy_on_downstream_connection_close(uint32_t id, uint32_t peer) {
    tcp_cb(id, PW_SLOT_ON_DOWNSTREAM_CLOSE, "on_downstream_close", peer, 0, 1);
}
__attribute__((export_name("proxy_on_upstream_connection_close")))
void proxy_on_upstream_connection_close(uint32_t id, uint32_t peer) {
    tcp_cb(id, PW_SLOT_ON_UPSTREAM_CLOSE, "on_upstream_close", peer, 0, 1);
}

static pw_obj *owner(uint32_t id);

__attribute__((export_name("proxy_on_http_call_response")))
void proxy_on_http_call_response(uint32_t root_id, uint32_t token, uint32_t nh, uint32_t body, uint32_t nt) {
    uint32_t id = callout_pop(token, root_id);
    pw_obj *ctx = owner(id);
    callback(root_id);
    if (ctx != NULL && pw_task_hooks && pw_task_hooks->answer(token, nh, body, nt)) ctx = NULL;  /* awaited */
    if (ctx != NULL) {
        if (id != root_id) { proxy_set_effective_context(id); pw_effective_id = id; }
        ((void (*)(pw_obj *, int64_t, int64_t, int64_t, int64_t))SLOT(ctx, PW_SLOT_ON_HTTP_CALL_RESPONSE))(
            ctx, token, nh, body, nt);
        if (pw_err) {
            report("on_http_call_response", id);
            if (pw_is_subclass(CLS(ctx), &pw_cls_HttpContext)) {
                const pw_class *root_cls = CLS(((pw_inst *)ctx)->f[PW_F_ROOT].p);
                if (root_cls->fail_open) proxy_continue_stream(0 /* HTTP_REQUEST */);
                else fail_http(id, root_cls);
            }
        }
    }
    pw_gc();
}

static uint32_t root_start(uint32_t id, uint32_t size, int slot, const char *name) {
    callback(id);
    pw_obj *root = root_of(id);
    int ok = 0;
    if (root != NULL) {
        ok = ((int (*)(pw_obj *, int64_t))SLOT(root, slot))(root, size);
        if (pw_err && pw_exc_matches(&pw_ConfigError)) {
            /* a rejected configuration: one line with the message, no traceback (as the dispatcher) */
            pw_obj *text = pw_str_of(&pw_err->h);
            pw_err = NULL;
            char head[64];
            int n = snprintf(head, sizeof head, "%s rejected the configuration: ", name);
            pw_obj *parts[2] = {pw_str_new(head, (size_t)n, PW_STR), text};
            pw_str *msg = (pw_str *)pw_str_join_n(2, parts);
            proxy_log(4, msg->data, msg->len);
            ok = 0;
        }
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
    callback(id);
    pw_obj *root = root_of(id);
    if (root != NULL) {
        ((void (*)(pw_obj *))SLOT(root, PW_SLOT_ON_TICK))(root);
        if (pw_err) report("on_tick", id);
    }
    pw_gc();
}

static pw_obj *owner(uint32_t id) {
    pw_slot *s = find(id);
    return s && (s->kind == K_ROOT || s->kind == K_HTTP || s->kind == K_TCP) ? s->obj : NULL;
}

__attribute__((export_name("proxy_on_done"))) uint32_t proxy_on_done(uint32_t id) {
    callback(id);
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
    callback(id);
    pw_obj *ctx = owner(id);
    if (ctx != NULL) {
        ((void (*)(pw_obj *))SLOT(ctx, PW_SLOT_ON_LOG))(ctx);
        if (pw_err) report("on_log", id);
    }
    pw_gc();
}

__attribute__((export_name("proxy_on_delete"))) void proxy_on_delete(uint32_t id) {
    callback(id);
    pw_obj *ctx = owner(id);
    forget(id);
    if (pw_task_hooks) pw_task_hooks->cancel(id);  /* close its waiting coroutines: their finally runs */
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
    if (status != 0) pw_host_error("proxy_log", status, NULL);
}

static const char *const map_names[] = {
    "HTTP_REQUEST_HEADERS", "HTTP_REQUEST_TRAILERS", "HTTP_RESPONSE_HEADERS", "HTTP_RESPONSE_TRAILERS",
    "GRPC_CALL_INITIAL_METADATA", "GRPC_CALL_TRAILING_METADATA", "HTTP_CALL_RESPONSE_HEADERS",
    "HTTP_CALL_RESPONSE_TRAILERS"};

/* Why Envoy refuses a stream map (BAD_ARGUMENT), as hostcalls._MAP_HINTS says it */
static const char *const map_hints[] = {
    "request headers are only reachable in on_http_request_headers (or after it returned PAUSE) and in on_log",
    "request trailers are only reachable in on_http_request_trailers (or after it returned PAUSE)",
    "response headers are only reachable in on_http_response_headers (or after it returned PAUSE) and in on_log",
    "response trailers are only reachable in on_http_response_trailers (or after it returned PAUSE) and in on_log"};

const char *pw_map_name(int64_t map) { return map >= 0 && map < 8 ? map_names[map] : NULL; }

/* hostcalls._map_check: the calls on one map value (and set_map) explain BAD_ARGUMENT */
void pw_map_check(const char *function, uint32_t status, int64_t map) {
    if (status == 0) return;
    if (status == 2 && map >= 0 && map < 4) {
        char detail[300];
        snprintf(detail, sizeof detail, "%s: %s; read what you need there and keep it on self", map_names[map],
                 map_hints[map]);
        pw_host_error(function, status, detail);
        return;
    }
    pw_host_error(function, status, pw_map_name(map));
}
#define map_check pw_map_check

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
    pw_map_epoch++;
    pw_str *k = (pw_str *)name, *v = (pw_str *)value;
    enter(self);
    map_check("proxy_replace_header_map_value",
              proxy_replace_header_map_value((uint32_t)map, k->data, k->len, v->data, v->len), map);
}

void pw_add_header(pw_obj *self, int64_t map, pw_obj *name, pw_obj *value) {
    pw_map_epoch++;
    pw_str *k = (pw_str *)name, *v = (pw_str *)value;
    enter(self);
    map_check("proxy_add_header_map_value", proxy_add_header_map_value((uint32_t)map, k->data, k->len, v->data, v->len),
              map);
}

void pw_remove_header(pw_obj *self, int64_t map, pw_obj *name) {
    pw_map_epoch++;
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
    if (status != 0) { pw_host_error("proxy_get_buffer_bytes", status, NULL); return NULL; }
    if (data == NULL || got == 0) { free(data); return PW_NONE_V; }  /* as the SDK: `data or None` */
    pw_obj *v = pw_str_new(data ? data : "", data ? got : 0, PW_BYTES);
    free(data);
    return v;
}

/* -- metrics --------------------------------------------------------------------- */

#define M_NAME 0
#define M_ID 1
#define M_BOUND 2

pw_obj *pw_metric_new(const pw_class *cls, pw_obj *name) {
    if (name->tag != PW_STR || ((pw_str *)name)->len == 0) {
        pw_obj *r = pw_repr_of(name);
        pw_obj *parts[2] = {pw_str_new("metric name must be a non-empty str, got ", 41, PW_STR), r};
        pw_raise(&pw_ValueError, pw_str_join_n(2, parts));
        return NULL;
    }
    pw_inst *m = (pw_inst *)pw_inst_new(cls);
    m->f[M_NAME].p = name;
    m->set = 7;
    return &m->h;
}

static uint32_t metric_id(pw_obj *m) {
    pw_inst *o = (pw_inst *)m;
    if (o->f[M_BOUND].i) return (uint32_t)o->f[M_ID].i;
    uint32_t type = o->cls == &pw_cls_Counter ? 0 : o->cls == &pw_cls_Gauge ? 1 : 2;
    pw_str *name = (pw_str *)o->f[M_NAME].p;
    uint32_t id = 0;
    uint32_t status = proxy_define_metric(type, name->data, name->len, &id);
    if (status != 0) {
        pw_str *r = (pw_str *)pw_repr_of(&name->h);
        pw_host_error("proxy_define_metric", status, r->data);
        return 0;
    }
    o->f[M_ID].i = id;
    o->f[M_BOUND].i = 1;
    return id;
}

static void metric_check(const char *function, uint32_t status, uint32_t id) {
    if (status == 0) return;
    char detail[32];
    snprintf(detail, sizeof detail, "metric %u", id);
    pw_host_error(function, status, detail);
}

void pw_metric_define(pw_obj *m) { metric_id(m); }

static void metric_value_error(pw_obj *m, const char *fmt, int64_t v) {
    pw_str *r = (pw_str *)pw_repr_of(((pw_inst *)m)->f[M_NAME].p);
    char msg[300];
    snprintf(msg, sizeof msg, fmt, r->data, (long long)v);
    pw_raise_c(&pw_ValueError, msg);
}

void pw_metric_increment(pw_obj *m, int64_t delta) {
    int counter = CLS(m) == &pw_cls_Counter;
    if (counter && delta < 0) { metric_value_error(m, "counter %s cannot decrease (delta %lld)", delta); return; }
    uint32_t id = metric_id(m);
    if (pw_err || (counter && delta == 0)) return;
    metric_check("proxy_increment_metric", proxy_increment_metric(id, delta), id);
}

void pw_metric_record(pw_obj *m, int64_t value) {
    if (CLS(m) == &pw_cls_Histogram && value < 0) {
        metric_value_error(m, "histogram %s takes values >= 0, got %lld", value);
        return;
    }
    uint32_t id = metric_id(m);
    if (pw_err) return;
    metric_check("proxy_record_metric", proxy_record_metric(id, (uint64_t)value), id);
}

int64_t pw_metric_get(pw_obj *m) {
    uint32_t id = metric_id(m);
    if (pw_err) return 0;
    uint64_t v = 0;
    metric_check("proxy_get_metric", proxy_get_metric(id, &v), id);
    return (int64_t)v;
}

/* -- clocks, properties, local replies, buffers, header maps, callouts -------------- */

int64_t pw_now_ns(void) {
    uint64_t t = 0;
    uint32_t status = proxy_get_current_time_nanoseconds(&t);
    if (status != 0) pw_host_error("proxy_get_current_time_nanoseconds", status, NULL);
    return (int64_t)t;
}

int64_t pw_get_log_level(void) {
    uint32_t level = 0;
    uint32_t status = proxy_get_log_level(&level);
    if (status != 0) pw_host_error("proxy_get_log_level", status, NULL);
    return level;
}

void pw_set_tick_period(pw_obj *self, int64_t ms) {
    if (ms < 0) {
        char msg[80];
        snprintf(msg, sizeof msg, "tick period must be >= 0 ms, got %lld", (long long)ms);
        pw_raise_c(&pw_ValueError, msg);
        return;
    }
    enter(self);
    uint32_t status = proxy_set_tick_period_milliseconds((uint32_t)ms);
    if (status != 0) pw_host_error("proxy_set_tick_period_milliseconds", status, NULL);
}

typedef struct { char *data; size_t len, cap; } sbuf;
static void sb_put(sbuf *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n) cap *= 2;
        b->data = realloc(b->data, cap);
        if (b->data == NULL) pw_fatal("out of memory");
        b->cap = cap;
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
}

static int to_bytes_check(pw_obj *v, const char *what) {
    if (v->tag == PW_STR || v->tag == PW_BYTES) return 1;
    char msg[120];
    snprintf(msg, sizeof msg, "%s must be str or bytes, not %s", what, pw_type_name(v));
    pw_raise_c(&pw_TypeError, msg);
    return 0;
}

static int property_path(pw_obj *path, sbuf *out) {
    if (path->tag == PW_STR) {
        pw_str *p = (pw_str *)path;
        for (uint32_t i = 0; i < p->len; i++) sb_put(out, p->data[i] == '.' ? "" : &p->data[i], 1);
        return 1;
    }
    if (path->tag != PW_LIST && path->tag != PW_TUPLE) {
        char msg[120];
        snprintf(msg, sizeof msg, "property path must be str or a sequence of str, not %s", pw_type_name(path));
        pw_raise_c(&pw_TypeError, msg);
        return 0;
    }
    pw_list *l = (pw_list *)path;
    for (uint32_t i = 0; i < l->len; i++) {
        if (!to_bytes_check(l->items[i], "property path segment")) return 0;
        if (i) sb_put(out, "", 1);
        sb_put(out, ((pw_str *)l->items[i])->data, ((pw_str *)l->items[i])->len);
    }
    return 1;
}

pw_obj *pw_get_property(pw_obj *self, pw_obj *path) {
    sbuf p = {0};
    if (!property_path(path, &p)) { free(p.data); return NULL; }
    enter(self);
    char *data = NULL;
    uint32_t size = 0;
    uint32_t status = proxy_get_property(p.data ? p.data : "", (uint32_t)p.len, &data, &size);
    free(p.data);
    if (status == 1) { free(data); return PW_NONE_V; }
    if (status != 0) {
        pw_str *r = (pw_str *)pw_repr_of(path);
        pw_host_error("proxy_get_property", status, r->data);
        return NULL;
    }
    pw_obj *v = pw_str_new(data ? data : "", data ? size : 0, PW_BYTES);
    free(data);
    return v;
}

pw_obj *pw_bytes_as_str(pw_obj *v) {
    if (v == NULL || v == PW_NONE_V) return v;
    return pw_str_new(((pw_str *)v)->data, ((pw_str *)v)->len, PW_STR);  /* surrogateescape round-trips bytes */
}

/* the items of a mapping (a dict, or a view): only the dict family of methods is linked */
pw_obj *pw_items_of(pw_obj *mapping) {
    pw_native_fn native = pw_native_of(mapping);
    return native ? native(mapping, "items", 0, NULL) : pw_meth_dict(mapping, "items", 0, NULL);
}

/* proxy-wasm's serialised header map from a sequence of (name, value) pairs */
static int serialize_map(pw_obj *pairs, sbuf *out) {
    if (pairs->tag == PW_STR || pairs->tag == PW_BYTES) {
        char msg[120];
        snprintf(msg, sizeof msg, "headers must be (name, value) pairs or a mapping, not %s", pw_type_name(pairs));
        pw_raise_c(&pw_TypeError, msg);
        return 0;
    }
    /* a mapping (a dict, a header view) is serialised by its items, as _serde.serialize_map */
    if (pairs->tag == PW_DICT || pw_native_of(pairs)) pairs = pw_items_of(pairs);
    if (pairs == NULL) return 0;
    pw_obj *list = pairs->tag == PW_LIST || pairs->tag == PW_TUPLE ? pairs : pw_to_list(pairs);
    if (list == NULL) return 0;
    pw_list *l = (pw_list *)list;
    uint32_t n = l->len;
    sb_put(out, &n, 4);
    pw_obj *kv[2];
    for (uint32_t i = 0; i < n; i++) {
        pw_obj *item = l->items[i];
        if (!((item->tag == PW_TUPLE || item->tag == PW_LIST) && ((pw_list *)item)->len == 2)) {
            pw_obj *parts[2] = {pw_str_new("a header must be a (name, value) pair, not ", 43, PW_STR), pw_repr_of(item)};
            pw_raise(&pw_TypeError, pw_str_join_n(2, parts));
            return 0;
        }
        pw_unpack(item, 2, kv);
        if (pw_err || !to_bytes_check(kv[0], "header name") || !to_bytes_check(kv[1], "header value")) return 0;
        uint32_t sizes[2] = {((pw_str *)kv[0])->len, ((pw_str *)kv[1])->len};
        sb_put(out, sizes, 8);
    }
    for (uint32_t i = 0; i < n; i++) {
        pw_unpack(l->items[i], 2, kv);
        for (int k = 0; k < 2; k++) {
            sb_put(out, ((pw_str *)kv[k])->data, ((pw_str *)kv[k])->len);
            sb_put(out, "", 1);
        }
    }
    return 1;
}

void pw_send_http_response(pw_obj *self, int64_t status_code, pw_obj *headers, pw_obj *body, pw_obj *details,
                           int64_t grpc_status) {
    pw_map_epoch++;
    pw_note_reply(self ? (uint32_t)((pw_inst *)self)->f[PW_F_CONTEXT_ID].i : pw_effective_id);
    if (status_code < 100 || status_code > 999) {
        char msg[80];
        snprintf(msg, sizeof msg, "HTTP status must be 100..999, got %lld", (long long)status_code);
        pw_raise_c(&pw_ValueError, msg);
        return;
    }
    sbuf h = {0};
    if (headers != PW_NONE_V) {
        if (!serialize_map(headers, &h)) { free(h.data); return; }
    } else {
        uint32_t zero = 0;
        sb_put(&h, &zero, 4);
    }
    pw_str *b = NULL;
    if (body != PW_NONE_V && pw_truthy(body)) {
        if (!to_bytes_check(body, "body")) { free(h.data); return; }
        b = (pw_str *)body;
    }
    if (!to_bytes_check(details, "status details")) { free(h.data); return; }
    pw_str *d = (pw_str *)details;
    enter(self);
    uint32_t status = proxy_send_local_response((uint32_t)status_code, d->data, d->len, b ? b->data : "",
                                                b ? b->len : 0, h.data, (uint32_t)h.len,
                                                (uint32_t)(grpc_status & 0xffffffff));
    free(h.data);
    if (status != 0) {
        char detail[32];
        snprintf(detail, sizeof detail, "status %lld", (long long)status_code);
        pw_host_error("proxy_send_local_response", status, detail);
    }
}

pw_obj *pw_get_buffer_ctx(pw_obj *self, int64_t buffer, int64_t start, pw_obj *size) {
    enter(self);
    return pw_get_buffer(buffer, start, size == PW_NONE_V ? -1 : pw_to_int(size));
}

void pw_set_buffer(pw_obj *self, int64_t buffer, pw_obj *value, int64_t start, pw_obj *size) {
    if (!to_bytes_check(value, "buffer value")) return;
    pw_str *v = (pw_str *)value;
    int64_t n = size == PW_NONE_V ? 0xffffffffu : pw_to_int(size);
    enter(self);
    uint32_t status = proxy_set_buffer_bytes((uint32_t)buffer, (uint32_t)start, (uint32_t)n, v->data, v->len);
    if (status != 0) pw_host_error("proxy_set_buffer_bytes", status, NULL);
}

void pw_stream_op(pw_obj *self, int64_t stream, int close) {
    static const char *const names[] = {"HTTP_REQUEST", "HTTP_RESPONSE", "DOWNSTREAM", "UPSTREAM"};
    enter(self);
    uint32_t status = close ? proxy_close_stream((uint32_t)stream) : proxy_continue_stream((uint32_t)stream);
    if (status != 0) pw_host_error(close ? "proxy_close_stream" : "proxy_continue_stream", status, names[stream & 3]);
}

pw_obj *pw_get_headers(pw_obj *self, int64_t map) {
    char *data = NULL;
    uint32_t size = 0;
    if (self) enter(self);
    uint32_t status = proxy_get_header_map_pairs((uint32_t)map, &data, &size);
    pw_obj *out = pw_list_new(0);
    if (status == 1) { free(data); return out; }
    if (status != 0) pw_host_error("proxy_get_header_map_pairs", status, pw_map_name(map));
    if (pw_err) { free(data); return NULL; }
    if (data != NULL && size >= 4) {
        uint32_t n;
        memcpy(&n, data, 4);
        uint32_t pos = 4 + 8 * n;
        for (uint32_t i = 0; i < n && pos <= size; i++) {
            uint32_t sizes[2];
            memcpy(sizes, data + 4 + 8 * i, 8);
            pw_obj *kv[2];
            for (int k = 0; k < 2; k++) {
                kv[k] = pw_str_new(data + pos, sizes[k], PW_STR);
                pos += sizes[k] + 1;
            }
            pw_list_append(out, pw_tuple_new(2, kv));
        }
    }
    free(data);
    return out;
}

void pw_set_headers(pw_obj *self, int64_t map, pw_obj *headers) {
    pw_map_epoch++;
    sbuf h = {0};
    if (!serialize_map(headers, &h)) { free(h.data); return; }
    enter(self);
    map_check("proxy_set_header_map_pairs", proxy_set_header_map_pairs((uint32_t)map, h.data, (uint32_t)h.len), map);
    free(h.data);
}

int64_t pw_dispatch_http_call(pw_obj *self, pw_obj *upstream, pw_obj *headers, pw_obj *body, pw_obj *trailers,
                              int64_t timeout_ms) {
    if (!to_bytes_check(upstream, "upstream")) return 0;
    sbuf h = {0}, t = {0};
    if (!serialize_map(headers, &h)) { free(h.data); return 0; }
    if (trailers != PW_NONE_V) {
        if (!serialize_map(trailers, &t)) { free(h.data); free(t.data); return 0; }
    } else {
        uint32_t zero = 0;
        sb_put(&t, &zero, 4);
    }
    pw_str *b = NULL;
    if (body != PW_NONE_V && pw_truthy(body)) {
        if (!to_bytes_check(body, "body")) { free(h.data); free(t.data); return 0; }
        b = (pw_str *)body;
    }
    pw_str *u = (pw_str *)upstream;
    uint32_t token = 0;
    uint32_t status = proxy_http_call(u->data, u->len, h.data, (uint32_t)h.len, b ? b->data : "", b ? b->len : 0,
                                      t.data, (uint32_t)t.len, (uint32_t)timeout_ms, &token);
    free(h.data);
    free(t.data);
    if (status != 0) {
        pw_str *r = (pw_str *)pw_repr_of(upstream);
        char detail[300];
        snprintf(detail, sizeof detail,
                 "upstream %s (an unknown cluster, or headers missing :method, :path or :authority)", r->data);
        pw_host_error("proxy_http_call", status, detail);
        return 0;
    }
    callout_put(token, (uint32_t)((pw_inst *)self)->f[PW_F_CONTEXT_ID].i);
    return token;
}

/* -- shared data (with CAS) and shared queues ------------------------------------------- */

const pw_exc_type pw_CasMismatchError = {"proxywasm.types.CasMismatchError", &pw_HostCallError};

pw_obj *pw_get_shared_data(pw_obj *key) {
    if (!to_bytes_check(key, "shared data key")) return NULL;
    pw_str *k = (pw_str *)key;
    char *data = NULL;
    uint32_t size = 0, cas = 0;
    uint32_t status = proxy_get_shared_data(k->data, k->len, &data, &size, &cas);
    pw_obj *pair[2] = {PW_NONE_V, PW_NONE_V};
    if (status == 1) { free(data); return pw_tuple_new(2, pair); }
    if (status != 0) {
        free(data);
        pw_host_error("proxy_get_shared_data", status, ((pw_str *)pw_repr_of(key))->data);
        return NULL;
    }
    pair[0] = pw_str_new(data ? data : "", data ? size : 0, PW_BYTES);
    pair[1] = pw_box_int(cas);
    free(data);
    return pw_tuple_new(2, pair);
}

void pw_set_shared_data(pw_obj *key, pw_obj *value, pw_obj *cas) {
    if (!to_bytes_check(key, "shared data key")) return;
    pw_str *v = NULL;
    if (value != PW_NONE_V && pw_truthy(value)) {
        if (!to_bytes_check(value, "shared data value")) return;
        v = (pw_str *)value;
    }
    int64_t c = cas == PW_NONE_V ? 0 : pw_to_int(cas);
    if (pw_err) return;
    pw_str *k = (pw_str *)key;
    uint32_t status = proxy_set_shared_data(k->data, k->len, v ? v->data : "", v ? v->len : 0, (uint32_t)c);
    if (status == 8) {
        char detail[300];
        snprintf(detail, sizeof detail, "key %s, cas %s", ((pw_str *)pw_repr_of(key))->data,
                 ((pw_str *)pw_str_of(cas))->data);
        char msg[400];
        snprintf(msg, sizeof msg, "proxy_set_shared_data failed with CAS_MISMATCH: %s", detail);
        pw_raise_c(&pw_CasMismatchError, msg);
        return;
    }
    if (status != 0) pw_host_error("proxy_set_shared_data", status, ((pw_str *)pw_repr_of(key))->data);
}

int64_t pw_register_shared_queue(pw_obj *name) {
    if (!to_bytes_check(name, "queue name")) return 0;
    uint32_t id = 0;
    uint32_t status = proxy_register_shared_queue(((pw_str *)name)->data, ((pw_str *)name)->len, &id);
    if (status != 0) pw_host_error("proxy_register_shared_queue", status, ((pw_str *)pw_repr_of(name))->data);
    return id;
}

pw_obj *pw_resolve_shared_queue(pw_obj *vm_id, pw_obj *name) {
    if (!to_bytes_check(vm_id, "vm id") || !to_bytes_check(name, "queue name")) return NULL;
    uint32_t id = 0;
    uint32_t status = proxy_resolve_shared_queue(((pw_str *)vm_id)->data, ((pw_str *)vm_id)->len,
                                                 ((pw_str *)name)->data, ((pw_str *)name)->len, &id);
    if (status == 1) return PW_NONE_V;
    if (status != 0) { pw_host_error("proxy_resolve_shared_queue", status, ((pw_str *)pw_repr_of(name))->data); return NULL; }
    return pw_box_int(id);
}

void pw_enqueue_shared_queue(int64_t queue, pw_obj *value) {
    if (!to_bytes_check(value, "queue item")) return;
    uint32_t status = proxy_enqueue_shared_queue((uint32_t)queue, ((pw_str *)value)->data, ((pw_str *)value)->len);
    if (status != 0) {
        char detail[32];
        snprintf(detail, sizeof detail, "queue %lld", (long long)queue);
        pw_host_error("proxy_enqueue_shared_queue", status, detail);
    }
}

pw_obj *pw_dequeue_shared_queue(int64_t queue) {
    char *data = NULL;
    uint32_t size = 0;
    uint32_t status = proxy_dequeue_shared_queue((uint32_t)queue, &data, &size);
    if (status == 7 || status == 1) { free(data); return PW_NONE_V; }
    if (status != 0) {
        free(data);
        char detail[32];
        snprintf(detail, sizeof detail, "queue %lld", (long long)queue);
        pw_host_error("proxy_dequeue_shared_queue", status, detail);
        return NULL;
    }
    pw_obj *v = pw_str_new(data ? data : "", data ? size : 0, PW_BYTES);
    free(data);
    return v;
}

/* -- RootContext.get_plugin_configuration_json / get_vm_configuration_json -------------- */

static int is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* contexts._json: None when there is no configuration (or only whitespace); bad JSON is a
   ConfigError saying where ("... is not valid JSON: <msg> (line L, column C)"). */
pw_obj *pw_config_json(int64_t buffer) {
    const char *what = buffer == 7 ? "plugin configuration" : "VM configuration";
    pw_obj *raw = pw_get_buffer(buffer, 0, -1);
    if (raw == NULL || raw == PW_NONE_V) return raw;
    pw_str *r = (pw_str *)raw;
    uint32_t i = 0;
    while (i < r->len && is_ascii_space(r->data[i])) i++;
    if (i == r->len) return PW_NONE_V;
    pw_obj *v = pw_json_loads(raw);
    if (v != NULL) return v;
    int decode = pw_exc_matches(&pw_JSONDecodeError);
    if (!decode && !pw_exc_matches(&pw_ValueError)) return NULL;
    pw_str *text = (pw_str *)pw_str_of(&pw_err->h);
    pw_err = NULL;
    char msg[600];
    int line = 0, col = 0;
    const char *at = NULL;
    /* str(JSONDecodeError) is "<msg>: line L column C (char P)" */
    for (uint32_t k = 0; decode && k + 7 <= text->len; k++)
        if (memcmp(text->data + k, ": line ", 7) == 0) at = text->data + k;
    if (at != NULL && sscanf(at, ": line %d column %d", &line, &col) == 2)
        snprintf(msg, sizeof msg, "%s is not valid JSON: %.*s (line %d, column %d)", what, (int)(at - text->data),
                 text->data, line, col);
    else
        snprintf(msg, sizeof msg, "%s is not valid JSON: %.*s", what, (int)text->len, text->data);
    pw_raise_c(&pw_ConfigError, msg);
    return NULL;
}

/* _fail_task: a coroutine raised after its callback had paused the stream */
void pw_fail_task(uint32_t context_id, int stream) {
    if (stream < 0) return;
    pw_obj *ctx = owner(context_id);
    const pw_class *root_cls = ctx ? CLS(((pw_inst *)ctx)->f[PW_F_ROOT].p) : NULL;
    if (stream >= 2 && !(root_cls && root_cls->fail_open)) { fail_tcp(context_id, root_cls); return; }
    if (root_cls && root_cls->fail_open) { /* as if the callback had returned CONTINUE */
        pw_enter_id(context_id);
        proxy_continue_stream((uint32_t)stream);
        return;
    }
    fail_http(context_id, root_cls);
}

/* HostCallError.function (which 0) and .status (1) of an error this runtime raised: its
   message is "<function> failed with <STATUS>[: detail]" (types.HostCallError) */
pw_obj *pw_host_error_attr(pw_obj *exc, int64_t which) {
    static const char *const names[] = {"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE",
                                        "PARSE_FAILURE", "5", "INVALID_MEMORY_ACCESS", "EMPTY",
                                        "CAS_MISMATCH", "9", "INTERNAL_FAILURE", "11", "UNIMPLEMENTED"};
    pw_str *m = (pw_str *)((pw_exc *)exc)->message;
    const char *text = m ? m->data : "";
    uint32_t len = m ? m->len : 0, at = 0;
    static const char sep[] = " failed with ";
    while (at + sizeof sep - 1 <= len && memcmp(text + at, sep, sizeof sep - 1) != 0) at++;
    if (at + sizeof sep - 1 > len) at = len;
    if (which == 0) return pw_str_new(text, at, PW_STR);
    const char *status = text + at + sizeof sep - 1;
    uint32_t rest = at + sizeof sep - 1 <= len ? len - at - (uint32_t)(sizeof sep - 1) : 0, n = 0;
    while (n < rest && status[n] != ':') n++;
    for (int i = 0; i < 13; i++)
        if (strlen(names[i]) == n && memcmp(names[i], status, n) == 0) return pw_box_int(i);
    return pw_box_int(0);
}
