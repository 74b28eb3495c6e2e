// Foreign-thread callbacks and C calls in Go (cgo), the peer of
// bench/src/bin/ffi_bench.rs: the same three workloads, printed as
// `result workload=... impl=go-cgo ns_per_op=...` lines.
package main

/*
#include <pthread.h>
#include <stdint.h>
#include <time.h>

extern void goCallback(void);

static void empty(void) {}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// One C thread: a warm-up callback, then n timed ones; returns ns per call.
static void *loop_thread(void *arg) {
	long n = (long)arg;
	goCallback();
	uint64_t t = now_ns();
	for (long i = 0; i < n; i++)
		goCallback();
	return (void *)(uintptr_t)((now_ns() - t) / (uint64_t)n);
}

static long callbacks_on_one_thread(long n) {
	pthread_t t;
	void *r;
	pthread_create(&t, 0, loop_thread, (void *)n);
	pthread_join(t, &r);
	return (long)(uintptr_t)r;
}

// A new C thread's first callback; returns its ns.
static void *first_thread(void *arg) {
	(void)arg;
	uint64_t t = now_ns();
	goCallback();
	return (void *)(uintptr_t)(now_ns() - t);
}

static long first_callback(void) {
	pthread_t t;
	void *r;
	pthread_create(&t, 0, first_thread, 0);
	pthread_join(t, &r);
	return (long)(uintptr_t)r;
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"
)

//export goCallback
func goCallback() {}

func main() {
	reps := 5
	if len(os.Args) > 1 {
		reps, _ = strconv.Atoi(os.Args[1])
	}
	runtime.GOMAXPROCS(runtime.NumCPU())
	for r := 0; r < reps; r++ {
		fmt.Printf("result workload=callback impl=go-cgo ns_per_op=%d\n", int64(C.callbacks_on_one_thread(100000)))
	}
	for r := 0; r < reps; r++ {
		v := make([]int64, 100)
		for i := range v {
			v[i] = int64(C.first_callback())
		}
		sort.Slice(v, func(a, b int) bool { return v[a] < v[b] })
		fmt.Printf("result workload=first_callback impl=go-cgo ns_per_op=%d\n", v[len(v)/2])
	}
	for r := 0; r < reps; r++ {
		n := 2000000
		t := time.Now()
		for i := 0; i < n; i++ {
			C.empty()
		}
		fmt.Printf("result workload=c_call impl=go-cgo ns_per_op=%.1f\n", float64(time.Since(t).Nanoseconds())/float64(n))
	}
	fmt.Printf("info go=%s\n", runtime.Version())
}
