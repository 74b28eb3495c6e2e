/* Calling gort from C threads: the example of docs/foreign-threads.md.
 *
 * Four C threads each call back into gort three times. Each callback runs
 * as a G: it starts two more Gs and sleeps 1 ms (the C thread waits; the
 * runtime's threads keep running other Gs). Then main starts four Gs it
 * joins, each making a blocking call through gort_syscall and returning a
 * result. Built by the tests as c_example_main(); with -DGORT_EXAMPLE_MAIN
 * it is a program of its own, which ci/test.sh links through pkg-config
 * against libgort.a and libgort.so. */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "gort.h"

static atomic_int callbacks, gs;

static void child(void *arg) {
    (void)arg;
    atomic_fetch_add(&gs, 1);
}

static void on_event(void *arg) {
    (void)arg;
    gort_go(child, NULL);
    gort_go(child, NULL);
    gort_sleep_ns(1000 * 1000);
    atomic_fetch_add(&callbacks, 1);
}

/* A blocking call: other Gs run on this G's P meanwhile. */
static void block_1ms(void *arg) {
    (void)arg;
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* A G started with gort_spawn: its return value is what gort_join reports. */
static int square(void *arg) {
    int n = (int)(intptr_t)arg;
    if (gort_syscall(block_1ms, NULL) != GORT_OK)
        return -1;
    return n * n;
}

static void *c_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) {
        int st = gort_callback(on_event, NULL);
        if (st != GORT_OK) {
            fprintf(stderr, "gort_callback: %s\n", gort_strerror(st));
            return (void *)1;
        }
    }
    return NULL;
}

int c_example_main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, c_thread, NULL);
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed |= r != NULL;
    }
    /* Gs started by gort_go may still be finishing. */
    for (int i = 0; i < 1000 && atomic_load(&gs) < 24; i++)
        gort_sleep_ns(1000 * 1000);
    printf("c example: %d callbacks from 4 C threads, %d Gs started from C\n", atomic_load(&callbacks),
           atomic_load(&gs));
    int64_t h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = gort_spawn(square, (void *)(intptr_t)(i + 1));
        if (h[i] < 0) {
            fprintf(stderr, "gort_spawn: %s\n", gort_strerror((int)h[i]));
            return 1;
        }
    }
    int sum = 0;
    for (int i = 0; i < 4; i++) {
        int r, st = gort_join(h[i], &r);
        if (st != GORT_OK) {
            fprintf(stderr, "gort_join: %s\n", gort_strerror(st));
            return 1;
        }
        sum += r;
    }
    printf("c example: joined 4 Gs spawned from C, results summing to %d\n", sum);
    printf("misuse: gort_callback(NULL) -> %s\n", gort_strerror(gort_callback(NULL, NULL)));
    printf("misuse: gort_join twice -> %s\n", gort_strerror(gort_join(h[0], NULL)));
    return failed || atomic_load(&callbacks) != 12 || atomic_load(&gs) != 24 || sum != 30;
}

#ifdef GORT_EXAMPLE_MAIN
int main(void) { return c_example_main(); }
#endif
