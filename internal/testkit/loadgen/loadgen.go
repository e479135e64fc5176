// Package loadgen drives a pushgate stack as many browsers would: it
// opens WebSocket clients in rooms, writes items over HTTP at a set rate,
// and measures how long each write takes to reach each client, and which
// clients it never reached.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/time/rate"
)

// Options describe one run; zero values take the defaults noted.
type Options struct {
	// WebSocketURL is the stage URL (ws:// locally, wss:// deployed).
	WebSocketURL string
	// APIURL is the HTTP API's base URL.
	APIURL string
	// Token, when set, is sent as ?token= on every socket and as the
	// bearer token of every write: one that joins and writes the run's
	// rooms (<Prefix>-*).
	Token string
	// Clients is how many sockets to open (default 100).
	Clients int
	// Rooms spreads the clients over this many rooms, client i in room
	// i mod Rooms (default 1).
	Rooms int
	// Prefix names the rooms: <Prefix>-<n> (default "loadgen").
	Prefix string
	// Writes is how many items to PUT, write k to room k mod Rooms
	// (default 10).
	Writes int
	// WriteRate is writes per second (default 5).
	WriteRate float64
	// ConnectRate is connections opened per second (default 500), at most
	// 64 at once.
	ConnectRate float64
	// Size pads each item's data to about this many bytes (default 100).
	Size int
	// Wait is how long, after the last write, deliveries may still come
	// (default 10s).
	Wait time.Duration
	// Hold keeps the clients connected this long after the writes,
	// counting every socket that fails meanwhile, and then writes once
	// more to each room: those Rooms writes are part of the summary.
	Hold time.Duration
	// Progress, when set, gets progress bars.
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.WebSocketURL == "" || o.APIURL == "" {
		return errors.New("loadgen: needs the WebSocket and the HTTP API URLs")
	}
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&o.Clients, 100)
	set(&o.Rooms, 1)
	set(&o.Writes, 10)
	set(&o.Size, 100)
	if o.Prefix == "" {
		o.Prefix = "loadgen"
	}
	if o.WriteRate <= 0 {
		o.WriteRate = 5
	}
	if o.ConnectRate <= 0 {
		o.ConnectRate = 500
	}
	if o.Wait <= 0 {
		o.Wait = 10 * time.Second
	}
	o.APIURL = strings.TrimRight(o.APIURL, "/")
	return nil
}

// room is where client i is, and where write i goes.
func (o *Options) room(i int) string { return fmt.Sprintf("%s-%d", o.Prefix, i%o.Rooms) }

// Latency is a distribution in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// ClientStats is one client's share of the run.
type ClientStats struct {
	Client   int     `json:"client"`
	Room     string  `json:"room"`
	Received int     `json:"received"`
	Missed   int     `json:"missed"`
	Latency  Latency `json:"latency"`
}

// Missed lists a write's clients that never got it.
type Missed struct {
	Write   int    `json:"write"`
	Room    string `json:"room"`
	Clients []int  `json:"clients"`
}

// Summary is what a run measured.
type Summary struct {
	Clients           int     `json:"clients"`
	Connected         int     `json:"connected"`
	ConnectErrors     int     `json:"connect_errors"`
	ConnectSeconds    float64 `json:"connect_seconds"`
	ConnectsPerSecond float64 `json:"connects_per_second"`
	Writes            int     `json:"writes"`
	WriteErrors       int     `json:"write_errors"`
	// Expected is what full delivery is: each write times its room's
	// connected clients.
	Expected   int `json:"expected_deliveries"`
	Delivered  int `json:"delivered"`
	Duplicates int `json:"duplicates"`
	// SocketErrors counts sockets that closed or failed before the end.
	SocketErrors int           `json:"socket_errors"`
	Latency      Latency       `json:"latency"`
	Missed       []Missed      `json:"missed,omitempty"`
	PerClient    []ClientStats `json:"per_client"`
	Errors       []string      `json:"errors,omitempty"`
	// Samples are every delivery's latency, in ms, for plots.
	Samples []float64 `json:"-"`
}

