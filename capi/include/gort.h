/*
 * gort.h — the gort runtime's C ABI (libgort).
 *
 * Starting Gs from C: gort_go(fn, arg) starts a G (a gort green thread)
 * nobody waits for; gort_spawn(fn, arg) starts one whose int result
 * gort_join(handle, &result) collects, once. Inside a G, gort_sleep_ns and
 * gort_yield park the G instead of the thread, and gort_syscall(fn, arg)
 * makes a blocking call while other Gs run.
 *
 * Calling back from C threads (ones gort did not create): the thread calls
 * gort_callback(fn, arg): fn runs as a G that may spawn Gs, join, sleep and
 * block on anything the runtime offers; the C thread waits until fn
 * returns. The first call on a thread binds an "extra M" from a pool to it
 * (gort_needm does it ahead of time); the thread keeps it across calls and
 * gives it back when it exits, or at once with gort_dropm(). The runtime
 * starts on first use; nothing needs to be called first.
 *
 * Results: functions returning int return GORT_OK (0) or one of the negative
 * GORT_E_* codes listed with each function. gort_go and gort_spawn return a
 * positive id or handle, or a negative GORT_E_* code. gort_strerror describes
 * any code. No function blocks forever or has undefined behaviour on
 * misuse, as long as the pointers passed are valid.
 *
 * Signal handlers: from a handler (installed with SA_ONSTACK, as gort
 * requires on its threads) that interrupted a G, gort_callback,
 * gort_sleep_ns, gort_yield, gort_syscall and gort_join return
 * GORT_E_SIGNAL_HANDLER, and gort_go and gort_spawn return it from any
 * handler. A handler on a plain thread (or main) may call gort_callback.
 *
 * Link: pkg-config --cflags --libs gort (shared), or with only the static
 * library installed, pkg-config --static --cflags --libs gort. Install with
 * capi/install.sh from gort's source tree.
 *
 * Every constant and prototype here is checked against the Rust side by
 * gort's tests (tests/tests/ffi_header.rs).
 */
#ifndef GORT_H
#define GORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    /* Success. */
    GORT_OK = 0,
    /* A function pointer was NULL. */
    GORT_E_NULL_FN = -1,
    /* gort_dropm: this thread has no M. */
    GORT_E_NO_M = -2,
    /* gort_dropm: this is a runtime thread, not a foreign one. */
    GORT_E_NOT_FOREIGN = -3,
    /* gort_dropm called from inside a callback. */
    GORT_E_IN_CALLBACK = -4,
    /* The process is exiting; nothing was run or started. */
    GORT_E_EXITING = -5,
    /* No memory (or no stack within the configured limits) for a G or an
     * extra M. */
    GORT_E_NO_MEMORY = -6,
    /* gort_needm: this thread already has an M. */
    GORT_E_ALREADY_BOUND = -7,
    /* Called from the scheduler's own context (not from a G or a foreign
     * thread). */
    GORT_E_BAD_CONTEXT = -8,
    /* Called from a signal handler where that is not allowed (see above). */
    GORT_E_SIGNAL_HANDLER = -9,
    /* gort_join: not a handle gort_spawn returned. */
    GORT_E_BAD_HANDLE = -10,
    /* gort_join: this handle was joined already. */
    GORT_E_JOINED = -11,
    /* gort_join: a G tried to join itself. */
    GORT_E_JOIN_SELF = -12,
    /* Called in a child of fork(), where the runtime's threads do not
     * exist; nothing was run or started. Call exec or _exit after fork. */
    GORT_E_FORKED_CHILD = -13,
    /* gort_dump: the descriptor is not open for writing. */
    GORT_E_BAD_FD = -14,
};

/* Runs fn(arg) as a G on the calling thread and returns when it has
 * returned. Works on foreign threads (binding an M on first use) and on
 * gort's own Gs (a G that called C which calls back: runs inline).
 * Returns GORT_OK, GORT_E_NULL_FN, GORT_E_EXITING, GORT_E_NO_MEMORY,
 * GORT_E_BAD_CONTEXT, GORT_E_SIGNAL_HANDLER or GORT_E_FORKED_CHILD. */
int gort_callback(void (*fn)(void *arg), void *arg);

/* Binds an extra M to the calling thread ahead of the first callback.
 * Returns GORT_OK, GORT_E_ALREADY_BOUND, GORT_E_EXITING or
 * GORT_E_NO_MEMORY. */
int gort_needm(void);

/* Gives the calling thread's extra M back to the pool now (otherwise it
 * goes back when the thread exits). Returns GORT_OK, GORT_E_NO_M,
 * GORT_E_NOT_FOREIGN or GORT_E_IN_CALLBACK. */
int gort_dropm(void);

/* In a G: parks the G for at least ns nanoseconds. On a plain thread:
 * sleeps the thread. Returns GORT_OK or GORT_E_SIGNAL_HANDLER. */
int gort_sleep_ns(uint64_t ns);

/* In a G: lets other Gs run. On a plain thread: yields the thread.
 * Returns GORT_OK or GORT_E_SIGNAL_HANDLER. */
int gort_yield(void);

/* Calls fn(arg), a call that may block (in C or in the kernel), with the
 * calling G's P set aside so that other Gs keep running; on a plain thread
 * it just calls fn. Returns GORT_OK (after fn returned), GORT_E_NULL_FN or
 * GORT_E_SIGNAL_HANDLER. */
int gort_syscall(void (*fn)(void *arg), void *arg);

/* Starts a G running fn(arg) that nobody joins. Returns the G's id (> 0,
 * as crash dumps show it) or GORT_E_NULL_FN, GORT_E_EXITING,
 * GORT_E_NO_MEMORY, GORT_E_SIGNAL_HANDLER or GORT_E_FORKED_CHILD. */
int64_t gort_go(void (*fn)(void *arg), void *arg);

/* Starts a G running fn(arg) to be joined with gort_join. Returns a handle
 * (> 0; not the G's id) or GORT_E_NULL_FN, GORT_E_EXITING,
 * GORT_E_NO_MEMORY, GORT_E_SIGNAL_HANDLER or GORT_E_FORKED_CHILD. Join
 * each handle once: a handle keeps a small record until it is joined. */
int64_t gort_spawn(int (*fn)(void *arg), void *arg);

/* Waits until the G of a gort_spawn handle has returned and stores fn's
 * return value in *result (if result is not NULL). Parks a calling G;
 * blocks a plain thread. Returns GORT_OK, GORT_E_BAD_HANDLE,
 * GORT_E_JOINED, GORT_E_JOIN_SELF or GORT_E_SIGNAL_HANDLER; *result is
 * written only with GORT_OK. */
int gort_join(int64_t handle, int *result);

/* Writes every G's stack to fd, in the crash dump's format, while the
 * program keeps running (runtime::dump in Rust): parked Gs from their saved
 * contexts, a running G by its own thread, interrupted for the few
 * microseconds of the walk. Not from a signal handler: dump on a signal
 * from a thread that waits for it (sigwait, signalfd). Returns GORT_OK,
 * GORT_E_BAD_FD or GORT_E_SIGNAL_HANDLER. */
int gort_dump(int fd);

/* A static, human-readable description of a status code (never NULL;
 * "unknown gort status" for a value that is not one). */
const char *gort_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* GORT_H */
