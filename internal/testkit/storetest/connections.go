// Package storetest holds the contract every domain.ConnectionStore and
// domain.ItemStore must meet, run against each implementation by its tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
)

// MembersPageSize is the Members page size the suite expects: newStore must
// build stores whose Members pages hold at most this many ids, so paging is
// exercised with a handful of records.
const MembersPageSize = 3

// fixedTime is an instant with sub-millisecond digits, so the suite sees
// the precision a store keeps.
func fixedTime() time.Time { return time.Date(2026, 11, 26, 10, 30, 0, 123456789, time.UTC) }

// ConnectionStore runs the connection-store contract; newStore returns an
// empty store (see MembersPageSize) for each subtest.
func ConnectionStore(t *testing.T, newStore func(t *testing.T) domain.ConnectionStore) {
	base := fixedTime()
	expires := base.Add(2*time.Hour + 10*time.Minute)
	conn := func(id string, rooms ...string) domain.Connection {
		return domain.Connection{
			ID:          id,
			ConnectedAt: base,
			LastSeenAt:  base.Add(1500 * time.Microsecond),
			SourceIP:    "203.0.113.7",
			UserAgent:   "storetest/1.0 (+whitespace kept)",
			Rooms:       rooms,
			ExpiresAt:   expires,
		}
	}

	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s domain.ConnectionStore)
	}{
		{"put then get returns the record at stored precision", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			c := conn("c1", "b", "a", "b")
			c.Identity = "user-1"
			mustPut(t, ctx, s, c)
			got := mustGet(t, ctx, s, "c1")
			want := domain.Connection{
				ID:          "c1",
				ConnectedAt: base.Truncate(time.Millisecond),
				LastSeenAt:  base.Add(1500 * time.Microsecond).Truncate(time.Millisecond),
				SourceIP:    c.SourceIP,
				UserAgent:   c.UserAgent,
				Identity:    "user-1",
				Rooms:       []string{"a", "b"},
				ExpiresAt:   expires.Truncate(time.Second),
			}
			assertConnection(t, got, want)
		}},
		{"put without identity or rooms", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1"))
			got := mustGet(t, ctx, s, "c1")
			if got.Identity != "" || len(got.Rooms) != 0 {
				t.Fatalf("Get = identity %q rooms %q, want none", got.Identity, got.Rooms)
			}
		}},
		{"get of a missing connection is not found", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			_, err := s.Get(ctx, "nobody")
			assertIs(t, err, domain.ErrNotFound)
		}},
		{"put adds a membership per room", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "a", "b"))
			mustPut(t, ctx, s, conn("c2", "b"))
			assertMembers(t, ctx, s, "a", "c1")
			assertMembers(t, ctx, s, "b", "c1", "c2")
			assertMembers(t, ctx, s, "c")
		}},
		{"a second put of a connection replaces it", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "a"))
			again := conn("c1", "a")
			again.UserAgent = "second"
			mustPut(t, ctx, s, again)
			if got := mustGet(t, ctx, s, "c1"); got.UserAgent != "second" {
				t.Fatalf("UserAgent = %q, want the second put's", got.UserAgent)
			}
			assertMembers(t, ctx, s, "a", "c1")
		}},
		{"a second put leaves the connection in exactly its rooms", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			// A replayed $connect: the memberships the connection gained
			// since (a join), and rooms the new record does not name, go.
			mustPut(t, ctx, s, conn("c1", "a", "b"))
			must(t, s.Join(ctx, "c1", "c", expires))
			mustPut(t, ctx, s, conn("c2", "a"))
			mustPut(t, ctx, s, conn("c1", "b", "d"))
			if got := mustGet(t, ctx, s, "c1"); !slices.Equal(got.Rooms, []string{"b", "d"}) {
				t.Fatalf("rooms = %v, want [b d]", got.Rooms)
			}
			assertMembers(t, ctx, s, "a", "c2")
			assertMembers(t, ctx, s, "b", "c1")
			assertMembers(t, ctx, s, "c")
			assertMembers(t, ctx, s, "d", "c1")
			mustPut(t, ctx, s, conn("c1"))
			assertMembers(t, ctx, s, "b")
			assertMembers(t, ctx, s, "d")
		}},
		{"put past MaxRooms is refused whole", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			err := s.Put(ctx, conn("c1", roomNames(domain.MaxRooms+1)...))
			assertCode(t, err, domain.CodeTooManyRooms)
			_, err = s.Get(ctx, "c1")
			assertIs(t, err, domain.ErrNotFound)
			assertMembers(t, ctx, s, "r00")
		}},
		{"delete removes the connection and its memberships", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "a", "b"))
			mustPut(t, ctx, s, conn("c2", "a"))
			must(t, s.Join(ctx, "c1", "c", expires))
			must(t, s.Delete(ctx, "c1"))
			_, err := s.Get(ctx, "c1")
			assertIs(t, err, domain.ErrNotFound)
			assertMembers(t, ctx, s, "a", "c2")
			assertMembers(t, ctx, s, "b")
			assertMembers(t, ctx, s, "c")
			mustGet(t, ctx, s, "c2")
		}},
		{"delete of a missing connection is not an error", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			must(t, s.Delete(ctx, "nobody"))
			mustPut(t, ctx, s, conn("c1", "a"))
			must(t, s.Delete(ctx, "c1"))
			must(t, s.Delete(ctx, "c1"))
		}},
		{"join adds a room", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "lobby"))
			must(t, s.Join(ctx, "c1", "x", expires))
			assertRooms(t, mustGet(t, ctx, s, "c1"), "lobby", "x")
			assertMembers(t, ctx, s, "x", "c1")
			assertMembers(t, ctx, s, "lobby", "c1")
		}},
		{"join twice is not an error and records one membership", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1"))
			must(t, s.Join(ctx, "c1", "x", expires))
			must(t, s.Join(ctx, "c1", "x", expires.Add(time.Minute)))
			assertRooms(t, mustGet(t, ctx, s, "c1"), "x")
			assertMembers(t, ctx, s, "x", "c1")
		}},
		{"join of a missing connection is not found", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			err := s.Join(ctx, "nobody", "x", expires)
			assertIs(t, err, domain.ErrNotFound)
			assertMembers(t, ctx, s, "x")
		}},
		{"join past MaxRooms is refused", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1"))
			rooms := roomNames(domain.MaxRooms + 1)
			for _, room := range rooms[:domain.MaxRooms] {
				must(t, s.Join(ctx, "c1", room, expires))
			}
			extra := rooms[domain.MaxRooms]
			err := s.Join(ctx, "c1", extra, expires)
			assertCode(t, err, domain.CodeTooManyRooms)
			if errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("too many rooms reported as not found: %v", err)
			}
			assertMembers(t, ctx, s, extra)
			assertRooms(t, mustGet(t, ctx, s, "c1"), rooms[:domain.MaxRooms]...)
			// Rejoining a room one is in stays fine at the limit.
			must(t, s.Join(ctx, "c1", rooms[5], expires))
			must(t, s.Leave(ctx, "c1", rooms[5]))
			must(t, s.Join(ctx, "c1", extra, expires))
			assertMembers(t, ctx, s, extra, "c1")
		}},
		{"leave removes a room", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "a", "b"))
			mustPut(t, ctx, s, conn("c2", "a"))
			must(t, s.Leave(ctx, "c1", "a"))
			assertRooms(t, mustGet(t, ctx, s, "c1"), "b")
			assertMembers(t, ctx, s, "a", "c2")
			must(t, s.Leave(ctx, "c1", "a"))
			must(t, s.Leave(ctx, "c1", "never-joined"))
			must(t, s.Leave(ctx, "c1", "b"))
			assertRooms(t, mustGet(t, ctx, s, "c1"))
			assertMembers(t, ctx, s, "b")
		}},
		{"leave on a missing connection is not found", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			assertIs(t, s.Leave(ctx, "nobody", "a"), domain.ErrNotFound)
		}},
		{"touch sets last seen and expiry only", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			c := conn("c1", "a")
			mustPut(t, ctx, s, c)
			seen := base.Add(time.Minute + 1234567*time.Nanosecond)
			exp := expires.Add(time.Hour + 500*time.Millisecond)
			must(t, s.Touch(ctx, "c1", seen, exp))
			got := mustGet(t, ctx, s, "c1")
			want := domain.Connection{
				ID:          "c1",
				ConnectedAt: base.Truncate(time.Millisecond),
				LastSeenAt:  seen.Truncate(time.Millisecond),
				SourceIP:    c.SourceIP,
				UserAgent:   c.UserAgent,
				Rooms:       []string{"a"},
				ExpiresAt:   exp.Truncate(time.Second),
			}
			assertConnection(t, got, want)
		}},
		{"touch on a missing connection is not found", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			assertIs(t, s.Touch(ctx, "nobody", base, expires), domain.ErrNotFound)
			_, err := s.Get(ctx, "nobody")
			assertIs(t, err, domain.ErrNotFound)
		}},
		{"members come in pages", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			var want []string
			for i := range 3*MembersPageSize + 1 {
				id := fmt.Sprintf("m%02d", i)
				want = append(want, id)
				mustPut(t, ctx, s, conn(id, "big"))
			}
			mustPut(t, ctx, s, conn("outsider", "other"))
			pages, err := collectPages(s.Members(ctx, "big"))
			must(t, err)
			if len(pages) < 4 {
				t.Fatalf("got %d pages for %d members, want at least 4 of at most %d", len(pages), len(want), MembersPageSize)
			}
			var got []string
			for _, p := range pages {
				if len(p) == 0 || len(p) > MembersPageSize {
					t.Fatalf("page of %d ids, want 1..%d: %q", len(p), MembersPageSize, p)
				}
				got = append(got, p...)
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Fatalf("members = %q, want %q", got, want)
			}
		}},
		{"members of an empty room yield nothing", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			pages, err := collectPages(s.Members(ctx, "empty"))
			must(t, err)
			if len(pages) != 0 {
				t.Fatalf("pages = %q, want none", pages)
			}
		}},
		{"members stop when the consumer stops", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			for i := range 2*MembersPageSize + 1 {
				mustPut(t, ctx, s, conn(fmt.Sprintf("m%02d", i), "big"))
			}
			n := 0
			for ids, err := range s.Members(ctx, "big") {
				must(t, err)
				if len(ids) == 0 {
					t.Fatal("empty page")
				}
				n++
				break
			}
			if n != 1 {
				t.Fatalf("consumed %d pages, want 1", n)
			}
		}},
		{"grants are stored with the identity", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			c := conn("c1", "a")
			c.Identity, c.JoinGrants, c.WriteGrants = "ann", []string{"game-*", "a"}, []string{"a"}
			mustPut(t, ctx, s, c)
			got := mustGet(t, ctx, s, "c1")
			if got.Identity != "ann" || !slices.Equal(got.JoinGrants, []string{"a", "game-*"}) || !slices.Equal(got.WriteGrants, []string{"a"}) {
				t.Fatalf("Get = identity %q join %q write %q", got.Identity, got.JoinGrants, got.WriteGrants)
			}
		}},
		{"relay tokens: the burst, then none, then the refill", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "a"))
			limit := domain.RateLimit{Rate: 2, Burst: 3}
			at := fixedTime()
			for i := range 3 {
				if ok, err := s.TakeToken(ctx, "c1", limit, at); err != nil || !ok {
					t.Fatalf("take %d of the burst: %v, %v", i, ok, err)
				}
			}
			if ok, err := s.TakeToken(ctx, "c1", limit, at); err != nil || ok {
				t.Fatalf("take past the burst: %v, %v; want refused", ok, err)
			}
			// Half a second refills one token at 2 a second.
			if ok, err := s.TakeToken(ctx, "c1", limit, at.Add(500*time.Millisecond)); err != nil || !ok {
				t.Fatalf("take after the refill: %v, %v", ok, err)
			}
			if ok, err := s.TakeToken(ctx, "c1", limit, at.Add(500*time.Millisecond)); err != nil || ok {
				t.Fatalf("second take after one refill: %v, %v; want refused", ok, err)
			}
			// The record itself is untouched.
			if got := mustGet(t, ctx, s, "c1"); !slices.Equal(got.Rooms, []string{"a"}) {
				t.Fatalf("rooms after takes: %q", got.Rooms)
			}
		}},
		{"relay tokens of a missing connection", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			_, err := s.TakeToken(ctx, "nobody", domain.RateLimit{Rate: 1, Burst: 1}, fixedTime())
			assertIs(t, err, domain.ErrNotFound)
		}},
		{"a replaced connection starts with a full bucket", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			mustPut(t, ctx, s, conn("c1", "a"))
			limit := domain.RateLimit{Rate: 0.001, Burst: 1}
			if ok, _ := s.TakeToken(ctx, "c1", limit, fixedTime()); !ok {
				t.Fatal("first take refused")
			}
			mustPut(t, ctx, s, conn("c1", "a"))
			if ok, err := s.TakeToken(ctx, "c1", limit, fixedTime()); err != nil || !ok {
				t.Fatalf("take after a replayed $connect: %v, %v", ok, err)
			}
		}},
		{"receipts", func(t *testing.T, ctx context.Context, s domain.ConnectionStore) {
			r, ok := s.(domain.Receipts)
			if !ok {
				t.Fatalf("%T keeps no receipts", s)
			}
			if done, err := r.Delivered(ctx, "m1"); err != nil || done {
				t.Fatalf("Delivered before any: %v, %v", done, err)
			}
			must(t, r.MarkDelivered(ctx, "m1", time.Now().Add(time.Hour)))
			must(t, r.MarkDelivered(ctx, "m-old", time.Now().Add(-time.Second)))
			if done, err := r.Delivered(ctx, "m1"); err != nil || !done {
				t.Fatalf("Delivered after marking: %v, %v", done, err)
			}
			if done, err := r.Delivered(ctx, "m-old"); err != nil || done {
				t.Fatalf("an expired receipt counts: %v, %v", done, err)
			}
			// A receipt is no connection and in no room.
			if _, err := s.Get(ctx, "m1"); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("Get(m1) = %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, t.Context(), newStore(t))
		})
	}
}

