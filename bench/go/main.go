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
//	  - skynet: the classic skynet program: each inner goroutine starts 10
//	    children that send their sums on a channel it receives from.
//	  - mutex: default GOMAXPROCS; 100 goroutines each lock one sync.Mutex
//	    K times, incrementing a counter; waited for with a sync.WaitGroup.
//	  - chan_pingpong: default GOMAXPROCS; two goroutines, two unbuffered
//	    channels; one sends and waits for the echo N times.
//	  - chan_mpmc: default GOMAXPROCS; 4 sending and 4 receiving goroutines
//	    on one channel buffering 128.
//	  - tcp_echo: the net package, a goroutine per accepted connection and
//	    per client; N connections, 100 exchanges of 64 bytes each.
//	  - blocking: GOMAXPROCS=1; goroutine B receives from a channel; the main
//	    goroutine A sends it time.Now(), then sleeps 20 ms in a raw
//	    syscall.Nanosleep (a plain system call, not time.Sleep), then
//	    receives B's delay on a second channel, N times.
//	  - blocking_read: the same, A's blocking call a raw syscall.Read of one
//	    byte from a pipe (syscall.Pipe: a blocking descriptor the netpoller
//	    never sees) that a time.AfterFunc callback fills 20 ms after A asked.
//	    Go has no thread outside its scheduler (short of cgo), so the writer
//	    is a goroutine; it runs after B.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const impl = "go"

func usage(why string) {
	fmt.Fprintf(os.Stderr, "go_bench: %s\nusage: go_bench <yield|spawn_join|parked|skynet|mutex|chan_pingpong|chan_mpmc|tcp_echo|blocking|blocking_read> <size> [reps]\n", why)
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
	case "skynet":
		skynetBench(n, reps)
	case "mutex":
		mutexBench(n, reps)
	case "chan_pingpong", "chan_mpmc":
		chanMain(os.Args[1], n, reps)
	case "tcp_echo":
		tcpEcho(n, reps)
	case "blocking", "blocking_read":
		blocking(os.Args[1], n, reps)
	default:
		usage(fmt.Sprintf("unknown workload %q", os.Args[1]))
	}
}

// skynet is one node of the tree: a leaf sends its number, an inner node
// starts 10 children on its own channel and sends their sum.
func skynet(out chan<- uint64, num, size uint64) {
	if size == 1 {
		out <- num
		return
	}
	sub := size / 10
	in := make(chan uint64, 10)
	for i := uint64(0); i < 10; i++ {
		go skynet(in, num+i*sub, sub)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-in
	}
	out <- sum
}

func skynetOnce(n int) (time.Duration, uint64) {
	t := time.Now()
	out := make(chan uint64, 1)
	go skynet(out, 0, uint64(n))
	sum := <-out
	return time.Since(t), sum
}

func skynetBench(n, reps int) {
	for m := n; m > 1; m /= 10 {
		if m%10 != 0 {
			usage(fmt.Sprintf("skynet needs a power of 10 leaves, not %d", n))
		}
	}
	units := 0
	for level := 1; level <= n; level *= 10 {
		units += level
	}
	skynetOnce(warmupN("skynet", n))
	for rep := 0; rep < reps; rep++ {
		d, sum := skynetOnce(n)
		if want := uint64(n) * uint64(n-1) / 2; sum != want {
			fmt.Fprintf(os.Stderr, "go_bench: skynet(%d) summed to %d, not %d\n", n, sum, want)
			os.Exit(1)
		}
		fmt.Printf("result workload=skynet impl=%s n=%d rep=%d ns_per_op=%.2f total_ms=%.2f units=%d procs=%d\n",
			impl, n, rep, nsPer(d, units), float64(d.Nanoseconds())/1e6, units, runtime.GOMAXPROCS(0))
	}
}

// mutexUnits is bench/src/lib.rs's MUTEX_UNITS.
const mutexUnits = 100

