// bench/peers/go - the five core benchmarks written as a Go programmer
// would: goroutines and channels (an actor = a goroutine reading its own
// channel).
//
//	go build -o core_bench . && GOMAXPROCS=2 ./core_bench -bench=NAME [flags]
//
// NAME is spawn_idle, pingpong, fanin, ring or skynet; sizes as in Troupe's
// benchmarks. Prints "RESULT go.<bench>.<figure> <value> <unit>" and exits
// with status 1 if the run's own check fails. Standard library only.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	bench   = flag.String("bench", "", "spawn_idle|pingpong|fanin|ring|skynet")
	actors  = flag.Int("actors", 0, "spawn_idle: 1000000, ring: 503")
	trips   = flag.Int("trips", 1000000, "pingpong round trips")
	senders = flag.Int("senders", 8, "fanin senders")
	msgs    = flag.Int("msgs", 1000000, "fanin messages per sender")
	chunk   = flag.Int("chunk", 1000, "fanin messages per credit")
	window  = flag.Int("window", 4, "fanin chunks in flight per sender (0: unbounded)")
	hops    = flag.Int("hops", 10000000, "ring hops")
	leaves  = flag.Int("leaves", 1000000, "skynet leaves")
)

func result(name string, value float64, unit string) {
	fmt.Printf("RESULT go.%s %.6g %s\n", name, value, unit)
}

func check(what string, got, want int64) bool {
	if got == want {
		return true
	}
	fmt.Printf("CHECK FAILED go.%s: got %d, want %d\n", what, got, want)
	return false
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

// spawnIdle: a million goroutines, each blocked on its own channel.
func spawnIdle(n int) bool {
	var wg sync.WaitGroup
	chans := make([]chan struct{}, n)
	runtime.GC()
	rss0 := rss()
	wg.Add(n)
	t0 := time.Now()
	for i := range chans {
		c := make(chan struct{})
		chans[i] = c
		go func() {
			wg.Done()
			<-c
		}()
	}
	elapsed := time.Since(t0)
	wg.Wait() // every goroutine has run and is blocked: quiescence
	rss1 := rss()
	result("spawn_idle.bytes_per_actor", float64(rss1-rss0)/float64(n), "B")
	result("spawn_idle.ns_per_spawn", float64(elapsed.Nanoseconds())/float64(n), "ns")
	result("spawn_idle.rss_mb", float64(rss1)/1048576, "MB")
	return check("spawn_idle.live_actors", int64(runtime.NumGoroutine()-1), int64(n))
}

// pingpong: one message in flight between two goroutines.
func pingpong(n int) bool {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := range ping {
			pong <- i
		}
	}()
	errors := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if <-pong != i {
			errors++
		}
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	close(ping)
	result("pingpong.ns_one_way", ns/2, "ns")
	result("pingpong.ns_round_trip", ns, "ns")
	return check("pingpong.order_errors", int64(errors), 0)
}

type item struct{ sender, seq uint32 }

// fanin: s senders x m messages into one buffered channel, whose capacity
// plays the credit window of the Troupe and Erlang versions (w = 0: room
// for everything, i.e. no flow control).
func fanin(s, m, ch, w int) bool {
	capacity := s * w * ch
	if w == 0 {
		capacity = s * m
	}
	c := make(chan item, capacity)
	t0 := time.Now()
	for id := 0; id < s; id++ {
		go func(id uint32) {
			for i := 0; i < m; i++ {
				c <- item{id, uint32(i)}
			}
		}(uint32(id))
	}
	next := make([]uint32, s)
	var total, errors int64
	for total < int64(s*m) {
		it := <-c
		if it.seq != next[it.sender] {
			errors++
		}
		next[it.sender]++
		total++
	}
	elapsed := time.Since(t0)
	result("fanin.msgs_per_s", float64(total)*1e9/float64(elapsed.Nanoseconds()), "msg/s")
	result("fanin.rss_mb", float64(rss())/1048576, "MB")
	return check("fanin.order_errors", errors, 0)
}

// ring: a token passed around n goroutines, each reading its own channel.
func ring(n, h int) bool {
	done := make(chan int)
	chans := make([]chan int, n)
	for i := range chans {
		chans[i] = make(chan int)
	}
	for i := 0; i < n; i++ {
		go func(id int, in, out chan int) {
			for t := range in {
				if t == 0 {
					done <- id
					continue
				}
				out <- t - 1
			}
		}(i, chans[i], chans[(i+1)%n])
	}
	t0 := time.Now()
	chans[0] <- h
	last := <-done
	elapsed := time.Since(t0)
	result("ring.ns_per_hop", float64(elapsed.Nanoseconds())/float64(h), "ns")
	return check("ring.last_member", int64(last), int64(h%n))
}

func skynetNode(c chan int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64)
	d := size / 10
	for i := int64(0); i < 10; i++ {
		go skynetNode(rc, num+i*d, d)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

// skynet: a 10-ary tree of goroutines summing 0 .. leaves-1.
func skynet(l int64) bool {
	c := make(chan int64)
	t0 := time.Now()
	go skynetNode(c, 0, l)
	sum := <-c
	result("skynet.ms", float64(time.Since(t0).Nanoseconds())/1e6, "ms")
	return check("skynet.sum", sum, l*(l-1)/2)
}

func main() {
	flag.Parse()
	ok := false
	switch *bench {
	case "spawn_idle":
		if *actors == 0 {
			*actors = 1000000
		}
		ok = spawnIdle(*actors)
	case "pingpong":
		ok = pingpong(*trips)
	case "fanin":
		ok = fanin(*senders, *msgs, *chunk, *window)
	case "ring":
		if *actors == 0 {
			*actors = 503
		}
		ok = ring(*actors, *hops)
	case "skynet":
		ok = skynet(int64(*leaves))
	default:
		fmt.Fprintln(os.Stderr, "unknown -bench; see -h")
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}