func roomNames(n int) []string {
	rooms := make([]string, n)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("r%02d", i)
	}
	return rooms
}

func collectPages(seq func(yield func([]string, error) bool)) ([][]string, error) {
	var pages [][]string
	for ids, err := range seq {
		if err != nil {
			return pages, err
		}
		pages = append(pages, ids)
	}
	return pages, nil
}

func mustPut(t *testing.T, ctx context.Context, s domain.ConnectionStore, c domain.Connection) {
	t.Helper()
	if err := s.Put(ctx, c); err != nil {
		t.Fatalf("Put(%s): %v", c.ID, err)
	}
}

func mustGet(t *testing.T, ctx context.Context, s domain.ConnectionStore, id string) domain.Connection {
	t.Helper()
	c, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func assertIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one matching %v", err, target)
	}
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *domain.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want a *domain.Error with code %s", err, code)
	}
	if e.Status < http.StatusBadRequest || e.Status >= http.StatusInternalServerError {
		t.Fatalf("error %v has status %d, want a client error", err, e.Status)
	}
}

func assertRooms(t *testing.T, c domain.Connection, want ...string) {
	t.Helper()
	got := slices.Clone(c.Rooms)
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("rooms of %s = %q, want %q", c.ID, got, want)
	}
}

func assertMembers(t *testing.T, ctx context.Context, s domain.ConnectionStore, room string, want ...string) {
	t.Helper()
	pages, err := collectPages(s.Members(ctx, room))
	if err != nil {
		t.Fatalf("Members(%s): %v", room, err)
	}
	got := slices.Concat(pages...)
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Members(%s) = %q, want %q", room, got, want)
	}
}

func assertConnection(t *testing.T, got, want domain.Connection) {
	t.Helper()
	var diffs []string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("ConnectedAt", got.ConnectedAt.Equal(want.ConnectedAt), got.ConnectedAt, want.ConnectedAt)
	check("LastSeenAt", got.LastSeenAt.Equal(want.LastSeenAt), got.LastSeenAt, want.LastSeenAt)
	check("SourceIP", got.SourceIP == want.SourceIP, got.SourceIP, want.SourceIP)
	check("UserAgent", got.UserAgent == want.UserAgent, got.UserAgent, want.UserAgent)
	check("Identity", got.Identity == want.Identity, got.Identity, want.Identity)
	check("Rooms", slices.Equal(got.Rooms, want.Rooms), got.Rooms, want.Rooms)
	check("ExpiresAt", got.ExpiresAt.Equal(want.ExpiresAt), got.ExpiresAt, want.ExpiresAt)
	if len(diffs) > 0 {
		t.Fatalf("connection %s:\n%s", want.ID, strings.Join(diffs, "\n"))
	}
}
