#define _GNU_SOURCE
/* C fixture for gort's crash relay tests: plain C threads that never call
 * into gort and sit idle in pause(). A signal handler running on one of
 * them makes pause() return, and the thread says so on stderr, so a test
 * can prove that neither the SIGQUIT nor the crash relay reached them. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

static atomic_int started;
static long tids[64];

static void *idle_thread(void *p) {
    long i = (long)p;
    tids[i] = (long)syscall(SYS_gettid);
    atomic_fetch_add(&started, 1);
    for (;;) {
        pause();
        /* Only a handler that ran on this thread gets here. */
        static const char msg[] = "c_thread_interrupted\n";
        (void)!write(2, msg, sizeof msg - 1);
    }
    return NULL;
}

/* Starts n (at most 64) idle C threads with the caller's signal mask and
 * fills out[0..n) with their kernel thread ids once all run. Returns 0, or
 * -1 if a thread could not be created. */
int c_start_idle_threads(int n, long *out) {
    if (n > 64)
        n = 64;
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle_thread, (void *)i) != 0)
            return -1;
        pthread_detach(t);
    }
    while (atomic_load(&started) < n)
        usleep(1000);
    memcpy(out, tids, (size_t)n * sizeof *out);
    return 0;
}
