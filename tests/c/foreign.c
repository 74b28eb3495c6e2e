#define _GNU_SOURCE
/* C fixtures for gort's foreign-thread tests: threads the runtime did not
 * create, calling back into it through gort.h. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "gort.h"

typedef void (*cb_t)(void *);

struct job {
    int ncalls;
    cb_t cb;
    void *arg;
    int status; /* first non-OK status, or 0 */
    int dropm_status;
};

static void *call_n(void *p) {
    struct job *j = p;
    for (int i = 0; i < j->ncalls; i++) {
        int st = gort_callback(j->cb, j->arg);
        if (st != GORT_OK && j->status == 0)
            j->status = st;
    }
    return NULL;
}

/* nthreads threads, each calling cb(arg) ncalls times. Returns the first
 * failure status, or 0. */
int c_run_threads(int nthreads, int ncalls, cb_t cb, void *arg) {
    pthread_t *t = calloc((size_t)nthreads, sizeof *t);
    struct job *jobs = calloc((size_t)nthreads, sizeof *jobs);
    int result = 0;
    for (int i = 0; i < nthreads; i++) {
        jobs[i] = (struct job){ncalls, cb, arg, 0, 0};
        if (pthread_create(&t[i], NULL, call_n, &jobs[i]) != 0)
            return -1000;
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].status != 0 && result == 0)
            result = jobs[i].status;
    }
    free(t);
    free(jobs);
    return result;
}

/* n short-lived threads, `batch` at a time, each calling once and exiting
 * without gort_dropm (the thread-exit destructor returns the M). */
int c_short_lived_threads(int n, int batch, cb_t cb, void *arg) {
    int done = 0, result = 0;
    pthread_t t[64];
    struct job jobs[64];
    if (batch > 64)
        batch = 64;
    while (done < n) {
        int k = n - done < batch ? n - done : batch;
        for (int i = 0; i < k; i++) {
            jobs[i] = (struct job){1, cb, arg, 0, 0};
            if (pthread_create(&t[i], NULL, call_n, &jobs[i]) != 0)
                return -1000;
        }
        for (int i = 0; i < k; i++) {
            pthread_join(t[i], NULL);
            if (jobs[i].status != 0 && result == 0)
                result = jobs[i].status;
        }
        done += k;
    }
    return result;
}

/* Calls back now, on the calling thread (used from inside a G: runtime ->
 * C -> runtime). */
int c_call_back_now(cb_t cb, void *arg) { return gort_callback(cb, arg); }

struct misuse {
    int null_fn, dropm_fresh, needm_first, needm_again, dropm_bound, dropm_again;
};

static void *misuse_thread(void *p) {
    struct misuse *r = p;
    r->null_fn = gort_callback(NULL, NULL);
    r->dropm_fresh = gort_dropm();
    r->needm_first = gort_needm();
    r->needm_again = gort_needm();
    r->dropm_bound = gort_dropm();
    r->dropm_again = gort_dropm();
    return NULL;
}

/* Runs every misuse path on a fresh C thread; fills `out` (6 ints). */
void c_misuse(int *out) {
    struct misuse r;
    pthread_t t;
    pthread_create(&t, NULL, misuse_thread, &r);
    pthread_join(t, NULL);
    out[0] = r.null_fn;
    out[1] = r.dropm_fresh;
    out[2] = r.needm_first;
    out[3] = r.needm_again;
    out[4] = r.dropm_bound;
    out[5] = r.dropm_again;
}

struct explicit_job {
    cb_t cb;
    void *arg;
    int first, second, drop;
};

static void *explicit_thread(void *p) {
    struct explicit_job *j = p;
    j->first = gort_callback(j->cb, j->arg);
    j->second = gort_callback(j->cb, j->arg);
    j->drop = gort_dropm();
    return NULL;
}

/* One C thread: two callbacks, then an explicit gort_dropm. out: 3 ints. */
void c_two_calls_then_dropm(cb_t cb, void *arg, int *out) {
    struct explicit_job j = {cb, arg, 0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, explicit_thread, &j);
    pthread_join(t, NULL);
    out[0] = j.first;
    out[1] = j.second;
    out[2] = j.drop;
}

static void noop(void *arg) { (void)arg; }

static void exit_probe(void) {
    int st = gort_callback(noop, NULL);
    printf("callback_during_exit=%d\n", st);
    fflush(stdout);
}

/* Registers an atexit handler that calls back while the process exits.
 * Must run before the runtime starts so that it runs after the runtime's
 * own exit hook. */
void c_register_exit_probe(void) { atexit(exit_probe); }

/* An empty C function, for the cost of runtime::syscall around a C call. */
void c_empty(void) {}

/* Blocks the calling thread for `ms` milliseconds in the kernel. */
void c_block_ms(int ms) { usleep((useconds_t)ms * 1000); }

long c_gettid(void) { return (long)syscall(SYS_gettid); }

/* A SIGUSR1 handler (SA_ONSTACK, as gort requires on its threads) that
 * calls `target`. On i386 it realigns the stack first: qemu-i386 enters
 * handlers with esp 16-aligned instead of the ABI's 12 mod 16, and the Rust
 * code it calls keeps SSE values on the stack. */
#if defined(__i386__)
#define REALIGN_STACK __attribute__((force_align_arg_pointer))
#else
#define REALIGN_STACK
#endif

static void (*usr1_target)(int);

static REALIGN_STACK void usr1_handler(int sig, siginfo_t *info, void *uc) {
    (void)info;
    (void)uc;
    usr1_target(sig);
}

int c_install_usr1(void (*target)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    usr1_target = target;
    sa.sa_sigaction = usr1_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGUSR1, &sa, NULL);
}
