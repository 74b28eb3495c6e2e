// The Go peer of bench/src/bin/crash_bench.rs's child: the same crash
// workload under GOTRACEBACK=crash, measured by the same parent
// (`crash_bench measure ... -- go_crash <busy> <extra> <parked>`).
//
// <busy> spinning goroutines (run with GOMAXPROCS=<busy>), <parked>
// goroutines asleep, and <extra> C threads that called into Go once and
// exited (cgo gives each an extra M and, in Go 1.19, puts it back on the
// extra-M list when the callback returns: the seed commit's set-up). Then
// one goroutine writes crash_at_ns=<CLOCK_MONOTONIC> to stdout and sends
// SIGSEGV to the process (kill, SI_USER). A signal sent by a user takes
// sighandler's fatal path, where GOTRACEBACK=crash relays SIGQUIT from M to
// M (a hardware fault in Go code becomes a panic instead, one in C code or
// a tgkill'd one a throw, and a throw aborts without relaying).
package main

/*
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

extern void goCalledIn(void);

static void *call_in(void *arg) {
	(void)arg;
	goCalledIn();
	return NULL;
}

// n C threads, all alive at once, each calls into Go once and exits.
static int c_threads_call_in(int n) {
	pthread_t t[256];
	if (n > 256)
		n = 256;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, call_in, NULL) != 0)
			return -1;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Records the time on stdout.
static void print_crash_at(void) {
	printf("crash_at_ns=%llu\n", (unsigned long long)now_ns());
	fflush(stdout);
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var calledIn sync.WaitGroup

//export goCalledIn
func goCalledIn() {
	calledIn.Done()
	calledIn.Wait() // all C threads hold an M at once
}

var stop, started, waiting int32

//go:noinline
func busy() {
	atomic.AddInt32(&started, 1)
	for atomic.LoadInt32(&stop) == 0 {
	}
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go_crash <busy> <extra> <parked>")
		os.Exit(2)
	}
	nBusy, _ := strconv.Atoi(os.Args[1])
	nExtra, _ := strconv.Atoi(os.Args[2])
	nParked, _ := strconv.Atoi(os.Args[3])

	calledIn.Add(nExtra)
	if C.c_threads_call_in(C.int(nExtra)) != 0 {
		fmt.Fprintln(os.Stderr, "go_crash: pthread_create failed")
		os.Exit(2)
	}
	for i := 0; i < nParked; i++ {
		go func() {
			atomic.AddInt32(&waiting, 1)
			time.Sleep(time.Hour)
		}()
	}
	for i := 0; i < nBusy-1; i++ {
		go busy()
	}
	for atomic.LoadInt32(&started) < int32(nBusy-1) || atomic.LoadInt32(&waiting) < int32(nParked) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let the parked ones reach their sleep
	fmt.Fprintf(os.Stderr, "go_crash: goroutines=%d\n", runtime.NumGoroutine())
	done := make(chan struct{})
	go func() {
		C.print_crash_at()
		syscall.Kill(syscall.Getpid(), syscall.SIGSEGV)
		time.Sleep(time.Second)
		close(done)
	}()
	<-done
	fmt.Fprintln(os.Stderr, "go_crash: the fault did not end the process")
	os.Exit(3)
}
