/*
 * gort.h — calling the gort runtime from C.
 *
 * A C thread (one gort did not create) calls gort_callback(fn, arg): fn runs
 * as a G (a gort green thread) that may spawn Gs, join, sleep and block on
 * anything the runtime offers; the C thread waits until fn returns. The
 * first call on a thread binds an "extra M" from a pool to it (needm); the
 * thread keeps it across calls and gives it back when it exits, or at once
 * with gort_dropm(). The runtime starts on first use.
 *
 * Every function returns GORT_OK or a negative status; none blocks forever
 * or has undefined behaviour on misuse. gort_strerror() describes a status.
 *
 * Link with the runtime's static library: -lruntime -lpthread -ldl -lm.
 */
#ifndef GORT_H
#define GORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    GORT_OK = 0,
    /* fn was NULL. */
    GORT_E_NULL_FN = -1,
    /* gort_dropm: this thread has no M. */
    GORT_E_NO_M = -2,
    /* gort_dropm: this is a runtime thread, not a foreign one. */
    GORT_E_NOT_FOREIGN = -3,
    /* gort_dropm called from inside a callback. */
    GORT_E_IN_CALLBACK = -4,
    /* The process is exiting; the callback did not run. */
    GORT_E_EXITING = -5,
    /* No memory for an extra M's stack. */
    GORT_E_NO_MEMORY = -6,
    /* gort_needm: this thread already has an M. */
    GORT_E_ALREADY_BOUND = -7,
    /* Called from the scheduler's own context (not from a G or a foreign thread). */
    GORT_E_BAD_CONTEXT = -8,
};

/* Runs fn(arg) as a G on the calling thread and returns when it has
 * returned. Works on foreign threads (binding an M on first use) and on
 * gort's own Gs (a G that called C which calls back: runs inline). */
int gort_callback(void (*fn)(void *arg), void *arg);

/* Binds an extra M to the calling thread ahead of the first callback. */
int gort_needm(void);

/* Gives the calling thread's extra M back to the pool now (otherwise it
 * goes back when the thread exits). */
int gort_dropm(void);

/* Inside a callback: parks the G for at least ns nanoseconds. On a plain
 * thread: sleeps the thread. */
void gort_sleep_ns(uint64_t ns);

/* Inside a callback: lets other Gs run. */
void gort_yield(void);

/* Starts a G running fn(arg); returns its id (> 0) or a negative status. */
int64_t gort_go(void (*fn)(void *arg), void *arg);

/* A static, human-readable description of a status code. */
const char *gort_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* GORT_H */
