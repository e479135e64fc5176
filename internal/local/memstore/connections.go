// Package memstore keeps connections and items in memory with the same
// semantics as the DynamoDB stores, for unit tests and the local stack.
package memstore

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
)

// DefaultPageSize is how many member ids Members yields at a time, about
// what one of the DynamoDB store's 1 MB query pages holds.
const DefaultPageSize = 10000

// Option configures Connections.
type Option func(*Connections)

// WithPageSize sets how many ids each Members page holds (n <= 0 keeps the
// default); tests use a small one to exercise paging.
func WithPageSize(n int) Option {
	return func(c *Connections) {
		if n > 0 {
			c.pageSize = n
		}
	}
}

// Connections is an in-memory domain.ConnectionStore.
type Connections struct {
	pageSize int

	mu    sync.Mutex
	conns map[string]domain.Connection
	// rooms maps a room to its members' ids and membership expiry; like the
	// table's membership records, a room's entries outlive nothing else.
	rooms map[string]map[string]time.Time
	// buckets are the connections' relay rate-limit buckets.
	buckets map[string]domain.Bucket
	// receipts are delivered messages' ids, with their expiry.
	receipts map[string]time.Time
}

var _ domain.ConnectionStore = (*Connections)(nil)

// NewConnections returns an empty store.
func NewConnections(opts ...Option) *Connections {
	c := &Connections{
		pageSize: DefaultPageSize,
		conns:    map[string]domain.Connection{},
		buckets:  map[string]domain.Bucket{},
		receipts: map[string]time.Time{},
		rooms:    map[string]map[string]time.Time{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Put stores c and a membership for each of its rooms, replacing a
// connection stored under the same id with all its memberships.
func (s *Connections) Put(ctx context.Context, c domain.Connection) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c = normalize(c)
	if len(c.Rooms) > domain.MaxRooms {
		return domain.TooManyRooms(c.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.conns[c.ID]; ok {
		for _, room := range old.Rooms {
			s.removeMember(room, c.ID)
		}
	}
	s.conns[c.ID] = c
	delete(s.buckets, c.ID)
	for _, room := range c.Rooms {
		s.addMember(room, c.ID, c.ExpiresAt)
	}
	return nil
}

// Get returns the connection or an error matching domain.ErrNotFound.
func (s *Connections) Get(ctx context.Context, id string) (domain.Connection, error) {
	if err := ctx.Err(); err != nil {
		return domain.Connection{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return domain.Connection{}, fmt.Errorf("memstore: connection %s: %w", id, domain.ErrNotFound)
	}
	c.Rooms = slices.Clone(c.Rooms)
	return c, nil
}

// Delete removes the connection and its memberships.
func (s *Connections) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return nil
	}
	for _, room := range c.Rooms {
		s.removeMember(room, id)
	}
	delete(s.conns, id)
	delete(s.buckets, id)
	return nil
}

// Touch sets LastSeenAt and ExpiresAt.
func (s *Connections) Touch(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return fmt.Errorf("memstore: touch connection %s: %w", id, domain.ErrNotFound)
	}
	c.LastSeenAt = millis(lastSeen)
	c.ExpiresAt = seconds(expiresAt)
	s.conns[id] = c
	return nil
}

// Join adds the connection to room.
func (s *Connections) Join(ctx context.Context, id, room string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return fmt.Errorf("memstore: join connection %s to %s: %w", id, room, domain.ErrNotFound)
	}
	if !slices.Contains(c.Rooms, room) {
		if len(c.Rooms) >= domain.MaxRooms {
			return domain.TooManyRooms(id)
		}
		c.Rooms = append(slices.Clone(c.Rooms), room)
		sort.Strings(c.Rooms)
		s.conns[id] = c
	}
	s.addMember(room, id, seconds(expiresAt))
	return nil
}

// Leave removes the connection from room.
func (s *Connections) Leave(ctx context.Context, id, room string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return fmt.Errorf("memstore: leave connection %s from %s: %w", id, room, domain.ErrNotFound)
	}
	if i := slices.Index(c.Rooms, room); i >= 0 {
		c.Rooms = slices.Delete(slices.Clone(c.Rooms), i, i+1)
		if len(c.Rooms) == 0 {
			c.Rooms = nil
		}
		s.conns[id] = c
	}
	s.removeMember(room, id)
	return nil
}

// Members yields the room's member ids in pages of the configured size,
// ordered by id, from a snapshot taken when iteration starts.
func (s *Connections) Members(ctx context.Context, room string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		s.mu.Lock()
		ids := make([]string, 0, len(s.rooms[room]))
		for id := range s.rooms[room] {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		sort.Strings(ids)
		for page := range slices.Chunk(ids, s.pageSize) {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if !yield(page, nil) {
				return
			}
		}
	}
}

func (s *Connections) addMember(room, id string, expiresAt time.Time) {
	members := s.rooms[room]
	if members == nil {
		members = map[string]time.Time{}
		s.rooms[room] = members
	}
	members[id] = expiresAt
}

func (s *Connections) removeMember(room, id string) {
	delete(s.rooms[room], id)
	if len(s.rooms[room]) == 0 {
		delete(s.rooms, room)
	}
}

// normalize gives c the shape a DynamoDB round trip gives it: times at the
// precision stored (milliseconds, TTL in seconds) in UTC, rooms a sorted set.
func normalize(c domain.Connection) domain.Connection {
	c.ConnectedAt = millis(c.ConnectedAt)
	c.LastSeenAt = millis(c.LastSeenAt)
	c.ExpiresAt = seconds(c.ExpiresAt)
	c.Rooms = domain.RoomSet(c.Rooms)
	c.JoinGrants, c.WriteGrants = domain.RoomSet(c.JoinGrants), domain.RoomSet(c.WriteGrants)
	return c
}

func millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func seconds(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), 0).UTC()
}

// TakeToken spends a token of the connection's relay bucket.
func (s *Connections) TakeToken(ctx context.Context, id string, limit domain.RateLimit, now time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[id]; !ok {
		return false, fmt.Errorf("memstore: rate limit of connection %s: %w", id, domain.ErrNotFound)
	}
	b, ok := limit.Take(s.buckets[id], now)
	if ok {
		s.buckets[id] = b
	}
	return ok, nil
}

// Delivered reports whether message id has an unexpired receipt.
func (s *Connections) Delivered(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.receipts[id]
	return ok && exp.After(time.Now()), nil
}

// MarkDelivered stores a receipt for message id until expiresAt.
func (s *Connections) MarkDelivered(ctx context.Context, id string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.receipts) >= receiptSweep {
		// As DynamoDB's TTL does, so a long-running stack stays bounded.
		now := time.Now()
		maps.DeleteFunc(s.receipts, func(_ string, exp time.Time) bool { return !exp.After(now) })
	}
	s.receipts[id] = expiresAt
	return nil
}

// receiptSweep is how many receipts trigger a sweep of the expired ones.
const receiptSweep = 10000
