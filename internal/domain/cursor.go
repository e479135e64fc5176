package domain

import (
	"encoding/base64"
	"net/http"
)

// Listing limits shared by every ItemStore and the HTTP API.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListLimit maps a requested page size to the one a store serves.
func ListLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	return min(limit, MaxListLimit)
}

// EncodeCursor makes the opaque cursor of the page after lastID: every store
// orders a room by id, so the last id is all a cursor needs.
func EncodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// DecodeCursor returns the id a cursor continues after; "" for none. A
// malformed cursor is a 400.
func DecodeCursor(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	id, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(id) == 0 {
		return "", &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid cursor", Err: err}
	}
	return string(id), nil
}
