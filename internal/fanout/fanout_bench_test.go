package fanout

import (
	"context"
	"fmt"
	"testing"
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
				res, err := f.Deliver(context.Background(), frame, pages, "")
				if err != nil || res.Delivered != n {
					b.Fatalf("%+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*n), "cpu-ns/recipient")
		})
	}
}
