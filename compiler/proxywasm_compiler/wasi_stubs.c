/* In-module definitions of the WASI preview1 functions Envoy does not provide.
 *
 * wasi-libc calls every WASI function through an undefined symbol named
 * __imported_wasi_snapshot_preview1_<name>; it becomes a module import only if
 * nothing defines it.  Defining it here keeps it inside the module, so the
 * final module imports only what Envoy's proxy-wasm host provides:
 * fd_write, clock_time_get, random_get, environ_get, environ_sizes_get,
 * args_get, args_sizes_get, proc_exit.
 *
 * The model is "no filesystem, three character devices": fds 0-2 exist
 * (stdin reads EOF; stdout/stderr writes go to the host's fd_write, which Envoy
 * sends to its log), every other fd is EBADF, there are no preopened dirs (so
 * every path lookup fails before reaching the path_* functions), sockets and
 * polling are unsupported.  fd_filestat_get must report fds 0-2 as character
 * devices, or CPython's start-up fails with EBADF when it creates sys.stdin.
 *
 * Signatures are the lowered core-wasm ones wasi-libc declares (i32/i64 only);
 * a mismatch would make wasm-ld replace the call by a trap.
 */
#include <stdint.h>
#include <string.h>

#define WASI_ESUCCESS 0
#define WASI_EBADF 8
#define WASI_EINVAL 28
#define WASI_ENOSYS 52
#define WASI_ENOTSUP 58
#define WASI_ESPIPE 70
#define WASI_ENOTCAPABLE 76

#define WASI_FILETYPE_CHARACTER_DEVICE 2

#define WASI_RIGHT_FD_READ ((uint64_t)1 << 1)
#define WASI_RIGHT_FD_WRITE ((uint64_t)1 << 6)
#define WASI_RIGHT_FD_FILESTAT_GET ((uint64_t)1 << 21)
#define WASI_RIGHT_POLL_FD_READWRITE ((uint64_t)1 << 27)

#define PW_WASI(name) __imported_wasi_snapshot_preview1_##name
#define PW_STDIO(fd) ((fd) >= 0 && (fd) <= 2)

/* ---- fds 0-2 are character devices -------------------------------------- */

int32_t PW_WASI(fd_fdstat_get)(int32_t fd, int32_t out) {
    if (!PW_STDIO(fd)) return WASI_EBADF;
    /* __wasi_fdstat_t: u8 filetype @0, u16 flags @2, u64 rights_base @8,
     * u64 rights_inheriting @16; 24 bytes.  No seek/tell rights: a tty. */
    uint8_t *p = (uint8_t *)(uintptr_t)out;
    uint64_t rights = (fd == 0 ? WASI_RIGHT_FD_READ : WASI_RIGHT_FD_WRITE) |
                      WASI_RIGHT_FD_FILESTAT_GET | WASI_RIGHT_POLL_FD_READWRITE;
    memset(p, 0, 24);
    p[0] = WASI_FILETYPE_CHARACTER_DEVICE;
    memcpy(p + 8, &rights, 8);
    return WASI_ESUCCESS;
}

int32_t PW_WASI(fd_filestat_get)(int32_t fd, int32_t out) {
    if (!PW_STDIO(fd)) return WASI_EBADF;
    /* __wasi_filestat_t: dev @0, ino @8, u8 filetype @16, nlink @24, size @32,
     * atim @40, mtim @48, ctim @56; 64 bytes. */
    uint8_t *p = (uint8_t *)(uintptr_t)out;
    uint64_t one = 1;
    memset(p, 0, 64);
    p[16] = WASI_FILETYPE_CHARACTER_DEVICE;
    memcpy(p + 24, &one, 8);
    return WASI_ESUCCESS;
}

int32_t PW_WASI(fd_fdstat_set_flags)(int32_t fd, int32_t flags) {
    (void)flags;
    return PW_STDIO(fd) ? WASI_ENOTSUP : WASI_EBADF;
}

int32_t PW_WASI(fd_read)(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t nread) {
    (void)iovs; (void)iovs_len;
    if (fd != 0) return WASI_EBADF;
    *(uint32_t *)(uintptr_t)nread = 0; /* stdin is always at EOF */
    return WASI_ESUCCESS;
}

