/* A proxy-wasm filter written directly against ABI v0.2.1 in C, with no SDK.
 * Test fixture: HostEmulator.from_wasm must run modules it did not build.
 * - on_configure logs the plugin configuration at INFO;
 * - request headers: copies :path into x-c-path; answers 403 if the path is /deny;
 * - response headers: sets x-hello: c;
 * - counts requests in the counter "c_filter.requests". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(proxy_log) int proxy_log(int level, const char *msg, size_t len);
IMPORT(proxy_get_buffer_bytes) int proxy_get_buffer_bytes(int type, size_t start, size_t max, char **data, size_t *size);
IMPORT(proxy_get_header_map_value) int proxy_get_header_map_value(int map, const char *key, size_t klen, char **val, size_t *vlen);
IMPORT(proxy_replace_header_map_value) int proxy_replace_header_map_value(int map, const char *key, size_t klen, const char *val, size_t vlen);
IMPORT(proxy_send_local_response) int proxy_send_local_response(uint32_t status, const char *det, size_t detlen, const char *body, size_t blen, const char *hdrs, size_t hlen, int32_t grpc);
IMPORT(proxy_define_metric) int proxy_define_metric(int type, const char *name, size_t len, uint32_t *id);
IMPORT(proxy_increment_metric) int proxy_increment_metric(uint32_t id, int64_t delta);

static uint32_t requests_metric;

EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}
EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) { return malloc(size); }
EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t id, uint32_t parent) {}
EXPORT(proxy_on_vm_start) int proxy_on_vm_start(uint32_t id, size_t size) {
  return proxy_define_metric(0, "c_filter.requests", 17, &requests_metric) == 0;
}
EXPORT(proxy_on_configure) int proxy_on_configure(uint32_t id, size_t size) {
  char *data = 0; size_t len = 0;
  if (proxy_get_buffer_bytes(7, 0, size, &data, &len) == 0 && data) {
    proxy_log(2, data, len);
    free(data);
  } else {
    proxy_log(2, "no configuration", 16);
  }
  return 1;
}
EXPORT(proxy_on_request_headers) int proxy_on_request_headers(uint32_t id, size_t n, int eos) {
  char *path = 0; size_t len = 0;
  proxy_increment_metric(requests_metric, 1);
  if (proxy_get_header_map_value(0, ":path", 5, &path, &len) != 0) return 0;
  proxy_replace_header_map_value(0, "x-c-path", 8, path, len);
  int deny = len == 5 && memcmp(path, "/deny", 5) == 0;
  free(path);
  if (deny) {
    proxy_send_local_response(403, "denied", 6, "denied\n", 7, "", 0, -1);
    return 1;
  }
  return 0;
}
EXPORT(proxy_on_response_headers) int proxy_on_response_headers(uint32_t id, size_t n, int eos) {
  proxy_replace_header_map_value(2, "x-hello", 7, "c", 1);
  return 0;
}
EXPORT(proxy_on_done) int proxy_on_done(uint32_t id) { return 1; }
