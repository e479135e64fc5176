// Package lambdafake is a stand-in for the Lambda Invoke API that tests
// and benchmarks point AWS_ENDPOINT_URL_LAMBDA at: it accepts asynchronous
// invocations of the functions it knows, as Lambda does (202 once queued),
// and runs each payload with a function of the test's, a few at a time.
package lambdafake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Run is what an accepted invocation does: the function's work.
type Run func(ctx context.Context, payload []byte) error

// Server is a Lambda Invoke endpoint on 127.0.0.1.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string

	functions map[string]Run
	queue     chan job
	pending   sync.WaitGroup
	workers   sync.WaitGroup
	srv       *http.Server

	accepted atomic.Int64
	ran      atomic.Int64
	failed   atomic.Int64
	// refuse, while above 0, answers that many invocations 500.
	refuse atomic.Int64

	mu       sync.Mutex
	problems []string
}

type job struct {
	run     Run
	payload []byte
}

// Start serves functions (by name), running at most workers invocations at
// once; the server stops when the test ends.
func Start(t testing.TB, workers int, functions map[string]Run) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lambdafake: %v", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), functions: functions, queue: make(chan job, 4096)}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go func() { _ = s.srv.Serve(ln) }()
	for range max(workers, 1) {
		s.workers.Go(s.work)
	}
	t.Cleanup(func() {
		_ = s.srv.Close()
		close(s.queue)
		s.workers.Wait()
	})
	return s
}

const invokePrefix = "/2015-03-31/functions/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, invokePrefix), "/invocations")
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, invokePrefix) || !ok {
		fail(w, http.StatusNotFound, "UnknownOperationException", "not an Invoke call: "+r.Method+" "+r.URL.Path)
		return
	}
	run, known := s.functions[name]
	if !known {
		fail(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+name)
		return
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/lambda/aws4_request") {
		s.problem("invocation of %s not signed for lambda: %q", name, auth)
		fail(w, http.StatusForbidden, "InvalidSignatureException", "missing or wrong signature")
		return
	}
	if it := r.Header.Get("X-Amz-Invocation-Type"); it != "Event" {
		s.problem("invocation of %s with type %q, want Event", name, it)
		fail(w, http.StatusBadRequest, "InvalidParameterValueException", "only asynchronous (Event) invocations are served")
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, 256<<10+1))
	if err != nil || len(payload) > 256<<10 || !json.Valid(payload) {
		s.problem("invocation of %s: payload of %d bytes, valid JSON %v", name, len(payload), json.Valid(payload))
		fail(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "payload too large or not JSON")
		return
	}
	if s.refuse.Load() > 0 && s.refuse.Add(-1) >= 0 {
		fail(w, http.StatusInternalServerError, "ServiceException", "refused by the test")
		return
	}
	s.accepted.Add(1)
	s.pending.Add(1)
	s.queue <- job{run: run, payload: payload}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) work() {
	for j := range s.queue {
		if err := j.run(context.Background(), j.payload); err != nil {
			s.failed.Add(1)
			s.problem("invocation failed: %v", err)
		}
		s.ran.Add(1)
		s.pending.Done()
	}
}

// Refuse answers the next n invocations 500 ServiceException.
func (s *Server) Refuse(n int) { s.refuse.Store(int64(n)) }

// Wait returns once every accepted invocation has run, those they started
// included.
func (s *Server) Wait() { s.pending.Wait() }

// Stats are the server's counts.
type Stats struct{ Accepted, Ran, Failed int }

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	return Stats{Accepted: int(s.accepted.Load()), Ran: int(s.ran.Load()), Failed: int(s.failed.Load())}
}

// Problems lists what callers did wrong (unsigned or synchronous calls,
// oversized payloads) and invocations that failed.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

func (s *Server) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

// fail answers as Lambda does: the error type in a header and the body.
func fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}