int32_t PW_WASI(fd_pread)(int32_t fd, int32_t iovs, int32_t iovs_len, int64_t off, int32_t nread) {
    (void)iovs; (void)iovs_len; (void)off; (void)nread;
    return PW_STDIO(fd) ? WASI_ESPIPE : WASI_EBADF;
}

int32_t PW_WASI(fd_pwrite)(int32_t fd, int32_t iovs, int32_t iovs_len, int64_t off, int32_t nwritten) {
    (void)iovs; (void)iovs_len; (void)off; (void)nwritten;
    return PW_STDIO(fd) ? WASI_ESPIPE : WASI_EBADF;
}

int32_t PW_WASI(fd_seek)(int32_t fd, int64_t offset, int32_t whence, int32_t newoffset) {
    (void)offset; (void)whence; (void)newoffset;
    return PW_STDIO(fd) ? WASI_ESPIPE : WASI_EBADF;
}

int32_t PW_WASI(fd_tell)(int32_t fd, int32_t offset) {
    (void)offset;
    return PW_STDIO(fd) ? WASI_ESPIPE : WASI_EBADF;
}

int32_t PW_WASI(fd_close)(int32_t fd) {
    return PW_STDIO(fd) ? WASI_ESUCCESS : WASI_EBADF;
}

/* zig's libzigc (close() is written in Zig) calls WASI through externs whose
 * symbol is "<name>|<import module>"; only fd_close is used today.  Any other
 * one would show up as a forbidden import in link.check_imports. */
int32_t pw_zig_fd_close(int32_t fd) __asm__("fd_close|wasi_snapshot_preview1");
int32_t pw_zig_fd_close(int32_t fd) { return PW_WASI(fd_close)(fd); }

int32_t PW_WASI(fd_sync)(int32_t fd) { return PW_STDIO(fd) ? WASI_ESUCCESS : WASI_EBADF; }
int32_t PW_WASI(fd_datasync)(int32_t fd) { return PW_STDIO(fd) ? WASI_ESUCCESS : WASI_EBADF; }

int32_t PW_WASI(fd_advise)(int32_t fd, int64_t off, int64_t len, int32_t advice) {
    (void)off; (void)len; (void)advice;
    return PW_STDIO(fd) ? WASI_ESPIPE : WASI_EBADF;
}

int32_t PW_WASI(fd_filestat_set_size)(int32_t fd, int64_t size) {
    (void)size;
    return PW_STDIO(fd) ? WASI_EINVAL : WASI_EBADF;
}

int32_t PW_WASI(fd_filestat_set_times)(int32_t fd, int64_t atim, int64_t mtim, int32_t flags) {
    (void)atim; (void)mtim; (void)flags;
    return PW_STDIO(fd) ? WASI_ENOTSUP : WASI_EBADF;
}

int32_t PW_WASI(fd_allocate)(int32_t fd, int64_t off, int64_t len) {
    (void)off; (void)len;
    return PW_STDIO(fd) ? WASI_ESPIPE : WASI_EBADF;
}

int32_t PW_WASI(fd_fdstat_set_rights)(int32_t fd, int64_t base, int64_t inheriting) {
    (void)base; (void)inheriting;
    return PW_STDIO(fd) ? WASI_ENOTCAPABLE : WASI_EBADF;
}

int32_t PW_WASI(fd_renumber)(int32_t from, int32_t to) { (void)from; (void)to; return WASI_EBADF; }

int32_t PW_WASI(fd_readdir)(int32_t fd, int32_t buf, int32_t len, int64_t cookie, int32_t used) {
    (void)buf; (void)len; (void)cookie; (void)used;
    return WASI_EBADF;
}

/* No preopened directories: wasi-libc stops scanning at the first EBADF. */
int32_t PW_WASI(fd_prestat_get)(int32_t fd, int32_t out) { (void)fd; (void)out; return WASI_EBADF; }
int32_t PW_WASI(fd_prestat_dir_name)(int32_t fd, int32_t path, int32_t len) {
    (void)fd; (void)path; (void)len;
    return WASI_EBADF;
}

/* ---- paths: there is no directory fd to resolve against -------------------- */

