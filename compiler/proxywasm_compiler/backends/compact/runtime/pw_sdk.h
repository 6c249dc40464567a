/* The SDK surface of the compact backend: contexts, the dispatcher of the
 * proxy_on_* callbacks, and the host calls behind the SDK's methods.
 *
 * Classes: BaseContext's callbacks fill slots 0-2; RootContext and
 * HttpContext append theirs; a user class appends its own methods after
 * PW_ROOT_NSLOTS / PW_HTTP_NSLOTS (codegen lays them out). */
#ifndef PW_SDK_H
#define PW_SDK_H
#include "pw_rt.h"

enum {
    PW_SLOT_ON_DONE, PW_SLOT_ON_LOG, PW_SLOT_ON_DELETE, PW_SLOT_ON_HTTP_CALL_RESPONSE, PW_BASE_NSLOTS
};
enum {
    PW_SLOT_ON_VM_START = PW_BASE_NSLOTS, PW_SLOT_ON_CONFIGURE, PW_SLOT_ON_TICK,
    PW_SLOT_CREATE_HTTP_CONTEXT, PW_SLOT_CREATE_STREAM_CONTEXT, PW_ROOT_NSLOTS
};
enum {
    PW_SLOT_ON_NEW_CONNECTION = PW_BASE_NSLOTS, PW_SLOT_ON_DOWNSTREAM_DATA, PW_SLOT_ON_DOWNSTREAM_CLOSE,
    PW_SLOT_ON_UPSTREAM_DATA, PW_SLOT_ON_UPSTREAM_CLOSE, PW_TCP_NSLOTS
};
enum {
    PW_SLOT_ON_REQUEST_HEADERS = PW_BASE_NSLOTS, PW_SLOT_ON_REQUEST_BODY, PW_SLOT_ON_REQUEST_TRAILERS,
    PW_SLOT_ON_RESPONSE_HEADERS, PW_SLOT_ON_RESPONSE_BODY, PW_SLOT_ON_RESPONSE_TRAILERS, PW_HTTP_NSLOTS
};

/* Field 0 of every context is context_id; field 1 of a stream context is root; an HTTP
   context keeps its self.request / self.response views in fields 2 and 3 (made on first use). */
#define PW_F_CONTEXT_ID 0
#define PW_F_ROOT 1
#define PW_F_REQUEST 2
#define PW_F_RESPONSE 3

extern const pw_class pw_cls_RootContext, pw_cls_HttpContext, pw_cls_StreamContext, pw_cls_object;
extern const pw_class pw_cls_Counter, pw_cls_Gauge, pw_cls_Histogram;
extern const pw_exc_type pw_HostCallError, pw_ProxyWasmError, pw_ConfigError;

/* Set by the generated module init (`proxywasm.set_root_context(Root)`). */
extern pw_obj *(*pw_root_factory)(int64_t context_id);
void pw_module_init(void);  /* generated */
void pw_module_roots(void (*mark)(pw_obj *));  /* generated: marks the module's globals */

/* SDK defaults a user class inherits (the generated vtables point at them). */
int pw_default_on_done(pw_obj *self);
void pw_default_on_void(pw_obj *self);
int pw_default_on_start(pw_obj *self, int64_t size);
void pw_default_on_tick(pw_obj *self);
pw_obj *pw_default_create_http_context(pw_obj *self, int64_t context_id);
int64_t pw_default_on_headers(pw_obj *self, int64_t n, int end_of_stream);
int64_t pw_default_on_trailers(pw_obj *self, int64_t n);
void pw_default_on_http_call_response(pw_obj *self, int64_t token, int64_t nh, int64_t body, int64_t nt);
pw_obj *pw_default_create_stream_context(pw_obj *self, int64_t context_id);
int64_t pw_default_on_new_connection(pw_obj *self);
void pw_default_on_close(pw_obj *self, int64_t peer);

/* the SDK's __init__ (RootContext(context_id), HttpContext(context_id, root)) */
void pw_init_root(pw_obj *self, int64_t context_id);
void pw_init_http(pw_obj *self, int64_t context_id, pw_obj *root, const pw_class *root_class);
pw_obj *pw_new_stream(const pw_class *cls, int64_t context_id, pw_obj *root);  /* HttpContext(id, root) */

/* checks of values typed `str | bytes` (None too for a value: it removes) */
pw_obj *pw_check_header_name(pw_obj *v);
pw_obj *pw_check_header_value(pw_obj *v);

