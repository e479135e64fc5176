package fanout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testkit/sink"
)

type nopPoster struct{}

func (nopPoster) Post(context.Context, string, []byte) error { return nil }

type nopPruner struct{}

func (nopPruner) Delete(context.Context, string) error { return nil }

// BenchmarkDeliver measures the fan-out's own cost per recipient (listing
// pages, dedupe, the window, worker hand-off), with posts that cost
// nothing: the ceiling the core puts on a broadcast before the network
// does. cpu-ns/recipient is the process's CPU time (all cores) per
// recipient.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("conn-%012d=", i)
		}
		pages := func(yield func([]string, error) bool) {
			for i := 0; i < n; i += 1000 {
				if !yield(ids[i:min(i+1000, n)], nil) {
					return
				}
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f := New(nopPoster{}, nopPruner{}, Options{})
			frame := []byte(`{"action":"event"}`)
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				res, err := f.Deliver(context.Background(), Delivery{Frame: frame, Recipients: pages})
				if err != nil || res.Delivered != n {
					b.Fatalf("%+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*n), "cpu-ns/recipient")
		})
	}
}

// BenchmarkDeliverPaced delivers to 10,000 recipients through a sink that
// takes each post a while and may throttle: the window's pace. It reports
// the delivery's seconds, the share delivered, the posts throttled and the
// most in flight.
//
//	go test -run '^$' -bench DeliverPaced -benchtime 1x ./internal/fanout/
func BenchmarkDeliverPaced(b *testing.B) {
	const n = 10_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("conn-%012d=", i)
	}
	pages := func(yield func([]string, error) bool) {
		for i := 0; i < n; i += 1000 {
			if !yield(ids[i:i+1000], nil) {
				return
			}
		}
	}
	for _, tc := range []struct {
		name string
		opt  sink.Options
	}{
		{"20ms", sink.Options{Latency: 20 * time.Millisecond}},
		{"50ms", sink.Options{Latency: 50 * time.Millisecond}},
		{"20ms,2000/s", sink.Options{Latency: 20 * time.Millisecond, Rate: 2000, Burst: 100}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				s := sink.New(tc.opt)
				f := New(s, nopPruner{}, Options{})
				start := time.Now()
				res, err := f.Deliver(context.Background(), Delivery{Frame: []byte(`{"action":"event"}`), Recipients: pages})
				if err != nil {
					b.Fatal(err)
				}
				st := s.Stats()
				b.ReportMetric(time.Since(start).Seconds(), "s/delivery")
				b.ReportMetric(100*float64(res.Delivered)/n, "%delivered")
				b.ReportMetric(float64(st.Throttled), "throttled")
				b.ReportMetric(float64(st.MaxInFlight), "max-in-flight")
			}
		})
	}
}
