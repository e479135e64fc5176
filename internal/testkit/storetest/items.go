package storetest

import (
	"bytes"
	"context"
	"encoding/json"
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

// ItemStore runs the item-store contract; newStore returns an empty store
// for each subtest.
func ItemStore(t *testing.T, newStore func(t *testing.T) domain.ItemStore) {
	// A zone other than UTC checks that stores keep UpdatedAt in UTC.
	now := fixedTime().In(time.FixedZone("UTC+1", 3600))
	later := now.Add(time.Minute + 42*time.Nanosecond)
	item := func(room, id, data string) domain.Item {
		return domain.Item{Room: room, ID: id, Data: json.RawMessage(data)}
	}
	none := domain.Precondition{}

	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s domain.ItemStore)
	}{
		{"put creates version 1", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			got := mustPutItem(t, ctx, s, item("r", "a", `{"n":1}`), none, now)
			want := domain.Item{Room: "r", ID: "a", Data: json.RawMessage(`{"n":1}`), Version: 1, UpdatedAt: now}
			assertItem(t, got, want)
			assertItem(t, mustGetItem(t, ctx, s, "r", "a"), want)
		}},
		{"a page holds at most about a megabyte of data", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			big := `{"pad":"` + strings.Repeat("x", 120*1024) + `"}`
			for i := range 10 {
				mustPutItem(t, ctx, s, item("big", fmt.Sprintf("i%02d", i), big), none, now)
			}
			var seen []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("listing does not end")
				}
				page, err := s.ListItems(ctx, "big", cursor, 1000)
				must(t, err)
				size := 0
				for _, it := range page.Items {
					seen = append(seen, it.ID)
					size += len(it.Data)
				}
				if size > domain.MaxPageBytes {
					t.Errorf("page of %d bytes, over %d", size, domain.MaxPageBytes)
				}
				if page.Next == "" {
					break
				}
				cursor = page.Next
			}
			if len(seen) != 10 || seen[0] != "i00" || seen[9] != "i09" {
				t.Errorf("listed %v, want i00..i09 once each", seen)
			}
		}},
		{"put reports whether it created the item", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			step := func(what string, want bool) {
				t.Helper()
				p, err := s.PutItem(ctx, item("r", "a", `{}`), none, at(now))
				must(t, err)
				if p.Created != want {
					t.Errorf("%s: Created = %v, want %v", what, p.Created, want)
				}
			}
			step("first put", true)
			step("replace", false)
			_, err := s.DeleteItem(ctx, "r", "a", none, at(now))
			must(t, err)
			step("put over a tombstone", true)
		}},
		{"data is kept byte for byte", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			data := " {\n\t\"z\" : [1, 2.50, 1e3, \"\\u00e9 é\"],\r\n  \"a\":null ,\"\":{}}\n"
			got := mustPutItem(t, ctx, s, item("r", "a", data), none, now)
			if string(got.Data) != data {
				t.Fatalf("PutItem data = %q, want %q", got.Data, data)
			}
			if g := mustGetItem(t, ctx, s, "r", "a"); string(g.Data) != data {
				t.Fatalf("GetItem data = %q, want %q", g.Data, data)
			}
			page, err := s.ListItems(ctx, "r", "", 10)
			must(t, err)
			if len(page.Items) != 1 || string(page.Items[0].Data) != data {
				t.Fatalf("ListItems = %+v, want the item with data %q", page.Items, data)
			}
		}},
		{"versions grow across put, delete and put", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			if v := mustPutItem(t, ctx, s, item("r", "a", `2`), none, now).Version; v != 2 {
				t.Fatalf("second put version = %d, want 2", v)
			}
			del, err := s.DeleteItem(ctx, "r", "a", none, at(later))
			must(t, err)
			if del.Repeated || del.Item.Version != 3 || del.Item.Room != "r" || del.Item.ID != "a" || !del.Item.UpdatedAt.Equal(later) {
				t.Fatalf("delete = %+v, want version 3 at %v, not repeated", del, later)
			}
			if len(del.Item.Data) != 0 {
				t.Fatalf("tombstone data = %q, want none", del.Item.Data)
			}
			_, err = s.GetItem(ctx, "r", "a")
			assertIs(t, err, domain.ErrNotFound)

			again, err := s.DeleteItem(ctx, "r", "a", none, at(later.Add(time.Hour)))
			must(t, err)
			if !again.Repeated || again.Item.Version != 3 || !again.Item.UpdatedAt.Equal(later) {
				t.Fatalf("repeated delete = %+v, want the version 3 tombstone again, repeated", again)
			}
			got := mustPutItem(t, ctx, s, item("r", "a", `4`), none, later)
			assertItem(t, got, domain.Item{Room: "r", ID: "a", Data: json.RawMessage(`4`), Version: 4, UpdatedAt: later})
			assertItem(t, mustGetItem(t, ctx, s, "r", "a"), got)
		}},
		{"if-match writes only over the matching version", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			mustPutItem(t, ctx, s, item("r", "a", `2`), domain.Precondition{IfMatch: 1}, now)
			_, err := s.PutItem(ctx, item("r", "a", `stale`), domain.Precondition{IfMatch: 1}, at(later))
			assertIs(t, err, domain.ErrPrecondition)
			assertItem(t, mustGetItem(t, ctx, s, "r", "a"), domain.Item{Room: "r", ID: "a", Data: json.RawMessage(`2`), Version: 2, UpdatedAt: now})
		}},
		{"if-match on a missing item fails", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			_, err := s.PutItem(ctx, item("r", "a", `1`), domain.Precondition{IfMatch: 1}, at(now))
			assertIs(t, err, domain.ErrPrecondition)
			_, err = s.GetItem(ctx, "r", "a")
			assertIs(t, err, domain.ErrNotFound)
		}},
		{"if-match on a deleted item fails", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			_, err := s.DeleteItem(ctx, "r", "a", none, at(now))
			must(t, err)
			for _, v := range []int64{1, 2} {
				_, err = s.PutItem(ctx, item("r", "a", `x`), domain.Precondition{IfMatch: v}, at(now))
				assertIs(t, err, domain.ErrPrecondition)
			}
		}},
		{"if-none-match creates only", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			create := domain.Precondition{IfNoneMatch: true}
			mustPutItem(t, ctx, s, item("r", "a", `1`), create, now)
			_, err := s.PutItem(ctx, item("r", "a", `2`), create, at(later))
			assertIs(t, err, domain.ErrConflict)
			assertItem(t, mustGetItem(t, ctx, s, "r", "a"), domain.Item{Room: "r", ID: "a", Data: json.RawMessage(`1`), Version: 1, UpdatedAt: now})
			_, err = s.DeleteItem(ctx, "r", "a", none, at(now))
			must(t, err)
			got := mustPutItem(t, ctx, s, item("r", "a", `3`), create, later)
			if got.Version != 3 {
				t.Fatalf("create over a tombstone: version %d, want 3", got.Version)
			}
		}},
		{"delete of a missing item is not found", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			_, err := s.DeleteItem(ctx, "r", "nothing", none, at(now))
			assertIs(t, err, domain.ErrNotFound)
			_, err = s.DeleteItem(ctx, "r", "nothing", domain.Precondition{IfMatch: 1}, at(now))
			assertIs(t, err, domain.ErrNotFound)
		}},
		{"delete with if-match", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			mustPutItem(t, ctx, s, item("r", "a", `2`), none, now)
			_, err := s.DeleteItem(ctx, "r", "a", domain.Precondition{IfMatch: 1}, at(now))
			assertIs(t, err, domain.ErrPrecondition)
			mustGetItem(t, ctx, s, "r", "a")
			del, err := s.DeleteItem(ctx, "r", "a", domain.Precondition{IfMatch: 2}, at(now))
			must(t, err)
			if del.Item.Version != 3 || del.Repeated {
				t.Fatalf("delete = %+v, want version 3", del)
			}
		}},
		{"get of a missing item is not found", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			_, err := s.GetItem(ctx, "r", "nothing")
			assertIs(t, err, domain.ErrNotFound)
		}},
		{"items are kept per room", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r1", "a", `1`), none, now)
			mustPutItem(t, ctx, s, item("r2", "a", `2`), none, now)
			if got := mustGetItem(t, ctx, s, "r1", "a"); string(got.Data) != `1` {
				t.Fatalf("r1/a data = %s", got.Data)
			}
			_, err := s.DeleteItem(ctx, "r2", "a", none, at(now))
			must(t, err)
			mustGetItem(t, ctx, s, "r1", "a")
		}},
		{"list of an empty room", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			page, err := s.ListItems(ctx, "empty", "", 10)
			must(t, err)
			if len(page.Items) != 0 || page.Next != "" {
				t.Fatalf("ListItems = %+v, want an empty last page", page)
			}
		}},
		{"list rejects a malformed cursor", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			for _, cursor := range []string{"!!!", "a b", "%%", "="} {
				_, err := s.ListItems(ctx, "r", cursor, 10)
				var e *domain.Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != domain.CodeBadRequest {
					t.Fatalf("ListItems(cursor %q) error = %v, want a 400 %s", cursor, err, domain.CodeBadRequest)
				}
			}
		}},
		{"writes take the room's seqs and keep their events", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			p1, err := s.PutItem(ctx, item("r", "a", `{"n":1}`), none, domain.Change{Now: now, EventID: "e1", HistoryTTL: time.Hour * 1e6})
			must(t, err)
			p2, err := s.PutItem(ctx, item("r", "b", `{"n": 2}`), none, domain.Change{Now: later, EventID: "e2", HistoryTTL: time.Hour * 1e6})
			must(t, err)
			d3, err := s.DeleteItem(ctx, "r", "a", none, domain.Change{Now: later, EventID: "e3", HistoryTTL: time.Hour * 1e6})
			must(t, err)
			other, err := s.PutItem(ctx, item("other", "a", `1`), none, at(now))
			must(t, err)
			if p1.Event.Seq != 1 || p2.Event.Seq != 2 || d3.Event.Seq != 3 || other.Event.Seq != 1 {
				t.Fatalf("seqs %d %d %d, other room %d; want 1 2 3, 1", p1.Event.Seq, p2.Event.Seq, d3.Event.Seq, other.Event.Seq)
			}
			want := []domain.Event{
				{EventID: "e1", Seq: 1, Type: domain.EventItemPut, Room: "r", ID: "a", Version: 1, Data: json.RawMessage(`{"n":1}`), Time: now.UTC()},
				{EventID: "e2", Seq: 2, Type: domain.EventItemPut, Room: "r", ID: "b", Version: 1, Data: json.RawMessage(`{"n": 2}`), Time: later.UTC()},
				{EventID: "e3", Seq: 3, Type: domain.EventItemDeleted, Room: "r", ID: "a", Version: 2, Time: later.UTC()},
			}
			for i, got := range []domain.Event{p1.Event, p2.Event, d3.Event} {
				assertEvent(t, got, want[i])
			}
			page, err := s.ListEvents(ctx, "r", 0, 10)
			must(t, err)
			if page.Last != 3 || page.More || page.Expired || len(page.Events) != 3 {
				t.Fatalf("ListEvents(0) = last %d more %v expired %v, %d events", page.Last, page.More, page.Expired, len(page.Events))
			}
			for i, got := range page.Events {
				assertEvent(t, got, want[i])
			}
			page, err = s.ListEvents(ctx, "r", 1, 1)
			must(t, err)
			if len(page.Events) != 1 || page.Events[0].Seq != 2 || !page.More || page.Last != 3 {
				t.Fatalf("ListEvents(1, limit 1) = %+v", page)
			}
			page, err = s.ListEvents(ctx, "r", 3, 10)
			must(t, err)
			if len(page.Events) != 0 || page.More || page.Expired || page.Last != 3 {
				t.Fatalf("ListEvents(3) = %+v; want nothing more", page)
			}
			if page, err = s.ListEvents(ctx, "never-written", 0, 10); err != nil || page.Last != 0 || len(page.Events) != 0 || page.Expired {
				t.Fatalf("ListEvents of an empty room = %+v, %v", page, err)
			}
			// A client that saw seq 5 of a room the store no longer has
			// (a local store restarted empty) must read the room again.
			if page, err = s.ListEvents(ctx, "never-written", 5, 10); err != nil || !page.Expired || page.Last != 0 {
				t.Fatalf("ListEvents(5) of a room never written = %+v, %v; want expired, last 0", page, err)
			}
			if page, err = s.ListEvents(ctx, "r", 1<<62+5, 10); err != nil || !page.Expired || page.Last != 3 {
				t.Fatalf("ListEvents(huge) = %+v, %v; want expired, last 3", page, err)
			}
			if page, err = s.ListEvents(ctx, "r", 3, 10); err != nil || page.Expired || len(page.Events) != 0 || page.More {
				t.Fatalf("ListEvents(last) = %+v, %v; want an empty page", page, err)
			}
			// A client ahead of the room: the store lost it.
			if page, err = s.ListEvents(ctx, "r", 7, 10); err != nil || !page.Expired || page.Last != 3 {
				t.Fatalf("ListEvents(7) of a room at 3 = %+v, %v; want expired", page, err)
			}
			// The history is no item.
			list, err := s.ListItems(ctx, "r", "", 100)
			must(t, err)
			if len(list.Items) != 1 || list.Items[0].ID != "b" {
				t.Fatalf("ListItems = %+v; want only b", list.Items)
			}
		}},
		{"a refused write takes no seq", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			if _, err := s.PutItem(ctx, item("r", "a", `2`), domain.Precondition{IfMatch: 9}, at(now)); !errors.Is(err, domain.ErrPrecondition) {
				t.Fatalf("stale put: %v", err)
			}
			if _, err := s.DeleteItem(ctx, "r", "ghost", none, at(now)); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("delete of nothing: %v", err)
			}
			p, err := s.PutItem(ctx, item("r", "a", `3`), none, at(now))
			must(t, err)
			if p.Event.Seq != 2 {
				t.Fatalf("seq after two refused writes = %d, want 2", p.Event.Seq)
			}
		}},
		{"a repeated delete returns the event it recorded", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			mustPutItem(t, ctx, s, item("r", "a", `1`), none, now)
			first, err := s.DeleteItem(ctx, "r", "a", none, at(later))
			must(t, err)
			again, err := s.DeleteItem(ctx, "r", "a", none, at(later.Add(time.Hour)))
			must(t, err)
			if !again.Repeated || again.Event.EventID != first.Event.EventID || again.Event.Seq != first.Event.Seq || again.Event.Type != domain.EventItemDeleted {
				t.Fatalf("repeated delete event %+v, first %+v", again.Event, first.Event)
			}
			if page, _ := s.ListEvents(ctx, "r", 0, 10); page.Last != 2 {
				t.Fatalf("a repeated delete took a seq: last %d", page.Last)
			}
		}},
		{"history past its TTL is expired", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			old := time.Now().Add(-2 * time.Hour)
			_, err := s.PutItem(ctx, item("r", "a", `1`), none, domain.Change{Now: old, EventID: "old", HistoryTTL: time.Hour})
			must(t, err)
			_, err = s.PutItem(ctx, item("r", "a", `2`), none, domain.Change{Now: time.Now(), EventID: "new", HistoryTTL: time.Hour})
			must(t, err)
			page, err := s.ListEvents(ctx, "r", 0, 10)
			must(t, err)
			if !page.Expired || page.Last != 2 {
				t.Fatalf("ListEvents(0) = %+v; want expired, last 2", page)
			}
			page, err = s.ListEvents(ctx, "r", 1, 10)
			must(t, err)
			if page.Expired || len(page.Events) != 1 || page.Events[0].EventID != "new" {
				t.Fatalf("ListEvents(1) = %+v; want the kept one", page)
			}
		}},
		{"every write's event is on the outbox until marked published", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			put, err := s.PutItem(ctx, item("r", "a", `{"n":1}`), none, at(now))
			must(t, err)
			del, err := s.DeleteItem(ctx, "r", "a", none, at(later))
			must(t, err)
			if got := outboxSeqs(t, ctx, s, now.Truncate(time.Millisecond)); len(got) != 0 {
				t.Fatalf("Unpublished(before the first write) = %v", got)
			}
			if got := outboxSeqs(t, ctx, s, now.Add(time.Second)); !slices.Equal(got, []int64{1}) {
				t.Fatalf("Unpublished(after the first write) = %v, want [1]", got)
			}
			ps, err := s.Unpublished(ctx, later.Add(time.Second), 10)
			must(t, err)
			if len(ps) != 2 || !ps[0].At.Equal(now.Truncate(time.Millisecond)) {
				t.Fatalf("Unpublished = %+v, want both, the first at %v", ps, now)
			}
			assertEvent(t, ps[0].Event, put.Event)
			assertEvent(t, ps[1].Event, del.Event)
			if ps, err := s.Unpublished(ctx, later.Add(time.Second), 1); err != nil || len(ps) != 1 || ps[0].Event.Seq != 1 {
				t.Fatalf("Unpublished(limit 1) = %+v, %v; want the oldest", ps, err)
			}
			must(t, s.MarkPublished(ctx, "r", 1))
			must(t, s.MarkPublished(ctx, "r", 1))
			must(t, s.MarkPublished(ctx, "r", 99))
			if got := outboxSeqs(t, ctx, s, later.Add(time.Second)); !slices.Equal(got, []int64{2}) {
				t.Fatalf("Unpublished after marking seq 1 = %v, want [2]", got)
			}
			// Marking a seq that was never written writes nothing.
			if page, _ := s.ListEvents(ctx, "r", 0, 100); len(page.Events) != 2 || page.Last != 2 {
				t.Fatalf("history after marking = %+v", page)
			}
		}},
		{"of two claims of a pending event one wins", func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			_, err := s.PutItem(ctx, item("r", "a", `{}`), none, at(now))
			must(t, err)
			ps, err := s.Unpublished(ctx, now.Add(time.Second), 10)
			must(t, err)
			if len(ps) != 1 {
				t.Fatalf("Unpublished = %+v", ps)
			}
			claimAt := now.Add(time.Hour)
			won, err := s.Claim(ctx, ps[0], claimAt)
			must(t, err)
			again, err := s.Claim(ctx, ps[0], claimAt.Add(time.Second))
			must(t, err)
			if !won || again {
				t.Fatalf("claims = %v, %v; want the first only", won, again)
			}
			if got := outboxSeqs(t, ctx, s, now.Add(time.Second)); len(got) != 0 {
				t.Fatalf("a claimed event is listed before its claim: %v", got)
			}
			ps, err = s.Unpublished(ctx, claimAt.Add(time.Second), 10)
			must(t, err)
			if len(ps) != 1 || !ps[0].At.Equal(claimAt.Truncate(time.Millisecond)) {
				t.Fatalf("Unpublished after the claim = %+v, want it at %v", ps, claimAt)
			}
			must(t, s.MarkPublished(ctx, "r", 1))
			if won, err := s.Claim(ctx, ps[0], claimAt.Add(time.Minute)); err != nil || won {
				t.Fatalf("claim of a published event = %v, %v", won, err)
			}
		}},
	}

	// Live and deleted items interleaved, in an order ListItems must sort,
	// with ids only a byte-wise order sorts right and tombstones last.
	ids := []string{"b", "A", "a", "a-1", "a.1", "a:1", "a_1", "Z9", "0", "c", "d", "e", "f"}
	deleted := map[string]bool{"A": true, "a.1": true, "a:1": true, "a_1": true, "e": true, "f": true}
	var live []string
	for _, id := range ids {
		if !deleted[id] {
			live = append(live, id)
		}
	}
	sort.Strings(live)
	for _, limit := range []int{1, 2, 3, len(live), 0, 5000} {
		tests = append(tests, struct {
			name string
			run  func(t *testing.T, ctx context.Context, s domain.ItemStore)
		}{fmt.Sprintf("list pages past tombstones, limit %d", limit), func(t *testing.T, ctx context.Context, s domain.ItemStore) {
			for i, id := range ids {
				mustPutItem(t, ctx, s, item("r", id, fmt.Sprintf(`{"i":%d}`, i)), none, now)
			}
			mustPutItem(t, ctx, s, item("other", "a", `{}`), none, now)
			for id := range deleted {
				_, err := s.DeleteItem(ctx, "r", id, none, at(now))
				must(t, err)
			}
			perPage := limit
			if perPage <= 0 || perPage > len(live) {
				perPage = len(live)
			}
			wantPages := (len(live) + perPage - 1) / perPage
			var got []string
			cursor := ""
			for page := 1; ; page++ {
				if page > wantPages {
					t.Fatalf("more than %d pages (cursor %q)", wantPages, cursor)
				}
				p, err := s.ListItems(ctx, "r", cursor, limit)
				must(t, err)
				if len(p.Items) == 0 || len(p.Items) > perPage {
					t.Fatalf("page %d has %d items, want 1..%d", page, len(p.Items), perPage)
				}
				for _, it := range p.Items {
					if it.Room != "r" || it.Version != 1 || !it.UpdatedAt.Equal(now) || len(it.Data) == 0 {
						t.Fatalf("listed item = %+v", it)
					}
					got = append(got, it.ID)
				}
				if p.Next == "" {
					if page != wantPages {
						t.Fatalf("last page is %d, want %d", page, wantPages)
					}
					break
				}
				cursor = p.Next
			}
			if !slices.Equal(got, live) {
				t.Fatalf("listed %q, want %q", got, live)
			}
		}})
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, t.Context(), newStore(t))
		})
	}
}

