/* Calling gort from C threads: the example of docs/foreign-threads.md.
 *
 * Four C threads each call back into gort three times. Each callback runs
 * as a G: it starts two more Gs and sleeps 1 ms (the C thread waits; the
 * runtime's threads keep running other Gs). Built by the tests as
 * c_example_main(); with -DGORT_EXAMPLE_MAIN it is a program of its own,
 * linked against the runtime's static library (ci/test.sh does both). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

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
    printf("misuse: gort_callback(NULL) -> %s\n", gort_strerror(gort_callback(NULL, NULL)));
    return failed || atomic_load(&callbacks) != 12 || atomic_load(&gs) != 24;
}

#ifdef GORT_EXAMPLE_MAIN
int main(void) { return c_example_main(); }
#endif
