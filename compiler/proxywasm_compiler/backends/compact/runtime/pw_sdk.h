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

/* Field 0 of every context is context_id; field 1 of a stream context is root. */
#define PW_F_CONTEXT_ID 0
#define PW_F_ROOT 1

extern const pw_class pw_cls_RootContext, pw_cls_HttpContext, pw_cls_StreamContext, pw_cls_object;
extern const pw_class pw_cls_Counter, pw_cls_Gauge, pw_cls_Histogram;
extern const pw_exc_type pw_HostCallError, pw_ProxyWasmError;

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

#endif