func assertEvent(t *testing.T, got, want domain.Event) {
	t.Helper()
	if got.EventID != want.EventID || got.Seq != want.Seq || got.Type != want.Type || got.Room != want.Room || got.ID != want.ID ||
		got.Version != want.Version || !bytes.Equal(got.Data, want.Data) || !got.Time.Equal(want.Time.Truncate(time.Microsecond)) && !got.Time.Equal(want.Time) {
		t.Errorf("event %+v\nwant  %+v", got, want)
	}
}

// outboxSeqs returns the seqs of the outbox's events since before.
func outboxSeqs(t *testing.T, ctx context.Context, s domain.ItemStore, before time.Time) []int64 {
	t.Helper()
	ps, err := s.Unpublished(ctx, before, 100)
	must(t, err)
	var seqs []int64
	for _, p := range ps {
		seqs = append(seqs, p.Event.Seq)
	}
	return seqs
}

// at is a write's Change at now: a fresh event id, history kept for good.
func at(now time.Time) domain.Change {
	// The contract's clock is fixed in the past; its history must not
	// expire by the real one.
	return domain.Change{Now: now, EventID: domain.NewID(), HistoryTTL: 100 * 365 * 24 * time.Hour}
}

func mustPutItem(t *testing.T, ctx context.Context, s domain.ItemStore, it domain.Item, pre domain.Precondition, now time.Time) domain.Item {
	t.Helper()
	got, err := s.PutItem(ctx, it, pre, at(now))
	if err != nil {
		t.Fatalf("PutItem(%s/%s): %v", it.Room, it.ID, err)
	}
	return got.Item
}

func mustGetItem(t *testing.T, ctx context.Context, s domain.ItemStore, room, id string) domain.Item {
	t.Helper()
	got, err := s.GetItem(ctx, room, id)
	if err != nil {
		t.Fatalf("GetItem(%s/%s): %v", room, id, err)
	}
	return got
}

func assertItem(t *testing.T, got, want domain.Item) {
	t.Helper()
	if got.Room != want.Room || got.ID != want.ID || !bytes.Equal(got.Data, want.Data) ||
		got.Version != want.Version || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("item = {%s/%s v%d %s %v}, want {%s/%s v%d %s %v}",
			got.Room, got.ID, got.Version, got.Data, got.UpdatedAt,
			want.Room, want.ID, want.Version, want.Data, want.UpdatedAt)
	}
	if got.UpdatedAt.Location() != time.UTC {
		t.Fatalf("UpdatedAt %v is not in UTC", got.UpdatedAt)
	}
}
