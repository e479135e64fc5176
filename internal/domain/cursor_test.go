package domain

import (
	"bytes"
	"fmt"
	"testing"
)

func TestPage(t *testing.T) {
	item := func(id string, size int) Item { return Item{ID: id, Data: bytes.Repeat([]byte("x"), size)} }
	items := func(n, size int) []Item {
		out := make([]Item, n)
		for i := range out {
			out[i] = item(fmt.Sprintf("i%03d", i), size)
		}
		return out
	}
	tests := []struct {
		name     string
		fetched  []Item
		limit    int
		more     bool
		wantN    int
		wantNext string
	}{
		{"empty", nil, 10, false, 0, ""},
		{"fewer than the limit", items(3, 10), 10, false, 3, ""},
		{"one past the limit", items(4, 10), 3, false, 3, "i002"},
		{"store stopped early", items(3, 10), 10, true, 3, "i002"},
		{"byte budget cuts", items(5, MaxPageBytes/2), 10, false, 2, "i001"},
		{"one huge item still listed", items(2, MaxPageBytes+1), 10, false, 1, "i000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Page(tc.fetched, tc.limit, tc.more)
			if len(p.Items) != tc.wantN {
				t.Errorf("%d items, want %d", len(p.Items), tc.wantN)
			}
			next := ""
			if p.Next != "" {
				next, _ = DecodeCursor(p.Next)
			}
			if next != tc.wantNext {
				t.Errorf("next after %q, want %q", next, tc.wantNext)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []string{"a", "note-1", "x.y:z_9"} {
		got, err := DecodeCursor(EncodeCursor(id))
		if err != nil || got != id {
			t.Errorf("%q → %q %v", id, got, err)
		}
	}
	for _, bad := range []string{"%%%", "=", "a b"} {
		if _, err := DecodeCursor(bad); AsError(err).Status != 400 {
			t.Errorf("DecodeCursor(%q) = %v, want a 400", bad, err)
		}
	}
	if l := ListLimit(0); l != DefaultListLimit {
		t.Errorf("ListLimit(0) = %d", l)
	}
	if l := ListLimit(5000); l != MaxListLimit {
		t.Errorf("ListLimit(5000) = %d", l)
	}
}