func mutexOnce(k int) time.Duration {
	var mu sync.Mutex
	var counter uint64
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(mutexUnits)
	for i := 0; i < mutexUnits; i++ {
		go func() {
			defer wg.Done()
			for j := 0; j < k; j++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	d := time.Since(t)
	if counter != uint64(mutexUnits*k) {
		panic("go_bench: lost update")
	}
	return d
}

func mutexBench(k, reps int) {
	mutexOnce(warmupN("mutex", k))
	for rep := 0; rep < reps; rep++ {
		d := mutexOnce(k)
		fmt.Printf("result workload=mutex impl=%s n=%d rep=%d ns_per_op=%.2f units=%d procs=%d\n",
			impl, k, rep, nsPer(d, mutexUnits*k), mutexUnits, runtime.GOMAXPROCS(0))
	}
}

// pingpongOnce: n round trips over two unbuffered channels.
func pingpongOnce(n int) time.Duration {
	ping := make(chan int)
	pong := make(chan int)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	t := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	d := time.Since(t)
	close(ping)
	<-done
	return d
}

// mpmcOnce: n values through one channel buffering 128, 4 senders and 4
// receivers.
func mpmcOnce(n int) time.Duration {
	const units = 4
	per := n / units
	c := make(chan int, 128)
	var senders, receivers sync.WaitGroup
	var sum int64
	t := time.Now()
	receivers.Add(units)
	for r := 0; r < units; r++ {
		go func() {
			defer receivers.Done()
			s := 0
			for v := range c {
				s += v
			}
			atomic.AddInt64(&sum, int64(s))
		}()
	}
	senders.Add(units)
	for s := 0; s < units; s++ {
		go func() {
			defer senders.Done()
			for i := 0; i < per; i++ {
				c <- i
			}
		}()
	}
	senders.Wait()
	close(c)
	receivers.Wait()
	return time.Since(t)
}

func chanMain(workload string, n, reps int) {
	once := pingpongOnce
	ops := n
	if workload == "chan_mpmc" {
		once = mpmcOnce
		ops = n / 4 * 4
	}
	once(warmupN(workload, n))
	for rep := 0; rep < reps; rep++ {
		d := once(n)
		fmt.Printf("result workload=%s impl=%s n=%d rep=%d ns_per_op=%.2f procs=%d\n",
			workload, impl, ops, rep, nsPer(d, ops), runtime.GOMAXPROCS(0))
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

// blockMs is how long A's blocking call lasts (harness::BLOCK).
const blockMs = 20

// blocker is A's plain blocking call: a raw nanosleep, or a raw read of the
// byte that prepare asked for.
type blocker struct {
	pipe [2]int // read end, write end; unused for "blocking"
	read bool
}

func newBlocker(workload string) *blocker {
	b := &blocker{read: workload == "blocking_read"}
	if b.read {
		if err := syscall.Pipe(b.pipe[:]); err != nil {
			panic(err)
		}
	}
	return b
}

// prepare, before A wakes B: the writer sends one byte blockMs from now.
func (b *blocker) prepare() {
	if b.read {
		w := b.pipe[1]
		time.AfterFunc(blockMs*time.Millisecond, func() {
			if n, err := syscall.Write(w, []byte{1}); n != 1 || err != nil {
				panic(fmt.Sprintf("pipe write: %d %v", n, err))
			}
		})
	}
}

func (b *blocker) block() {
	if !b.read {
		ts := syscall.NsecToTimespec(blockMs * int64(time.Millisecond))
		for {
			var left syscall.Timespec
			err := syscall.Nanosleep(&ts, &left)
			if err != syscall.EINTR {
				return
			}
			ts = left
		}
	}
	buf := []byte{0}
	for {
		n, err := syscall.Read(b.pipe[0], buf)
		if n == 1 {
			return
		}
		if err != syscall.EINTR {
			panic(fmt.Sprintf("pipe read: %d %v", n, err))
		}
	}
}

// blockingOnce runs n rounds of: A (the calling goroutine) wakes B, then
// blocks its thread in a raw system call; it returns B's delay per round.
func blockingOnce(b *blocker, n int) []time.Duration {
	wake := make(chan time.Time, 1)
	done := make(chan time.Duration, 1)
	go func() {
		for sent := range wake {
			done <- time.Since(sent)
		}
	}()
	delays := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		b.prepare()
		wake <- time.Now()
		b.block()
		delays = append(delays, <-done)
	}
	close(wake)
	return delays
}

func blocking(workload string, n, reps int) {
	runtime.GOMAXPROCS(1)
	b := newBlocker(workload)
	blockingOnce(b, warmupN(workload, n))
	for rep := 0; rep < reps; rep++ {
		delays := blockingOnce(b, n)
		ns := make([]int64, len(delays))
		all := make([]string, len(delays))
		for i, d := range delays {
			ns[i] = d.Nanoseconds()
			all[i] = strconv.FormatInt(ns[i], 10)
		}
		sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
		m := len(ns) / 2
		median := ns[m]
		if len(ns)%2 == 0 {
			median = (ns[m-1] + ns[m]) / 2
		}
		fmt.Printf("result workload=%s impl=%s n=%d rep=%d ns_per_op=%d min_ns=%d max_ns=%d block_ms=%d delays_ns=%s procs=%d\n",
			workload, impl, n, rep, median, ns[0], ns[len(ns)-1], blockMs,
			strings.Join(all, ","), runtime.GOMAXPROCS(0))
	}
}
