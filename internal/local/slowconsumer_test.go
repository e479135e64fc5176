package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

// slowConsumer is a room with a client that never reads and one that
// does, and the writes that fill it.
type slowConsumer struct {
	stack    *local.Stack
	room     string
	deafIDs  []string
	reader   *wsclient.Client
	sent     map[int64]time.Time // version → when its PUT started
	received map[int64]time.Time // version → when its event arrived
}

func newSlowConsumer(tb testing.TB, s *local.Stack, deaf int) *slowConsumer {
	tb.Helper()
	sc := &slowConsumer{stack: s, room: "slow", sent: map[int64]time.Time{}, received: map[int64]time.Time{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range deaf {
		c, _, err := websocket.Dial(ctx, localtest.WebSocketURL(tb, s, "room="+sc.room), nil)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.CloseNow() })
		// Its id, before it stops reading for good.
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)); err != nil {
			tb.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		var who struct{ ConnectionID string }
		if err != nil || json.Unmarshal(b, &who) != nil || who.ConnectionID == "" {
			tb.Fatalf("whoami: %s %v", b, err)
		}
		sc.deafIDs = append(sc.deafIDs, who.ConnectionID)
	}
	sc.reader = wsclient.Dial(tb, localtest.WebSocketURL(tb, s, "room="+sc.room))
	return sc
}

// pruned counts the deaf sockets whose records are gone.
func (sc *slowConsumer) pruned() int {
	n := 0
	for _, id := range sc.deafIDs {
		if _, err := sc.stack.Connections().Get(context.Background(), id); errors.Is(err, domain.ErrNotFound) {
			n++
		}
	}
	return n
}

// run PUTs n items of about size bytes one after another while the reader
// takes their events. In lockstep, each PUT waits for the reader to have
// the previous one's event, so only the deaf sockets fall behind, however
// busy the machine is; otherwise the PUTs go as fast as they are answered.
func (sc *slowConsumer) run(tb testing.TB, n, size int, lockstep bool) {
	tb.Helper()
	body := `{"pad":"` + strings.Repeat("x", size-10) + `"}`
	var mu sync.Mutex
	arrived := make(chan error, n)
	go func() {
		for range n {
			f, err := sc.reader.Receive(30 * time.Second)
			if err == nil {
				var ev struct{ Version int64 }
				err = json.Unmarshal(f.Data, &ev)
				mu.Lock()
				sc.received[ev.Version] = time.Now()
				mu.Unlock()
			}
			arrived <- err
			if err != nil {
				return
			}
		}
	}()
	wait := func() {
		if err := <-arrived; err != nil {
			tb.Fatalf("the reading socket: %v (after %d events)", err, len(sc.received))
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	token := localtest.Token(tb, sc.stack, "slow-writer")
	for i := range n {
		url := fmt.Sprintf("%s/rooms/%s/items/n", sc.stack.HTTPURL(), sc.room)
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		mu.Lock()
		sc.sent[int64(i+1)] = time.Now()
		mu.Unlock()
		resp, err := client.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			tb.Fatalf("PUT %d: %d", i+1, resp.StatusCode)
		}
		if lockstep {
			wait()
		}
	}
	if !lockstep {
		for range n {
			wait()
		}
	}
}

// latencies returns each write's time from PUT to event, by version.
func (sc *slowConsumer) latencies() []time.Duration {
	out := make([]time.Duration, 0, len(sc.sent))
	for v := int64(1); v <= int64(len(sc.sent)); v++ {
		out = append(out, sc.received[v].Sub(sc.sent[v]))
	}
	return out
}

// TestClientThatDoesNotReadStallsNobody: one socket in the room reads
// nothing while large writes pour in. The other socket gets every event;
// the deaf one is closed with 1013 and pruned once its posts answer 410.
func TestClientThatDoesNotReadStallsNobody(t *testing.T) {
	s, logs := start(t, modes[0], func(o *local.Options) { o.SendQueueBytes = 256 << 10 })
	sc := newSlowConsumer(t, s, 1)
	// 100 writes of 100 KB: more than the kernel's socket buffers and the
	// queue hold, so the deaf socket overflows.
	sc.run(t, 100, 100<<10, true)
	if len(sc.received) != 100 {
		t.Errorf("the reading socket got %d of 100 events", len(sc.received))
	}
	deadline := time.Now().Add(5 * time.Second)
	for sc.pruned() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the deaf socket's record is still stored")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for !strings.Contains(logs.String(), `"close_code":1013,"close_reason":"Client is not reading"`) {
		if time.Now().After(deadline) {
			t.Fatal("no $disconnect with 1013 in the logs")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkClientThatDoesNotRead is the scenario at full size: a
// room with sockets that never read (1, then 40) and one that does, 300
// writes of 64 KB with the default send queue. It reports the reading
// socket's latency from PUT to event (worst, p99, median), how much the
// process's peak RSS grew, the most goroutines seen, and how many deaf
// sockets were pruned.
//
//	go test -run '^$' -bench ClientThatDoesNotRead -benchtime 1x ./internal/local/
func BenchmarkClientThatDoesNotRead(b *testing.B) {
	for _, deaf := range []int{1, 40} {
		b.Run(fmt.Sprintf("deaf=%d", deaf), func(b *testing.B) {
			for range b.N {
				before := rssKB("VmRSS")
				s, _ := start(b, modes[0], nil)
				sc := newSlowConsumer(b, s, deaf)
				var peak atomic.Int64
				stop := make(chan struct{})
				go func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
							if n := int64(runtime.NumGoroutine()); n > peak.Load() {
								peak.Store(n)
							}
						}
					}
				}()
				began := time.Now()
				sc.run(b, 300, 64<<10, false)
				elapsed := time.Since(began)
				close(stop)
				lat := sc.latencies()
				slices.Sort(lat)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
				b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
				b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
				b.ReportMetric(float64(rssKB("VmHWM")-before)/1024, "peak-rss-growth-MB")
				b.ReportMetric(float64(peak.Load()), "peak-goroutines")
				b.ReportMetric(elapsed.Seconds(), "run-s")
				b.ReportMetric(float64(sc.pruned()), "deaf-pruned")
			}
		})
	}
}

func rssKB(field string) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
