package domain

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes shared by the HTTP API and the socket's error frames.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidRoom      = "invalid_room"
	CodeInvalidID        = "invalid_id"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodePrecondition     = "precondition_failed"
	CodeTooLarge         = "too_large"
	CodeUnsupportedType  = "unsupported_media_type"
	CodeTooManyRooms     = "too_many_rooms"
	CodeUnknownAction    = "unknown_action"
	CodeUnknownTarget    = "unknown_target"
	CodeInternal         = "internal"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeRateLimited      = "rate_limited"
	CodeHistoryExpired   = "history_expired"
	CodeUnavailable      = "unavailable"
)

// Error is a failure the caller can act on: it carries a stable code, a
// message meant for people and the HTTP status that fits it.
type Error struct {
	Code    string
	Message string
	Status  int
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is matched (errors.Is) by every "no such record" failure.
var ErrNotFound = errors.New("not found")

// ErrPrecondition is matched by a write whose If-Match / If-None-Match failed.
var ErrPrecondition = errors.New("precondition failed")

// ErrConflict is matched by a create (If-None-Match: *) of an existing item.
var ErrConflict = errors.New("conflict")

// ErrUnavailable is matched by a failure a store reports as temporary:
// throttling or a server fault that its client's retries did not outlast.
// Nothing was changed; the caller may retry.
var ErrUnavailable = errors.New("unavailable")

// RetryAfterSeconds is what an unavailable answer asks a client to wait.
const RetryAfterSeconds = 1

// UnavailableMessage is the whole message of an unavailable answer: the
// cause stays in the logs.
var UnavailableMessage = fmt.Sprintf("busy; nothing was changed, retry in %d s", RetryAfterSeconds)

// AsError maps err to the *Error a client should see: errors that already
// are one keep theirs, the sentinel errors get their status, and anything
// else is an internal error whose detail stays in the logs.
func AsError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrNotFound):
		return &Error{Code: CodeNotFound, Status: http.StatusNotFound, Message: "not found", Err: err}
	case errors.Is(err, ErrPrecondition):
		return &Error{Code: CodePrecondition, Status: http.StatusPreconditionFailed, Message: "the item's version does not match If-Match", Err: err}
	case errors.Is(err, ErrConflict):
		return &Error{Code: CodeConflict, Status: http.StatusConflict, Message: "the item already exists (If-None-Match: *)", Err: err}
	case errors.Is(err, ErrUnavailable):
		return &Error{Code: CodeUnavailable, Status: http.StatusServiceUnavailable,
			Message: UnavailableMessage, Err: err}
	default:
		return &Error{Code: CodeInternal, Status: http.StatusInternalServerError, Message: "internal error", Err: err}
	}
}

// PostError is a failed delivery to one connection, classified so the
// fan-out knows whether to prune, retry or count it.
type PostError struct {
	ConnectionID string
	// Status is the Management API's HTTP status, 0 if none was received.
	Status int
	Err    error
}

func (e *PostError) Error() string {
	return fmt.Sprintf("post to %s: status %d: %v", e.ConnectionID, e.Status, e.Err)
}

func (e *PostError) Unwrap() error { return e.Err }

// Gone reports that the connection no longer exists (410).
func (e *PostError) Gone() bool { return e.Status == http.StatusGone }

// Retryable reports a throttle, a server fault or a transport failure.
func (e *PostError) Retryable() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}
