package broadcast_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/metrics"
)

// brokenListing fails the room listing after its first page.
type brokenListing struct{ *memstore.Connections }

func (b brokenListing) Members(ctx context.Context, room string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		for page := range b.Connections.Members(ctx, room) {
			if !yield(page, nil) {
				return
			}
			yield(nil, errors.New("throughput exceeded"))
			return
		}
	}
}

func record(t *testing.T, e domain.Event) events.SNSEventRecord {
	t.Helper()
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return events.SNSEventRecord{EventSource: "aws:sns", SNS: events.SNSEntity{MessageID: "m-" + e.EventID, Message: string(b)}}
}

func TestBroadcast(t *testing.T) {
	ctx := context.Background()
	conns := memstore.NewConnections(memstore.WithPageSize(3))
	rec := mgmtserver.NewRecorder()
	exp := time.Now().Add(time.Hour)
	// 10 connections in room "demo" (4 pages), 2 of them gone; one elsewhere.
	for i := range 10 {
		id := fmt.Sprint("c", i)
		if err := conns.Put(ctx, domain.Connection{ID: id, Rooms: []string{"demo"}, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if i >= 2 {
			rec.Open(id)
		}
	}
	_ = conns.Put(ctx, domain.Connection{ID: "other", Rooms: []string{"elsewhere"}, ExpiresAt: exp})
	rec.Open("other")

	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil)).With("function", "BroadcastFunction")
	h := broadcast.New(conns, fanout.New(rec, conns, fanout.Options{Workers: 3}), broadcast.Settings{}, log)
	e := domain.Event{EventID: "e1", Type: domain.EventItemPut, Room: "demo", ID: "note", Version: 2,
		Data: json.RawMessage(`{"text": "hi <b>"}`), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	ev := events.SNSEvent{Records: []events.SNSEventRecord{
		record(t, e),
		{SNS: events.SNSEntity{MessageID: "junk", Message: "not json"}},
	}}
	if err := h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	want := `{"action":"event","eventId":"e1","type":"item.put","room":"demo","id":"note","version":2,"time":"2026-01-02T03:04:05Z","data":{"text": "hi <b>"}}`
	for i := 2; i < 10; i++ {
		got := rec.Frames(fmt.Sprint("c", i))
		if len(got) != 1 || string(got[0]) != want {
			t.Errorf("c%d got %q\nwant %s", i, got, want)
		}
	}
	if n := len(rec.Frames("other")); n != 0 {
		t.Errorf("a connection outside the room got %d frames", n)
	}
	for _, id := range []string{"c0", "c1"} {
		if _, err := conns.Get(ctx, id); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("%s not pruned: %v", id, err)
		}
	}
	var line map[string]any
	var raw string
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		_ = json.Unmarshal([]byte(l), &m)
		if m["msg"] == "broadcast" {
			line, raw = m, l
		}
	}
	// The summary line is also the invocation's CloudWatch metrics.
	names, err := metrics.Check([]byte(raw))
	if want := []string{"recipients", "delivered", "gone", "throttled", "failed", "shared", "duration_ms", "posts_per_second"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("metrics %v (%v), want %v", names, err, want)
	}
	for k, v := range map[string]float64{"recipients": 10, "delivered": 8, "gone": 2, "failed": 0, "retried": 0, "throttled": 0} {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v (%s)", k, line[k], v, logs.String())
		}
	}
	if line["room"] != "demo" || line["duration_ms"] == nil {
		t.Errorf("log line lacks room/duration: %v", line)
	}
	if !strings.Contains(logs.String(), "undecodable") {
		t.Error("the junk record was not logged")
	}
}