/* host calls (self is the context; map and buffer ids as in the ABI) */
void pw_log(int64_t level, pw_obj *message);
pw_obj *pw_get_header(pw_obj *self, int64_t map, pw_obj *name);       /* str | None */
void pw_set_header(pw_obj *self, int64_t map, pw_obj *name, pw_obj *value);  /* None removes */
void pw_add_header(pw_obj *self, int64_t map, pw_obj *name, pw_obj *value);
void pw_remove_header(pw_obj *self, int64_t map, pw_obj *name);
pw_obj *pw_get_buffer(int64_t buffer, int64_t start, int64_t size);  /* bytes | None; size < 0: all */

/* metrics: Counter / Gauge / Histogram objects (fields: name, id, bound) */
pw_obj *pw_metric_new(const pw_class *cls, pw_obj *name);
void pw_metric_define(pw_obj *m);
void pw_metric_increment(pw_obj *m, int64_t delta);
void pw_metric_record(pw_obj *m, int64_t value);
int64_t pw_metric_get(pw_obj *m);

/* more host calls */
int64_t pw_now_ns(void);
pw_obj *pw_get_property(pw_obj *self, pw_obj *path);                  /* bytes | None */
pw_obj *pw_bytes_as_str(pw_obj *v);                                     /* bytes | None -> str | None */
void pw_send_http_response(pw_obj *self, int64_t status, pw_obj *headers, pw_obj *body, pw_obj *details,
                           int64_t grpc_status);
void pw_set_buffer(pw_obj *self, int64_t buffer, pw_obj *value, int64_t start, pw_obj *size);
pw_obj *pw_get_buffer_ctx(pw_obj *self, int64_t buffer, int64_t start, pw_obj *size);
void pw_stream_op(pw_obj *self, int64_t stream, int close);
pw_obj *pw_get_headers(pw_obj *self, int64_t map);                     /* list[tuple[str, str]] */
void pw_set_headers(pw_obj *self, int64_t map, pw_obj *headers);
int64_t pw_dispatch_http_call(pw_obj *self, pw_obj *upstream, pw_obj *headers, pw_obj *body, pw_obj *trailers,
                              int64_t timeout_ms);
void pw_set_tick_period(pw_obj *self, int64_t ms);
int64_t pw_get_log_level(void);
pw_obj *pw_get_shared_data(pw_obj *key);                      /* (bytes | None, int | None) */
void pw_set_shared_data(pw_obj *key, pw_obj *value, pw_obj *cas);
int64_t pw_register_shared_queue(pw_obj *name);
pw_obj *pw_resolve_shared_queue(pw_obj *vm_id, pw_obj *name);  /* int | None */
void pw_enqueue_shared_queue(int64_t queue, pw_obj *value);
pw_obj *pw_dequeue_shared_queue(int64_t queue);                /* bytes | None */
extern const pw_exc_type pw_CasMismatchError;


/* the dispatcher's state and errors, for the views (pw_views.c) */
extern int64_t pw_map_epoch;  /* bumped at every callback and every host call that changes a map */
void pw_enter_id(uint32_t context_id);  /* make it the host's effective context (if it is not) */
extern uint32_t pw_effective_id;        /* the host's effective context, as far as we know */
void pw_host_error(const char *function, uint32_t status, const char *detail);  /* raise HostCallError */
void pw_map_check(const char *function, uint32_t status, int64_t map);  /* with Envoy's hints */
const char *pw_map_name(int64_t map);
pw_obj *pw_items_of(pw_obj *mapping);  /* the (key, value) list of a dict or a view */

/* callback results typed `Action | None` (the thunk codegen puts in the slot converts them) */
int64_t pw_callback_action(pw_obj *result, pw_obj *ctx, const char *name);
/* RootContext.get_plugin_configuration_json (buffer 7) / get_vm_configuration_json (6) */
pw_obj *pw_config_json(int64_t buffer);

/* proxywasm.views: self.request (which 0) / self.response (1) of an HTTP context, and the
   attributes of those views (headers, trailers, body, method, path, authority, scheme, status) */
pw_obj *pw_http_view(pw_obj *self, int64_t which);
pw_obj *pw_view_getattr(pw_obj *view, const char *name);
extern const pw_class pw_cls_HeaderMap, pw_cls_Body, pw_cls_Request, pw_cls_Response;
/* the same without a name compared at run time, for a receiver mypy types a Request / Response
   (headers, trailers, body) or a HeaderMap (its methods); another receiver goes by name */