// Complete reports full delivery with no error anywhere.
func (s Summary) Complete() bool {
	return s.Connected == s.Clients && s.WriteErrors == 0 && s.Delivered == s.Expected &&
		s.Duplicates == 0 && s.SocketErrors == 0
}

type client struct {
	n    int
	room string
	conn *websocket.Conn
	mu   sync.Mutex
	got  map[int]time.Time // write → first receipt
	dups int
	err  error // how the socket ended early, if it did
}

// Run performs one run.
func Run(ctx context.Context, o Options) (Summary, error) {
	if err := o.defaults(); err != nil {
		return Summary{}, err
	}
	sum := Summary{Clients: o.Clients}
	var errsMu sync.Mutex
	addErr := func(format string, args ...any) {
		errsMu.Lock()
		defer errsMu.Unlock()
		if len(sum.Errors) < 20 {
			sum.Errors = append(sum.Errors, fmt.Sprintf(format, args...))
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	// Sockets without TCP keepalive: thousands of sockets probing at once
	// overflow loopback's receive backlog, so probes are lost and healthy
	// sockets reset (docs/benchmarks.md).
	dialer := &net.Dialer{KeepAlive: -1, Timeout: 15 * time.Second}
	wsHTTP := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: http.ProxyFromEnvironment}}
	clients := make([]*client, o.Clients)
	connectStart := time.Now()
	bar := newBar(o.Progress, o.Clients, "connecting")
	limiter := rate.NewLimiter(rate.Limit(o.ConnectRate), 1)
	dials := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range o.Clients {
		if err := limiter.Wait(ctx); err != nil {
			return sum, err
		}
		dials <- struct{}{}
		wg.Go(func() {
			defer func() { <-dials }()
			room := o.room(i)
			c, err := dial(runCtx, wsHTTP, o.WebSocketURL, room, o.Token)
			if err != nil {
				addErr("client %d: %v", i, err)
				return
			}
			cl := &client{n: i, room: room, conn: c, got: map[int]time.Time{}}
			clients[i] = cl
			go cl.read(runCtx)
			_ = bar.Add(1)
		})
	}
	wg.Wait()
	_ = bar.Finish()
	sum.ConnectSeconds = time.Since(connectStart).Seconds()
	members := map[string]int{}
	for _, c := range clients {
		if c == nil {
			sum.ConnectErrors++
			continue
		}
		sum.Connected++
		members[c.room]++
	}
	sum.ConnectsPerSecond = float64(sum.Connected) / math.Max(sum.ConnectSeconds, 1e-3)
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.conn.Close(websocket.StatusNormalClosure, "loadgen done")
			}
		}
	}()

	// The writes, at the rate asked; each carries its send time. After a
	// hold, one more write per room shows that the held sockets still
	// receive.
	total := o.Writes
	if o.Hold > 0 {
		total += o.Rooms
	}
	sum.Writes = total
	sent := make([]time.Time, total)
	var wrote atomic.Int64
	writeLimiter := rate.NewLimiter(rate.Limit(o.WriteRate), 1)
	httpc := &http.Client{Timeout: 10 * time.Second}
	pad := strings.Repeat("x", max(o.Size-40, 0))
	round := func(from, to int, what string) error {
		bar := newBar(o.Progress, to-from, what)
		var writes sync.WaitGroup
		for k := from; k < to; k++ {
			if err := writeLimiter.Wait(ctx); err != nil {
				return err
			}
			room := o.room(k)
			sum.Expected += members[room]
			sent[k] = time.Now()
			writes.Go(func() {
				if err := put(ctx, httpc, o.APIURL, room, k, pad, o.Token); err != nil {
					addErr("write %d: %v", k, err)
					return
				}
				wrote.Add(1)
				_ = bar.Add(1)
			})
		}
		writes.Wait()
		_ = bar.Finish()
		// Wait for the deliveries.
		deadline := time.Now().Add(o.Wait)
		bar = newBar(o.Progress, sum.Expected, "delivering")
		for {
			n := 0
			for _, c := range clients {
				if c != nil {
					c.mu.Lock()
					n += len(c.got)
					c.mu.Unlock()
				}
			}
			_ = bar.Set(n)
			if n >= sum.Expected || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return bar.Finish()
	}
	if err := round(0, o.Writes, "writing"); err != nil {
		return sum, err
	}
	if o.Hold > 0 {
		bar := newBar(o.Progress, int(o.Hold.Seconds()), "holding")
		end := time.Now().Add(o.Hold)
		for time.Now().Before(end) && ctx.Err() == nil {
			select {
			case <-time.After(min(time.Second, time.Until(end))):
			case <-ctx.Done():
			}
			_ = bar.Set(int(o.Hold.Seconds() - time.Until(end).Seconds()))
		}
		_ = bar.Finish()
		if err := round(o.Writes, total, "probing"); err != nil {
			return sum, err
		}
	}
	sum.WriteErrors = total - int(wrote.Load())

	// Tally.
	missed := map[int][]int{}
	for _, c := range clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		st := ClientStats{Client: c.n, Room: c.room}
		var lat []float64
		for k := range total {
			if k%o.Rooms != c.n%o.Rooms || sent[k].IsZero() {
				continue
			}
			at, ok := c.got[k]
			if !ok {
				st.Missed++
				missed[k] = append(missed[k], c.n)
				continue
			}
			st.Received++
			lat = append(lat, float64(at.Sub(sent[k]).Microseconds())/1000)
		}
		sum.Duplicates += c.dups
		if c.err != nil {
			sum.SocketErrors++
			addErr("client %d: %v", c.n, c.err)
		}
		c.mu.Unlock()
		st.Latency = distribution(lat)
		sum.Delivered += st.Received
		sum.Samples = append(sum.Samples, lat...)
		sum.PerClient = append(sum.PerClient, st)
	}
	sum.Latency = distribution(slices.Clone(sum.Samples))
	for _, k := range slices.Sorted(maps.Keys(missed)) {
		sum.Missed = append(sum.Missed, Missed{Write: k, Room: o.room(k), Clients: missed[k]})
	}
	return sum, nil
}

