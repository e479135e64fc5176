package memstore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
)

// TombstoneTTL is how long a deleted item's tombstone is kept (the DynamoDB
// store lets TTL remove it then; this store keeps it).
const TombstoneTTL = 30 * 24 * time.Hour

// Items is an in-memory domain.ItemStore.
type Items struct {
	mu    sync.Mutex
	rooms map[string]map[string]storedItem
	// history is each room's seq counter and the events it keeps.
	history map[string]*roomHistory
}

// roomHistory mirrors the room's counter record and event records.
type roomHistory struct {
	last   int64
	events []keptEvent // in seq order
}

type keptEvent struct {
	domain.Event
	expiresAt time.Time
	// pendingAt is when it went on the outbox or was last claimed, to the
	// millisecond as the DynamoDB store keeps it; zero once published.
	pendingAt time.Time
}

var _ domain.ItemStore = (*Items)(nil)

// storedItem mirrors an items-table record: a tombstone has deleted set
// and no data.
type storedItem struct {
	data      []byte
	version   int64
	updatedAt time.Time
	deleted   bool
	expiresAt time.Time
	// event is the last write's event, which a repeated delete returns.
	event domain.Event
}

// NewItems returns an empty store.
func NewItems() *Items {
	return &Items{rooms: map[string]map[string]storedItem{}, history: map[string]*roomHistory{}}
}

