// Command loadgen opens WebSocket clients against a pushgate stack (the
// local one or a deployed wss:// URL), writes items over HTTP at a set
// rate and reports how long each write took to reach each client, which
// clients it missed, the connect rate and errors (see internal/testkit/loadgen).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/pushgate/pushgate/internal/testkit/loadgen"
)

func main() {
	var o loadgen.Options
	flag.StringVar(&o.WebSocketURL, "ws", "ws://127.0.0.1:3001/prod", "WebSocket stage URL")
	flag.StringVar(&o.APIURL, "api", "http://127.0.0.1:3000", "HTTP API base URL")
	flag.StringVar(&o.Token, "token", os.Getenv("PUSHGATE_TOKEN"), "token for the sockets (?token=) and writes (Bearer), joining and writing the run's rooms (default $PUSHGATE_TOKEN)")
	flag.IntVar(&o.Clients, "clients", 100, "sockets to open")
	flag.IntVar(&o.Rooms, "rooms", 1, "rooms to spread them over")
	flag.StringVar(&o.Prefix, "prefix", "loadgen", "room name prefix")
	flag.IntVar(&o.Writes, "writes", 10, "items to write")
	flag.Float64Var(&o.WriteRate, "rate", 5, "writes per second")
	flag.Float64Var(&o.ConnectRate, "connect-rate", 500, "connections opened per second")
	flag.IntVar(&o.Size, "size", 100, "item size in bytes")
	flag.DurationVar(&o.Wait, "wait", 0, "how long deliveries may come after the last write (default 10s)")
	flag.DurationVar(&o.Hold, "hold", 0, "keep the clients connected this long after the writes, then write once more to each room")
	jsonOut := flag.String("json", "", "write the JSON summary to this file (- for standard output)")
	plotOut := flag.String("plot", "", "draw a latency histogram to this .png or .svg file")
	flag.Parse()
	o.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := loadgen.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "connected %d/%d in %.2fs (%.0f/s, %d errors); writes %d (%d failed); delivered %d/%d (%d duplicates, %d socket errors)\n",
		sum.Connected, sum.Clients, sum.ConnectSeconds, sum.ConnectsPerSecond, sum.ConnectErrors,
		sum.Writes, sum.WriteErrors, sum.Delivered, sum.Expected, sum.Duplicates, sum.SocketErrors)
	fmt.Fprintf(os.Stderr, "latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", sum.Latency.P50, sum.Latency.P90, sum.Latency.P99, sum.Latency.Max)
	if *jsonOut != "" {
		out := os.Stdout
		if *jsonOut != "-" {
			if out, err = os.Create(*jsonOut); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				os.Exit(2)
			}
			defer out.Close()
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
	}
	if *plotOut != "" {
		title := fmt.Sprintf("%d clients, %d writes: p50 %.0f ms, p99 %.0f ms", sum.Connected, sum.Writes, sum.Latency.P50, sum.Latency.P99)
		if err := loadgen.Plot(sum, title, *plotOut); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
	}
	if !sum.Complete() {
		os.Exit(1)
	}
}
