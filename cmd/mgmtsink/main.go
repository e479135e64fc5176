// Command mgmtsink serves a stand-in API Gateway Management API for
// benchmarks: set latency, a token-bucket throttle answering 429, gone
// connections, failures, and counts at GET /_sink/stats (see
// internal/testkit/sink). With -tls it serves HTTPS with a self-signed
// certificate made at start.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/pushgate/pushgate/internal/testkit/sink"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (port 0: any free one, printed)")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate")
	var o sink.Options
	flag.DurationVar(&o.Latency, "latency", 0, "how long each call takes")
	flag.Float64Var(&o.Rate, "rate", 0, "posts per second taken; past it 429 LimitExceededException (0: any)")
	flag.IntVar(&o.Burst, "burst", 100, "token bucket size for -rate")
	flag.IntVar(&o.GoneEvery, "gone-every", 0, "one connection in this many answers 410 GoneException")
	flag.Float64Var(&o.FailRate, "fail-rate", 0, "share of calls answered 500")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err == nil && *useTLS {
		ln, err = sink.TLSListener(ln)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mgmtsink:", err)
		os.Exit(2)
	}
	scheme := "http"
	if *useTLS {
		scheme = "https"
	}
	fmt.Printf("mgmtsink listening on %s://%s (stats: %s)\n", scheme, ln.Addr(), sink.StatsPath)
	if err := http.Serve(ln, sink.New(o)); err != nil {
		fmt.Fprintln(os.Stderr, "mgmtsink:", err)
		os.Exit(1)
	}
}