// PutItem creates or replaces the item, continuing its version sequence
// across deletions.
func (s *Items) PutItem(ctx context.Context, it domain.Item, pre domain.Precondition, ch domain.Change) (domain.Put, error) {
	if err := ctx.Err(); err != nil {
		return domain.Put{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.rooms[it.Room][it.ID]
	live := exists && !old.deleted
	if pre.IfMatch > 0 && (!live || old.version != pre.IfMatch) {
		return domain.Put{}, fmt.Errorf("memstore: put item %s/%s if-match %d: %w", it.Room, it.ID, pre.IfMatch, domain.ErrPrecondition)
	}
	if pre.IfNoneMatch && live {
		return domain.Put{}, fmt.Errorf("memstore: put item %s/%s if-none-match: %w", it.Room, it.ID, domain.ErrConflict)
	}
	rec := storedItem{
		data:      slices.Clone([]byte(it.Data)),
		version:   old.version + 1,
		updatedAt: ch.Now.UTC(),
	}
	stored := rec.item(it.Room, it.ID)
	rec.event = s.record(it.Room, ch, func(seq int64) domain.Event { return domain.PutEvent(stored, ch.EventID, seq) })
	if s.rooms[it.Room] == nil {
		s.rooms[it.Room] = map[string]storedItem{}
	}
	s.rooms[it.Room][it.ID] = rec
	return domain.Put{Item: stored, Created: !live, Event: rec.event}, nil
}

// record takes the room's next seq for the event ev makes of it and keeps
// it in the history (with the item's write, under one lock: atomically).
func (s *Items) record(room string, ch domain.Change, ev func(seq int64) domain.Event) domain.Event {
	h := s.history[room]
	if h == nil {
		h = &roomHistory{}
		s.history[room] = h
	}
	// Drop what TTL would have: the oldest first, so the history stays
	// bounded in a long-running stack.
	for len(h.events) > 0 && !h.events[0].expiresAt.After(ch.Now) {
		h.events = h.events[1:]
	}
	h.last++
	e := ev(h.last)
	h.events = append(h.events, keptEvent{Event: e, expiresAt: ch.Now.Add(ch.HistoryTTL), pendingAt: ch.Now.Truncate(time.Millisecond)})
	return e
}

// DeleteItem tombstones the item; deleting a tombstone returns it again
// with Repeated set.
func (s *Items) DeleteItem(ctx context.Context, room, id string, pre domain.Precondition, ch domain.Change) (domain.Deleted, error) {
	if err := ctx.Err(); err != nil {
		return domain.Deleted{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.rooms[room][id]
	switch {
	case !exists:
		return domain.Deleted{}, fmt.Errorf("memstore: delete item %s/%s: %w", room, id, domain.ErrNotFound)
	case old.deleted:
		return domain.Deleted{Item: old.item(room, id), Repeated: true, Event: old.event}, nil
	case pre.IfMatch > 0 && old.version != pre.IfMatch:
		return domain.Deleted{}, fmt.Errorf("memstore: delete item %s/%s if-match %d: %w", room, id, pre.IfMatch, domain.ErrPrecondition)
	}
	rec := storedItem{
		version:   old.version + 1,
		updatedAt: ch.Now.UTC(),
		deleted:   true,
		expiresAt: ch.Now.Add(TombstoneTTL),
	}
	stored := rec.item(room, id)
	rec.event = s.record(room, ch, func(seq int64) domain.Event { return domain.DeleteEvent(stored, ch.EventID, seq) })
	s.rooms[room][id] = rec
	return domain.Deleted{Item: stored, Event: rec.event}, nil
}

// ListEvents returns the kept events of room after seq after; expired ones
// are gone, as DynamoDB's TTL removes them.
func (s *Items) ListEvents(ctx context.Context, room string, after int64, limit int) (domain.EventPage, error) {
	if err := ctx.Err(); err != nil {
		return domain.EventPage{}, err
	}
	limit = domain.ListLimit(limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[room]
	if h == nil {
		// A room never written (or lost with a restart): after > 0 is
		// from a store that had it.
		return domain.HistoryPage(nil, after, 0, limit), nil
	}
	now := time.Now()
	var kept []domain.Event
	for _, e := range h.events {
		if e.Seq > after && e.expiresAt.After(now) {
			kept = append(kept, e.Event)
		}
	}
	return domain.HistoryPage(kept, after, h.last, limit), nil
}

// GetItem returns a live item; a tombstone is not found.
func (s *Items) GetItem(ctx context.Context, room, id string) (domain.Item, error) {
	if err := ctx.Err(); err != nil {
		return domain.Item{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.rooms[room][id]
	if !ok || rec.deleted {
		return domain.Item{}, fmt.Errorf("memstore: get item %s/%s: %w", room, id, domain.ErrNotFound)
	}
	return rec.item(room, id), nil
}

// ListItems returns up to limit live items of room with ids after the
// cursor's, ordered by id.
func (s *Items) ListItems(ctx context.Context, room, cursor string, limit int) (domain.ItemPage, error) {
	if err := ctx.Err(); err != nil {
		return domain.ItemPage{}, err
	}
	after, err := domain.DecodeCursor(cursor)
	if err != nil {
		return domain.ItemPage{}, err
	}
	limit = domain.ListLimit(limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.rooms[room]))
	for id, rec := range s.rooms[room] {
		if !rec.deleted && id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	fetched := make([]domain.Item, 0, min(limit+1, len(ids)))
	for _, id := range ids[:min(limit+1, len(ids))] {
		fetched = append(fetched, s.rooms[room][id].item(room, id))
	}
	return domain.Page(fetched, limit, false), nil
}

func (r storedItem) item(room, id string) domain.Item {
	it := domain.Item{Room: room, ID: id, Version: r.version, UpdatedAt: r.updatedAt}
	if !r.deleted {
		it.Data = slices.Clone(r.data)
	}
	return it
}

// LastSeq returns the room's latest seq.
func (s *Items) LastSeq(ctx context.Context, room string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.history[room]; h != nil {
		return h.last, nil
	}
	return 0, nil
}

// kept returns the room's event of seq, nil if it is not kept.
func (s *Items) kept(room string, seq int64) *keptEvent {
	h := s.history[room]
	if h == nil || len(h.events) == 0 {
		return nil
	}
	// Seqs in a room's history have no holes.
	i := seq - h.events[0].Seq
	if i < 0 || i >= int64(len(h.events)) {
		return nil
	}
	return &h.events[i]
}

// MarkPublished takes the event off the outbox.
func (s *Items) MarkPublished(ctx context.Context, room string, seq int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.kept(room, seq); e != nil {
		e.pendingAt = time.Time{}
	}
	return nil
}

// Unpublished returns the unexpired events on the outbox since before,
// oldest first.
func (s *Items) Unpublished(ctx context.Context, before time.Time, limit int) ([]domain.Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []domain.Pending
	for _, h := range s.history {
		for _, e := range h.events {
			if !e.pendingAt.IsZero() && e.pendingAt.Before(before) && e.expiresAt.After(now) {
				out = append(out, domain.Pending{Event: e.Event, At: e.pendingAt})
			}
		}
	}
	slices.SortFunc(out, func(a, b domain.Pending) int { return a.At.Compare(b.At) })
	return out[:min(limit, len(out))], nil
}

// Claim moves the pending event's time to now if it still is p.At.
func (s *Items) Claim(ctx context.Context, p domain.Pending, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.kept(p.Event.Room, p.Event.Seq)
	if e == nil || e.pendingAt.IsZero() || !e.pendingAt.Equal(p.At) {
		return false, nil
	}
	e.pendingAt = now.Truncate(time.Millisecond)
	return true, nil
}
