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

// MaxPageBytes bounds the item data of one listed page, as DynamoDB bounds
// a query page: a thousand items near the size limit would otherwise make
// a 126 MB response, past Lambda's 6 MB and the function's memory.
const MaxPageBytes = 1 << 20

// Page cuts items fetched in id order (up to limit+1 of them) to one page:
// at most limit items and, past the first, MaxPageBytes of data. more says
// the store stopped reading before the room's end; Next is set whenever
// items may follow.
func Page(fetched []Item, limit int, more bool) ItemPage {
	n, size := 0, 0
	for n < len(fetched) && n < limit {
		size += len(fetched[n].Data)
		if n > 0 && size > MaxPageBytes {
			break
		}
		n++
	}
	p := ItemPage{Items: fetched[:n]}
	if n > 0 && (n < len(fetched) || more) {
		p.Next = EncodeCursor(fetched[n-1].ID)
	}
	return p
}