func TestBroadcastReturnsListingErrors(t *testing.T) {
	ctx := context.Background()
	conns := memstore.NewConnections(memstore.WithPageSize(1))
	rec := mgmtserver.NewRecorder("a", "b")
	for _, id := range []string{"a", "b"} {
		_ = conns.Put(ctx, domain.Connection{ID: id, Rooms: []string{"r"}, ExpiresAt: time.Now().Add(time.Hour)})
	}
	broken := brokenListing{conns}
	h := broadcast.New(broken, fanout.New(rec, conns, fanout.Options{}), broadcast.Settings{}, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	err := h.Handle(ctx, events.SNSEvent{Records: []events.SNSEventRecord{record(t, domain.Event{EventID: "e", Type: domain.EventItemDeleted, Room: "r", ID: "x"})}})
	if err == nil || !strings.Contains(err.Error(), "throughput exceeded") {
		t.Fatalf("err = %v; a listing failure must fail the invocation so Lambda retries it", err)
	}
}

// selfInvoker runs each payload through the handler on a goroutine, as
// Lambda's asynchronous invoke of the same function would.
type selfInvoker struct {
	h  func() *broadcast.Handler
	wg sync.WaitGroup
}

func (s *selfInvoker) Invoke(_ context.Context, payload []byte) error {
	if !json.Valid(payload) || len(payload) > 256<<10 {
		return fmt.Errorf("payload of %d bytes", len(payload))
	}
	s.wg.Go(func() { _ = s.h().Invoke(context.Background(), payload) })
	return nil
}

// TestBroadcastSharesABigRoom: a room past the share threshold is posted
// to by the listing invocation and the shares it hands to itself, every
// member once; each share logs its own summary, naming the event.
func TestBroadcastSharesABigRoom(t *testing.T) {
	ctx := context.Background()
	conns := memstore.NewConnections(memstore.WithPageSize(7))
	rec := mgmtserver.NewRecorder()
	exp := time.Now().Add(time.Hour)
	const n = 230
	for i := range n {
		id := fmt.Sprintf("c%03d", i)
		if err := conns.Put(ctx, domain.Connection{ID: id, Rooms: []string{"big"}, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		rec.Open(id)
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil)).With("function", "BroadcastFunction")
	inv := &selfInvoker{}
	var h *broadcast.Handler
	inv.h = func() *broadcast.Handler { return h }
	fan := fanout.New(rec, conns, fanout.Options{OwnShare: 20, ShareSize: 50}).WithDispatcher(broadcast.Shares(inv))
	h = broadcast.New(conns, fan, broadcast.Settings{}, log)

	e := domain.Event{EventID: "big-1", Type: domain.EventItemPut, Room: "big", ID: "x", Version: 1, Data: json.RawMessage(`1`)}
	payload, err := json.Marshal(events.SNSEvent{Records: []events.SNSEventRecord{record(t, e)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Invoke(ctx, payload); err != nil {
		t.Fatal(err)
	}
	inv.wg.Wait()
	for i := range n {
		if got := rec.Frames(fmt.Sprintf("c%03d", i)); len(got) != 1 {
			t.Fatalf("c%03d got %d frames", i, len(got))
		}
	}
	shares, delivered := 0, 0
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		delivered += int(m["delivered"].(float64))
		switch m["msg"] {
		case "broadcast":
			if m["recipients"] != float64(n) || m["shared"] != float64(n-20) || m["shares"] != float64(5) {
				t.Errorf("summary %v", m)
			}
		case "broadcast share":
			shares++
			names, err := metrics.Check([]byte(l))
			if err != nil || slices.Contains(names, "recipients") || m["origin"] != "big-1" || m["depth"] != float64(1) {
				t.Errorf("share line %s: metrics %v (%v)", l, names, err)
			}
		default:
			t.Errorf("unexpected line %s", l)
		}
	}
	if shares != 5 || delivered != n {
		t.Fatalf("%d share lines, %d delivered in all; want 5 and %d", shares, delivered, n)
	}
}

// TestInvokeSkipsWhatItCannotUse: undecodable payloads and shares without
// a valid frame are logged, not failed (a retry cannot fix them).
func TestInvokeSkipsWhatItCannotUse(t *testing.T) {
	var logs syncBuffer
	conns := memstore.NewConnections()
	h := broadcast.New(conns, fanout.New(mgmtserver.NewRecorder(), conns, fanout.Options{}), broadcast.Settings{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	for _, payload := range []string{`not json`, `{"pushgateShare":{"frame":"/w==","ids":["a"]}}`, `{"pushgateShare":{"ids":["a"]}}`} {
		if err := h.Invoke(context.Background(), []byte(payload)); err != nil {
			t.Errorf("%s: %v", payload, err)
		}
	}
	if got := strings.Count(logs.String(), `"level":"ERROR"`); got != 3 {
		t.Fatalf("%d error lines, want 3:\n%s", got, logs.String())
	}
}

// syncBuffer is a log sink for handlers on several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
