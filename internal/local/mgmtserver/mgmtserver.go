// Package mgmtserver serves the API Gateway Management API
// (/@connections/{id}: POST to send, GET to describe, DELETE to close) over a
// set of sockets, for the local stack and for tests that need a real
// endpoint the SDK can talk to.
package mgmtserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
)

// Info describes a connection the way GetConnection answers.
type Info struct {
	ConnectedAt  time.Time
	LastActiveAt time.Time
	SourceIP     string
	UserAgent    string
}

// Sockets is what the server manages; each method reports false for a
// connection it does not know, which the server answers with 410 Gone.
type Sockets interface {
	Send(ctx context.Context, id string, data []byte) bool
	Info(id string) (Info, bool)
	Close(id string) bool
}

// MaxPostBytes is API Gateway's limit for PostToConnection data (128 KB).
const MaxPostBytes = 128 * 1024

// Handler serves the Management API for sockets. Paths may carry a stage
// prefix (/prod/@connections/{id}), as the SDK sends them when its endpoint
// includes the stage.
func Handler(s Sockets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, id, ok := strings.Cut(r.URL.Path, "/@connections/")
		if !ok || id == "" || strings.Contains(id, "/") {
			writeError(w, http.StatusNotFound, "NotFoundException", "no such route")
			return
		}
		switch r.Method {
		case http.MethodPost:
			data, err := io.ReadAll(io.LimitReader(r.Body, MaxPostBytes+1))
			if err != nil {
				writeError(w, http.StatusBadRequest, "BadRequestException", "could not read the body")
				return
			}
			if len(data) > MaxPostBytes {
				writeError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "data exceeds 128 KB")
				return
			}
			if !s.Send(r.Context(), id, data) {
				writeGone(w)
				return
			}
			w.WriteHeader(http.StatusOK)
		case http.MethodGet:
			info, ok := s.Info(id)
			if !ok {
				writeGone(w)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"connectedAt":  info.ConnectedAt.UTC().Format(time.RFC3339Nano),
				"lastActiveAt": info.LastActiveAt.UTC().Format(time.RFC3339Nano),
				"identity":     map[string]string{"sourceIp": info.SourceIP, "userAgent": info.UserAgent},
			})
		case http.MethodDelete:
			if !s.Close(id) {
				writeGone(w)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowedException", "method not allowed")
		}
	})
}

// writeGone answers in the shape the SDK decodes to *types.GoneException.
func writeGone(w http.ResponseWriter) {
	writeError(w, http.StatusGone, "GoneException", "connection is gone")
}

func writeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", errType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// Recorder is a Sockets that keeps what was posted in memory: tests use it as
// the far end of the Management API.
type Recorder struct {
	mu     sync.Mutex
	open   map[string]Info
	frames map[string][][]byte
}

// NewRecorder returns a Recorder with the given connections open.
func NewRecorder(ids ...string) *Recorder {
	r := &Recorder{open: map[string]Info{}, frames: map[string][][]byte{}}
	for _, id := range ids {
		r.Open(id)
	}
	return r
}

// Open makes id a live connection.
func (r *Recorder) Open(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.open[id] = Info{ConnectedAt: now, LastActiveAt: now, SourceIP: "127.0.0.1", UserAgent: "recorder"}
}

// Send implements Sockets.
func (r *Recorder) Send(_ context.Context, id string, data []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.open[id]; !ok {
		return false
	}
	r.frames[id] = append(r.frames[id], append([]byte(nil), data...))
	return true
}

// Info implements Sockets.
func (r *Recorder) Info(id string) (Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.open[id]
	return i, ok
}

// Close implements Sockets.
func (r *Recorder) Close(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.open[id]
	delete(r.open, id)
	return ok
}

// Post implements domain.Poster in-process: tests wire a fan-out straight
// to the recorder, 410 standing for an unknown connection as API Gateway's.
func (r *Recorder) Post(ctx context.Context, id string, frame []byte) error {
	if !r.Send(ctx, id, frame) {
		return &domain.PostError{ConnectionID: id, Status: http.StatusGone, Err: errors.New("connection is gone")}
	}
	return nil
}

// Delete implements fanout.Closer in-process: it closes the connection.
func (r *Recorder) Delete(_ context.Context, id string) error {
	r.Close(id)
	return nil
}

// Frames returns what was posted to id.
func (r *Recorder) Frames(id string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames[id]...)
}

// Received returns the ids that were posted at least one frame.
func (r *Recorder) Received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.frames))
	for id := range r.frames {
		ids = append(ids, id)
	}
	return ids
}
