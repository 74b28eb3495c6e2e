// Go's side of gort's scheduler benchmarks: the same workloads and the same
// output protocol as the Rust binaries (see bench/src/lib.rs).
//
//		go_bench <yield|spawn_join|parked|tcp_echo> <size> [reps]
//
//	  - yield: GOMAXPROCS=1; the main goroutine starts two goroutines that
//	    each call runtime.Gosched N times, then waits for both.
//	  - spawn_join: default GOMAXPROCS; the main goroutine starts N goroutines,
//	    then waits for them with one sync.WaitGroup (Go's idiom for joining a
//	    burst; Go has no join handle).
//	  - parked: N goroutines each receive from one channel; close opens it.
//	  - tcp_echo: the net package, a goroutine per accepted connection and
//	    per client; N connections, 100 exchanges of 64 bytes each.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const impl = "go"

func usage(why string) {
	fmt.Fprintf(os.Stderr, "go_bench: %s\nusage: go_bench <yield|spawn_join|parked|tcp_echo> <size> [reps]\n", why)
	os.Exit(2)
}

func parseCount(s string) int {
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil || n <= 0 {
		usage(fmt.Sprintf("bad count %q", s))
	}
	return n
}

// warmupN is the size of the warm-up run, as in bench/src/lib.rs: a full
// burst for spawn_join, a tenth for yield.
func warmupN(workload string, n int) int {
	if workload == "spawn_join" {
		return n
	}
	if n/10 < 1 {
		return 1
	}
	return n / 10
}

// rssKiB is VmRSS from /proc/self/status.
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "VmRSS:") {
			v := strings.TrimPrefix(line, "VmRSS:")
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				panic(err)
			}
			return n
		}
	}
	panic("no VmRSS")
}

func nsPer(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

func yieldOnce(n int) time.Duration {
	var wg sync.WaitGroup
	body := func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
	}
	t := time.Now()
	wg.Add(2)
	go body()
	go body()
	wg.Wait()
	return time.Since(t)
}

func spawnJoinOnce(n int) time.Duration {
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return time.Since(t)
}

func parked(n int) {
	gate := make(chan struct{})
	var arrived int64
	var wg sync.WaitGroup
	wg.Add(n)
	before := rssKiB()
	t := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			atomic.AddInt64(&arrived, 1)
			<-gate
		}()
	}
	for atomic.LoadInt64(&arrived) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	create := time.Since(t)
	time.Sleep(10 * time.Millisecond)
	after := rssKiB()
	t = time.Now()
	close(gate)
	wg.Wait()
	release := time.Since(t)
	delta := after - before
	if delta < 0 {
		delta = 0
	}
	fmt.Printf("result workload=parked impl=%s n=%d rep=0 ns_per_op=%.2f create_ms=%.2f release_ms=%.2f rss_before_kib=%d rss_parked_kib=%d rss_kib_per_unit=%.3f procs=%d\n",
		impl, n, nsPer(create, n), create.Seconds()*1e3, release.Seconds()*1e3, before, after,
		float64(delta)/float64(n), runtime.GOMAXPROCS(0))
}

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		usage("wrong number of arguments")
	}
	n := parseCount(os.Args[2])
	reps := 5
	if len(os.Args) == 4 {
		reps = parseCount(os.Args[3])
	}
	switch os.Args[1] {
	case "yield":
		runtime.GOMAXPROCS(1)
		yieldOnce(warmupN("yield", n))
		for rep := 0; rep < reps; rep++ {
			d := yieldOnce(n)
			fmt.Printf("result workload=yield impl=%s n=%d rep=%d ns_per_op=%.2f procs=%d\n",
				impl, n, rep, nsPer(d, 2*n), runtime.GOMAXPROCS(0))
		}
	case "spawn_join":
		spawnJoinOnce(warmupN("spawn_join", n))
		for rep := 0; rep < reps; rep++ {
			d := spawnJoinOnce(n)
			fmt.Printf("result workload=spawn_join impl=%s n=%d rep=%d ns_per_op=%.2f procs=%d\n",
				impl, n, rep, nsPer(d, n), runtime.GOMAXPROCS(0))
		}
	case "parked":
		parked(n)
	case "tcp_echo":
		tcpEcho(n, reps)
	default:
		usage(fmt.Sprintf("unknown workload %q", os.Args[1]))
	}
}

const echoRequests = 100
const echoBytes = 64

func echoServer(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			buf := make([]byte, echoBytes)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}(c)
	}
}

func tcpEchoOnce(addr string, conns int) time.Duration {
	t := time.Now()
	var wg sync.WaitGroup
	wg.Add(conns)
	for i := 0; i < conns; i++ {
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			msg := make([]byte, echoBytes)
			buf := make([]byte, echoBytes)
			for r := 0; r < echoRequests; r++ {
				if _, err := c.Write(msg); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t)
}

func tcpEcho(n, reps int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go echoServer(l)
	addr := l.Addr().String()
	tcpEchoOnce(addr, warmupN("tcp_echo", n))
	for rep := 0; rep < reps; rep++ {
		d := tcpEchoOnce(addr, n)
		total := n * echoRequests
		fmt.Printf("result workload=tcp_echo impl=%s n=%d rep=%d ns_per_op=%.2f rps=%.2f procs=%d\n",
			impl, n, rep, nsPer(d, total), float64(total)/d.Seconds(), runtime.GOMAXPROCS(0))
	}
}
