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
    PW_SLOT_ON_DONE, PW_SLOT_ON_LOG, PW_SLOT_ON_DELETE, PW_BASE_NSLOTS
};
enum {
    PW_SLOT_ON_VM_START = PW_BASE_NSLOTS, PW_SLOT_ON_CONFIGURE, PW_SLOT_ON_TICK,
    PW_SLOT_CREATE_HTTP_CONTEXT, PW_ROOT_NSLOTS
};
enum {
    PW_SLOT_ON_REQUEST_HEADERS = PW_BASE_NSLOTS, PW_SLOT_ON_REQUEST_BODY, PW_SLOT_ON_REQUEST_TRAILERS,
    PW_SLOT_ON_RESPONSE_HEADERS, PW_SLOT_ON_RESPONSE_BODY, PW_SLOT_ON_RESPONSE_TRAILERS, PW_HTTP_NSLOTS
};

/* Field 0 of every context is context_id; field 1 of a stream context is root. */
#define PW_F_CONTEXT_ID 0
#define PW_F_ROOT 1

extern const pw_class pw_cls_RootContext, pw_cls_HttpContext;

/* Set by the generated module init (`proxywasm.set_root_context(Root)`). */
extern pw_obj *(*pw_root_factory)(int64_t context_id);
void pw_module_init(void);  /* generated */

/* SDK defaults a user class inherits (the generated vtables point at them). */
int pw_default_on_done(pw_obj *self);
void pw_default_on_void(pw_obj *self);
int pw_default_on_start(pw_obj *self, int64_t size);
void pw_default_on_tick(pw_obj *self);
pw_obj *pw_default_create_http_context(pw_obj *self, int64_t context_id);
int64_t pw_default_on_headers(pw_obj *self, int64_t n, int end_of_stream);
int64_t pw_default_on_trailers(pw_obj *self, int64_t n);

/* the SDK's __init__ (RootContext(context_id), HttpContext(context_id, root)) */
void pw_init_root(pw_obj *self, int64_t context_id);
void pw_init_http(pw_obj *self, int64_t context_id, pw_obj *root, const pw_class *root_class);

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

#endif