func dial(ctx context.Context, httpc *http.Client, wsURL, room, token string) (*websocket.Conn, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("room", room)
	if token != "" {
		q.Set("token", token)
	}
	u.RawQuery = q.Encode()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: httpc})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// read records every item event of this run.
func (c *client) read(ctx context.Context) {
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			if ctx.Err() == nil && websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
			}
			return
		}
		var f struct {
			Action, ID string
		}
		if json.Unmarshal(data, &f) != nil || f.Action != "event" || !strings.HasPrefix(f.ID, "lg-") {
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(f.ID, "lg-"))
		if err != nil {
			continue
		}
		now := time.Now()
		c.mu.Lock()
		if _, seen := c.got[k]; seen {
			c.dups++
		} else {
			c.got[k] = now
		}
		c.mu.Unlock()
	}
}

func put(ctx context.Context, httpc *http.Client, api, room string, k int, pad, token string) error {
	body := fmt.Sprintf(`{"seq":%d,"pad":%q}`, k, pad)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/rooms/%s/items/lg-%d", api, room, k), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("PUT answered %d %s", resp.StatusCode, b)
	}
	return nil
}

// distribution sorts ms and reads its percentiles.
func distribution(ms []float64) Latency {
	if len(ms) == 0 {
		return Latency{}
	}
	slices.Sort(ms)
	at := func(p float64) float64 { return ms[min(len(ms)-1, int(math.Ceil(p*float64(len(ms))))-1)] }
	return Latency{Count: len(ms), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms[len(ms)-1]}
}

func newBar(w io.Writer, n int, what string) *progressbar.ProgressBar {
	if w == nil {
		return progressbar.DefaultSilent(int64(n), what)
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
}
