package memstore_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/testkit/storetest"
)

func TestConnections(t *testing.T) {
	storetest.ConnectionStore(t, func(*testing.T) domain.ConnectionStore {
		return memstore.NewConnections(memstore.WithPageSize(storetest.MembersPageSize))
	})
}

func TestItems(t *testing.T) {
	storetest.ItemStore(t, func(*testing.T) domain.ItemStore {
		return memstore.NewItems()
	})
}

func TestMembersListsASnapshot(t *testing.T) {
	ctx := t.Context()
	s := memstore.NewConnections(memstore.WithPageSize(2))
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if err := s.Put(ctx, domain.Connection{ID: id, Rooms: []string{"r"}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for ids, err := range s.Members(ctx, "r") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids...)
		// Changes while listing do not show in this listing.
		if err := s.Delete(ctx, "e"); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, domain.Connection{ID: "z", Rooms: []string{"r"}}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("listed %q, want the snapshot %q", got, want)
	}
}

func TestDefaultPageSize(t *testing.T) {
	ctx := t.Context()
	s := memstore.NewConnections()
	for i := range memstore.DefaultPageSize + 1 {
		if err := s.Put(ctx, domain.Connection{ID: fmt.Sprint(i), Rooms: []string{"r"}}); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	for ids, err := range s.Members(ctx, "r") {
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(ids))
	}
	if want := []int{memstore.DefaultPageSize, 1}; !slices.Equal(sizes, want) {
		t.Fatalf("page sizes %v, want %v", sizes, want)
	}
}

func TestStoredValuesAreNotShared(t *testing.T) {
	ctx := t.Context()
	conns := memstore.NewConnections()
	rooms := []string{"a", "b"}
	if err := conns.Put(ctx, domain.Connection{ID: "c", Rooms: rooms}); err != nil {
		t.Fatal(err)
	}
	rooms[0] = "mutated"
	got, err := conns.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	got.Rooms[1] = "mutated"
	if again, _ := conns.Get(ctx, "c"); !slices.Equal(again.Rooms, []string{"a", "b"}) {
		t.Fatalf("rooms = %q after callers mutated their copies", again.Rooms)
	}

	items := memstore.NewItems()
	data := []byte(`{"a":1}`)
	put, err := items.PutItem(ctx, domain.Item{Room: "r", ID: "i", Data: data}, domain.Precondition{}, domain.Change{Now: time.Now(), EventID: "e", HistoryTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	data[2], put.Item.Data[3] = 'X', 'Y'
	if it, _ := items.GetItem(ctx, "r", "i"); string(it.Data) != `{"a":1}` {
		t.Fatalf("data = %s after callers mutated their copies", it.Data)
	}
}

func TestConcurrentJoinsStayWithinMaxRooms(t *testing.T) {
	ctx := t.Context()
	s := memstore.NewConnections()
	if err := s.Put(ctx, domain.Connection{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*domain.MaxRooms)
	for i := range 3 * domain.MaxRooms {
		wg.Go(func() { errs <- s.Join(ctx, "c", fmt.Sprintf("r%d", i), time.Now()) })
	}
	wg.Wait()
	close(errs)
	joined := 0
	for err := range errs {
		var e *domain.Error
		switch {
		case err == nil:
			joined++
		case errors.As(err, &e) && e.Code == domain.CodeTooManyRooms:
		default:
			t.Fatalf("Join: %v", err)
		}
	}
	c, err := s.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if joined != domain.MaxRooms || len(c.Rooms) != domain.MaxRooms {
		t.Fatalf("%d joins succeeded, %d rooms recorded, want %d", joined, len(c.Rooms), domain.MaxRooms)
	}
}
