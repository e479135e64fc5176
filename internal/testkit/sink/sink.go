// Package sink is a stand-in for the API Gateway Management API that
// benchmarks and tests post to: each post takes a set latency, a token
// bucket answers 429 past a set rate, some connections are gone (410), some
// calls fail (500), and every delivered copy is counted per connection.
package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/internal/domain"
)

// StatsPath answers the sink's counts.
const StatsPath = "/_sink/stats"

// Options shape a Sink; zero values turn each behaviour off.
type Options struct {
	// Latency is how long each call takes before it answers.
	Latency time.Duration
	// Rate is the posts per second the sink takes; past it, a token
	// bucket of Burst answers 429 LimitExceededException, as API
	// Gateway's account throttle does. 0 takes any rate.
	Rate  float64
	Burst int
	// GoneEvery makes one connection in GoneEvery gone (410
	// GoneException): those whose id hashes to 0 modulo it, so the set is
	// known in advance (IsGone).
	GoneEvery int
	// FailRate is the share of calls, gone ones aside, answered 500.
	FailRate float64
}

// Stats counts what the sink answered.
type Stats struct {
	Posts, Delivered, Throttled, Gone, Failed int64
	// MaxInFlight is the most calls it held at once.
	MaxInFlight int64
}

// Sink counts deliveries; it is a domain.Poster in-process and an
// http.Handler serving POST /@connections/{id} (under any stage prefix).
type Sink struct {
	opt     Options
	limiter *rate.Limiter

	posts, delivered, throttled, gone, failed atomic.Int64
	inFlight, maxInFlight                     atomic.Int64

	mu     sync.Mutex
	copies map[string]int
}

// New returns a Sink.
func New(o Options) *Sink {
	s := &Sink{opt: o, copies: map[string]int{}}
	if o.Rate > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(o.Rate), max(o.Burst, 1))
	}
	return s
}

// IsGone reports whether the sink answers 410 for id.
func (s *Sink) IsGone(id string) bool {
	if s.opt.GoneEvery <= 0 {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return h.Sum32()%uint32(s.opt.GoneEvery) == 0
}

// answer is what one call gets: 0 for delivered, else an HTTP status.
func (s *Sink) answer(ctx context.Context, id string) int {
	s.posts.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if s.opt.Latency > 0 {
		t := time.NewTimer(s.opt.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0
		}
	}
	switch {
	case s.limiter != nil && !s.limiter.Allow():
		s.throttled.Add(1)
		return http.StatusTooManyRequests
	case s.IsGone(id):
		s.gone.Add(1)
		return http.StatusGone
	case s.opt.FailRate > 0 && rand.Float64() < s.opt.FailRate:
		s.failed.Add(1)
		return http.StatusInternalServerError
	}
	s.delivered.Add(1)
	s.mu.Lock()
	s.copies[id]++
	s.mu.Unlock()
	return 0
}

// Post implements domain.Poster.
func (s *Sink) Post(ctx context.Context, id string, _ []byte) error {
	status := s.answer(ctx, id)
	if ctx.Err() != nil {
		return &domain.PostError{ConnectionID: id, Err: ctx.Err()}
	}
	if status != 0 {
		return &domain.PostError{ConnectionID: id, Status: status, Err: fmt.Errorf("sink: %d", status)}
	}
	return nil
}

// ServeHTTP answers the Management API's PostToConnection as API Gateway
// does, error types included, and GET /_sink/stats with Stats and the
// number of connections that got a copy, as JSON.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == StatsPath {
		st := s.Stats()
		s.mu.Lock()
		reached := len(s.copies)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Stats
			Reached int
		}{st, reached})
		return
	}
	_, id, ok := strings.Cut(r.URL.Path, "/@connections/")
	if !ok || id == "" || r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, "NotFoundException")
		return
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequestException")
		return
	}
	switch s.answer(r.Context(), id) {
	case 0:
		w.WriteHeader(http.StatusOK)
	case http.StatusTooManyRequests:
		writeError(w, http.StatusTooManyRequests, "LimitExceededException")
	case http.StatusGone:
		writeError(w, http.StatusGone, "GoneException")
	default:
		writeError(w, http.StatusInternalServerError, "InternalServerErrorException")
	}
}

func writeError(w http.ResponseWriter, status int, typ string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"message":%q}`, typ)
}

// Stats returns the counts so far.
func (s *Sink) Stats() Stats {
	return Stats{
		Posts: s.posts.Load(), Delivered: s.delivered.Load(), Throttled: s.throttled.Load(),
		Gone: s.gone.Load(), Failed: s.failed.Load(), MaxInFlight: s.maxInFlight.Load(),
	}
}

// Copies returns how many copies each connection received.
func (s *Sink) Copies() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.copies)
}
