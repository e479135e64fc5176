package snslocal_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/snspub"
)

// TestDirectDeliversWithBoundedConcurrency: however many events are
// published at once, at most Workers deliveries run together, and Close
// delivers every queued one.
func TestDirectDeliversWithBoundedConcurrency(t *testing.T) {
	const published = 3 * snslocal.Workers
	var running, peak, delivered atomic.Int64
	release := make(chan struct{})
	d := snslocal.NewDirect("arn:topic", "fn", func(ctx context.Context, ev events.SNSEvent) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		if e, err := snspub.Decode(ev.Records[0]); err != nil || e.Room != "r" {
			t.Errorf("delivered %+v, %v", ev, err)
		}
		delivered.Add(1)
		return nil
	}, 0, slog.New(slog.DiscardHandler))
	for i := range published {
		if err := d.Publish(t.Context(), domain.Event{EventID: string(rune('a' + i)), Type: domain.EventItemPut, Room: "r", ID: "i"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for running.Load() < snslocal.Workers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	d.Close()
	if peak.Load() != snslocal.Workers || delivered.Load() != published {
		t.Errorf("peak %d concurrent (want %d), delivered %d of %d", peak.Load(), snslocal.Workers, delivered.Load(), published)
	}
	if err := d.Publish(t.Context(), domain.Event{EventID: "late", Type: domain.EventItemPut, Room: "r"}); !errors.Is(err, snslocal.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// TestDirectRetriesTwice: a failing delivery is tried three times in all,
// as Lambda retries an asynchronous invocation twice.
func TestDirectRetriesTwice(t *testing.T) {
	var mu sync.Mutex
	tries := 0
	d := snslocal.NewDirect("arn:topic", "fn", func(context.Context, events.SNSEvent) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		return errors.New("broadcast failed")
	}, 0, slog.New(slog.DiscardHandler))
	if err := d.Publish(t.Context(), domain.Event{EventID: "e", Type: domain.EventItemPut, Room: "r"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if tries != 3 {
		t.Errorf("%d tries, want 3", tries)
	}
}
