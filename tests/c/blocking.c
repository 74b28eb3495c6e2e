#define _GNU_SOURCE
/* C fixture for gort's blocking-code tests: many threads the runtime did not
 * create, each calling back once, with small stacks so that a thousand of them
 * fit in a 32-bit address space (glibc's default is 8 MiB each). */
#include <pthread.h>
#include <stdlib.h>

#include "gort.h"

typedef void (*cb_t)(void *);

/* Holds every thread until all were created, so that a callback that waits
 * for all the others (a barrier) never waits for a thread that could not be
 * made: on a creation failure the threads leave without calling back. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;  /* 0: wait, 1: call back, -1: leave */
};

struct once_job {
    struct gate *gate;
    cb_t cb;
    void *arg;
    int status;
};

static void *call_once(void *p) {
    struct once_job *j = p;
    pthread_mutex_lock(&j->gate->mu);
    while (j->gate->open == 0)
        pthread_cond_wait(&j->gate->cv, &j->gate->mu);
    int go = j->gate->open > 0;
    pthread_mutex_unlock(&j->gate->mu);
    if (go)
        j->status = gort_callback(j->cb, j->arg);
    return NULL;
}

static void open_gate(struct gate *g, int how) {
    pthread_mutex_lock(&g->mu);
    g->open = how;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* n threads with `stack_kib` KiB stacks, each calling cb(arg) once through
 * gort_callback, all released together once every thread exists. Returns 0,
 * the first callback's failure status, or -1000 - the pthread_create error
 * when a thread cannot be created (then none calls back). */
int c_callback_threads(int n, int stack_kib, cb_t cb, void *arg) {
    struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t *t = calloc((size_t)n, sizeof *t);
    struct once_job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_attr_t attr;
    int result = 0, started = 0;
    if (t == NULL || jobs == NULL) {
        free(t);
        free(jobs);
        return -999;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)stack_kib * 1024);
    for (; started < n; started++) {
        jobs[started] = (struct once_job){&gate, cb, arg, 0};
        int rc = pthread_create(&t[started], &attr, call_once, &jobs[started]);
        if (rc != 0) {
            result = -1000 - rc;
            break;
        }
    }
    pthread_attr_destroy(&attr);
    open_gate(&gate, result == 0 ? 1 : -1);
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].status != 0 && result == 0)
            result = jobs[i].status;
    }
    free(t);
    free(jobs);
    return result;
}
