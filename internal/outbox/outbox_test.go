package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/outbox"
)

// publisher records what it published and fails while failing is set.
type publisher struct {
	mu      sync.Mutex
	failing bool
	got     []string // room/seq
}

func (p *publisher) Publish(_ context.Context, e domain.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errors.New("sns: throttled")
	}
	p.got = append(p.got, fmt.Sprintf("%s/%d", e.Room, e.Seq))
	return nil
}

func TestSweep(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	grace := 30 * time.Second
	write := func(t *testing.T, s *memstore.Items, room string, at time.Time) domain.Event {
		t.Helper()
		put, err := s.PutItem(t.Context(), domain.Item{Room: room, ID: "a", Data: json.RawMessage(`{}`)}, domain.Precondition{},
			domain.Change{Now: at, EventID: domain.NewID(), HistoryTTL: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return put.Event
	}
	tests := []struct {
		name string
		// writes are at t0 + i seconds in rooms; published marks those
		// whose own publish succeeded.
		rooms     []string
		published []bool
		// sweepAt is after t0; failing makes the sweeper's publishes fail.
		sweepAt   time.Duration
		failing   bool
		want      []string
		wantCount outbox.Result
	}{
		{"nothing older than the grace", []string{"r", "r"}, []bool{false, false}, grace, false, nil,
			outbox.Result{Found: 0}},
		{"each room in seq order", []string{"b", "a", "b", "a"}, []bool{false, false, false, false}, grace + time.Minute, false,
			[]string{"a/1", "a/2", "b/1", "b/2"}, outbox.Result{Found: 4, Claimed: 4, Published: 4}},
		{"published ones are left", []string{"r", "r", "r"}, []bool{true, false, true}, grace + time.Minute, false,
			[]string{"r/2"}, outbox.Result{Found: 1, Claimed: 1, Published: 1}},
		{"only those past the grace", []string{"r", "r"}, []bool{false, false}, grace + 500*time.Millisecond, false,
			[]string{"r/1"}, outbox.Result{Found: 1, Claimed: 1, Published: 1}},
		{"a failing publish stays", []string{"r"}, []bool{false}, grace + time.Minute, true,
			nil, outbox.Result{Found: 1, Claimed: 1, Failed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memstore.NewItems()
			for i, room := range tt.rooms {
				e := write(t, store, room, t0.Add(time.Duration(i)*time.Second))
				if tt.published[i] {
					if err := store.MarkPublished(t.Context(), e.Room, e.Seq); err != nil {
						t.Fatal(err)
					}
				}
			}
			pub := &publisher{failing: tt.failing}
			var logs bytes.Buffer
			now := t0.Add(tt.sweepAt)
			sw := outbox.New(store, pub, grace, slog.New(slog.NewJSONHandler(&logs, nil))).WithClock(func() time.Time { return now })
			r, err := sw.Sweep(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pub.got, tt.want) || r != tt.wantCount {
				t.Fatalf("published %v (%+v), want %v (%+v)", pub.got, r, tt.want, tt.wantCount)
			}
			// A second sweep at once finds nothing: published ones are off
			// the outbox, a failed one claimed until the grace has passed.
			if r, _ := sw.Sweep(t.Context()); r.Found != 0 {
				t.Errorf("second sweep found %d", r.Found)
			}
			if !tt.failing {
				return
			}
			pub.failing = false
			now = now.Add(grace + time.Second)
			if err := sw.Handle(t.Context(), events.EventBridgeEvent{}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pub.got, []string{"r/1"}) {
				t.Errorf("after the publish recovered: published %v, want [r/1]", pub.got)
			}
			if !strings.Contains(logs.String(), `"msg":"sweep","found":1,"claimed":1,"published":1,"failed":0`) {
				t.Errorf("no summary line of the sweep: %s", logs.String())
			}
		})
	}
}

// failingOutbox cannot be read.
type failingOutbox struct{ domain.Outbox }

func (failingOutbox) Unpublished(context.Context, time.Time, int) ([]domain.Pending, error) {
	return nil, errors.New("ProvisionedThroughputExceededException")
}

func TestAnOutboxThatCannotBeReadFailsTheInvocation(t *testing.T) {
	var logs bytes.Buffer
	sw := outbox.New(failingOutbox{}, &publisher{}, 0, slog.New(slog.NewJSONHandler(&logs, nil)))
	err := sw.Handle(t.Context(), events.EventBridgeEvent{})
	if err == nil || !strings.Contains(err.Error(), "ProvisionedThroughput") {
		t.Fatalf("Handle = %v; want the read error, so Lambda retries", err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"sweep"`) {
		t.Errorf("no error summary: %s", logs.String())
	}
}

// TestAFailedPublishWaitsForTheNextSweep: a sweep that outlasts the grace
// (a slow, failing SNS) does not try the same event again and again.
func TestAFailedPublishWaitsForTheNextSweep(t *testing.T) {
	store := memstore.NewItems()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	if _, err := store.PutItem(t.Context(), domain.Item{Room: "r", ID: "a", Data: json.RawMessage(`{}`)}, domain.Precondition{},
		domain.Change{Now: t0, EventID: "e1", HistoryTTL: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	grace := 30 * time.Second
	now := t0.Add(time.Minute)
	// Every reading of the clock is a grace later: each claim is stale
	// by the next listing.
	clock := func() time.Time { now = now.Add(grace + time.Second); return now }
	sw := outbox.New(store, &publisher{failing: true}, grace, slog.New(slog.DiscardHandler)).WithClock(clock)
	r, err := sw.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r != (outbox.Result{Found: 1, Claimed: 1, Failed: 1}) {
		t.Fatalf("sweep = %+v, want the event tried once", r)
	}
	if r, _ := sw.Sweep(t.Context()); r.Found != 1 || r.Failed != 1 {
		t.Fatalf("next sweep = %+v, want it tried again", r)
	}
}