int32_t PW_WASI(path_create_directory)(int32_t fd, int32_t p, int32_t n) {
    (void)fd; (void)p; (void)n; return WASI_EBADF;
}
int32_t PW_WASI(path_filestat_get)(int32_t fd, int32_t fl, int32_t p, int32_t n, int32_t out) {
    (void)fd; (void)fl; (void)p; (void)n; (void)out; return WASI_EBADF;
}
int32_t PW_WASI(path_filestat_set_times)(int32_t fd, int32_t fl, int32_t p, int32_t n, int64_t a,
                                          int64_t m, int32_t f) {
    (void)fd; (void)fl; (void)p; (void)n; (void)a; (void)m; (void)f; return WASI_EBADF;
}
int32_t PW_WASI(path_link)(int32_t ofd, int32_t ofl, int32_t op, int32_t on, int32_t nfd, int32_t np,
                           int32_t nn) {
    (void)ofd; (void)ofl; (void)op; (void)on; (void)nfd; (void)np; (void)nn; return WASI_EBADF;
}
int32_t PW_WASI(path_open)(int32_t fd, int32_t dfl, int32_t p, int32_t n, int32_t oflags, int64_t rb,
                           int64_t ri, int32_t fdflags, int32_t out) {
    (void)fd; (void)dfl; (void)p; (void)n; (void)oflags; (void)rb; (void)ri; (void)fdflags; (void)out;
    return WASI_EBADF;
}
int32_t PW_WASI(path_readlink)(int32_t fd, int32_t p, int32_t n, int32_t buf, int32_t len, int32_t used) {
    (void)fd; (void)p; (void)n; (void)buf; (void)len; (void)used; return WASI_EBADF;
}
int32_t PW_WASI(path_remove_directory)(int32_t fd, int32_t p, int32_t n) {
    (void)fd; (void)p; (void)n; return WASI_EBADF;
}
int32_t PW_WASI(path_rename)(int32_t fd, int32_t op, int32_t on, int32_t nfd, int32_t np, int32_t nn) {
    (void)fd; (void)op; (void)on; (void)nfd; (void)np; (void)nn; return WASI_EBADF;
}
int32_t PW_WASI(path_symlink)(int32_t op, int32_t on, int32_t fd, int32_t np, int32_t nn) {
    (void)op; (void)on; (void)fd; (void)np; (void)nn; return WASI_EBADF;
}
int32_t PW_WASI(path_unlink_file)(int32_t fd, int32_t p, int32_t n) {
    (void)fd; (void)p; (void)n; return WASI_EBADF;
}

/* ---- clocks, scheduling, polling, sockets ------------------------------------ */

int32_t PW_WASI(clock_res_get)(int32_t id, int32_t out) {
    if (id < 0 || id > 3) return WASI_EINVAL;
    *(uint64_t *)(uintptr_t)out = 1000; /* 1 us: an honest guess for any host */
    return WASI_ESUCCESS;
}

int32_t PW_WASI(sched_yield)(void) { return WASI_ESUCCESS; }

int32_t PW_WASI(poll_oneoff)(int32_t in, int32_t out, int32_t nsubs, int32_t nevents) {
    (void)in; (void)out; (void)nsubs;
    *(uint32_t *)(uintptr_t)nevents = 0;
    return WASI_ENOTSUP;
}

int32_t PW_WASI(sock_accept)(int32_t fd, int32_t flags, int32_t out) {
    (void)fd; (void)flags; (void)out; return WASI_ENOTSUP;
}
int32_t PW_WASI(sock_recv)(int32_t fd, int32_t data, int32_t len, int32_t flags, int32_t n, int32_t oflags) {
    (void)fd; (void)data; (void)len; (void)flags; (void)n; (void)oflags; return WASI_ENOTSUP;
}
int32_t PW_WASI(sock_send)(int32_t fd, int32_t data, int32_t len, int32_t flags, int32_t n) {
    (void)fd; (void)data; (void)len; (void)flags; (void)n; return WASI_ENOTSUP;
}
int32_t PW_WASI(sock_shutdown)(int32_t fd, int32_t how) { (void)fd; (void)how; return WASI_ENOTSUP; }