pw_obj *pw_view_headers(pw_obj *view);
pw_obj *pw_view_trailers(pw_obj *view);
pw_obj *pw_view_body(pw_obj *view);
pw_obj *pw_hm_get(pw_obj *m, pw_obj *name, pw_obj *dflt);
pw_obj *pw_hm_getitem(pw_obj *m, pw_obj *name);
int pw_hm_contains(pw_obj *m, pw_obj *name);
pw_obj *pw_hm_setitem(pw_obj *m, pw_obj *name, pw_obj *value);
pw_obj *pw_hm_add(pw_obj *m, pw_obj *name, pw_obj *value);
pw_obj *pw_hm_delitem(pw_obj *m, pw_obj *name);
pw_obj *pw_hm_pop(pw_obj *m, pw_obj *name, pw_obj *dflt);  /* dflt NULL: KeyError when absent */
/* the same on ctx.request.headers (map 0), .trailers (1), ctx.response.headers (2), .trailers (3)
   of an HTTP context, without making the views */
pw_obj *pw_ctx_hm_get(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *dflt);
pw_obj *pw_ctx_hm_getitem(pw_obj *ctx, int64_t map, pw_obj *name);
int pw_ctx_hm_contains(pw_obj *ctx, int64_t map, pw_obj *name);
#define PW_MAP_TEXT 4  /* or'd into the map of _setitem / _add: name and value are str or bytes */
pw_obj *pw_ctx_hm_setitem(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *value);
pw_obj *pw_ctx_hm_add(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *value);
pw_obj *pw_ctx_hm_delitem(pw_obj *ctx, int64_t map, pw_obj *name);
pw_obj *pw_ctx_hm_pop(pw_obj *ctx, int64_t map, pw_obj *name, pw_obj *dflt);
extern const pw_class pw_cls_FrozenHeaders, pw_cls_HttpResponse, pw_cls_HttpCall, pw_cls_Gather;

/* async def callbacks (pw_views.c drives their coroutines, as proxywasm._tasks / the dispatcher).
   A coroutine is a step function over a heap frame (a pw_inst: the driver's 3 fields, then the
   locals); it returns its result, NULL on an error, or &pw_suspended at an await. */
typedef pw_obj *(*pw_step_fn)(pw_obj *frame);
extern pw_obj pw_suspended;
extern const pw_exc_type pw_GeneratorExit;
#define PW_CO_STATE(fr) (((pw_inst *)(fr))->f[0].i)
#define PW_CO_AWAITED(fr) (((pw_inst *)(fr))->f[1].p)
#define PW_CO_CANCELLED(fr) (((pw_inst *)(fr))->f[2].i)
int64_t pw_task_start(pw_obj *frame, pw_step_fn step, pw_obj *ctx, const char *name, int stream);
int pw_await_ready(pw_obj *awaited);       /* every callout it waits for has answered */
pw_obj *pw_await_result(pw_obj *frame);    /* the answer (a list for gather); GeneratorExit if cancelled */
pw_obj *pw_http_call(pw_obj *self, pw_obj *cluster, pw_obj *method, pw_obj *path, pw_obj *headers, pw_obj *body,
                     pw_obj *trailers, int64_t timeout_ms, pw_obj *authority);  /* an HttpCall */
pw_obj *pw_gather(pw_obj *calls);  /* a tuple of HttpCall -> a gather to await */

/* what the driver needs of the dispatcher */
typedef struct {
    int (*answer)(uint32_t token, uint32_t num_headers, uint32_t body_size, uint32_t num_trailers);
    void (*cancel)(uint32_t context_id);
    void (*mark)(void (*mark)(pw_obj *));
} pw_task_hooks_t;
extern const pw_task_hooks_t *pw_task_hooks;  /* set when the first coroutine starts */
void pw_report(const char *where, uint32_t context_id);  /* log the pending exception */
int pw_has_replied(uint32_t context_id);  /* the stream sent (or tried) a local reply */
void pw_fail_task(uint32_t context_id, int stream);     /* the failure policy after a pause */
pw_obj *pw_host_error_attr(pw_obj *exc, int64_t which);  /* HostCallError .function (0), .status (1) */

#endif
