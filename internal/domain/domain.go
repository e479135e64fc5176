// Package domain holds pushgate's core types and the interfaces its adapters implement.
package domain

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"time"
)

// MaxRooms bounds one connection's memberships, so $disconnect stays one
// bounded cleanup.
const MaxRooms = 20

// RoomSet returns rooms sorted without duplicates, nil when empty: the
// order and shape every ConnectionStore returns a connection's rooms in
// (a DynamoDB string set holds each once and cannot be empty).
func RoomSet(rooms []string) []string {
	if len(rooms) == 0 {
		return nil
	}
	set := slices.Clone(rooms)
	slices.Sort(set)
	return slices.Compact(set)
}

// TooManyRooms is the error a ConnectionStore returns for a connection
// that would be in more than MaxRooms rooms.
func TooManyRooms(id string) error {
	return Errorf(http.StatusConflict, CodeTooManyRooms, "connection %s is already in %d rooms", id, MaxRooms)
}

// DefaultRoom is joined on $connect when the client names no room.
const DefaultRoom = "lobby"

// Connection is one WebSocket client as stored between Lambda invocations.
type Connection struct {
	ID          string
	ConnectedAt time.Time
	LastSeenAt  time.Time
	SourceIP    string
	UserAgent   string
	// Identity is who the client authenticated as (the token's subject;
	// "anonymous" when auth is off).
	Identity string
	// JoinGrants and WriteGrants are the room patterns the token allowed
	// when the socket connected, kept for operators (the handlers check
	// the authorizer context every event carries).
	JoinGrants  []string
	WriteGrants []string
	Rooms       []string
	// ExpiresAt is the DynamoDB TTL: API Gateway cuts every socket after
	// two hours, so a record past it belongs to a connection that is gone.
	ExpiresAt time.Time
}

// RateLimit is a token bucket: Burst tokens at most, Rate more each second.
// A zero Rate is no limit.
type RateLimit struct {
	Rate  float64
	Burst float64
}

// Bucket is a token bucket's state: Tokens left at At. The zero Bucket has
// never been used and is full.
type Bucket struct {
	Tokens float64
	At     time.Time
}

// Take spends a token at now if the bucket, refilled since b.At, has one.
// It returns the bucket after and whether a token was spent; a refused take
// leaves b as it was, so only spending needs storing.
func (l RateLimit) Take(b Bucket, now time.Time) (Bucket, bool) {
	tokens := l.Burst
	if !b.At.IsZero() {
		tokens = min(l.Burst, b.Tokens+l.Rate*max(0, now.Sub(b.At).Seconds()))
	}
	if tokens < 1 {
		return b, false
	}
	return Bucket{Tokens: tokens - 1, At: now}, true
}

// Item is one document of a room, written over the HTTP API.
type Item struct {
	Room      string
	ID        string
	Data      json.RawMessage
	Version   int64
	UpdatedAt time.Time
}

// Event types published after a write.
const (
	EventItemPut     = "item.put"
	EventItemDeleted = "item.deleted"
)

// Event is what a write publishes to the topic and the broadcaster pushes to
// the room. EventID lets clients drop the duplicates at-least-once delivery
// brings.
type Event struct {
	EventID string `json:"eventId"`
	// Seq numbers the room's events 1, 2, 3, … in the order their writes
	// were stored: a client that saw seq n and then n+2 knows it missed
	// one, and asks the history for it.
	Seq     int64           `json:"seq,omitempty"`
	Type    string          `json:"type"`
	Room    string          `json:"room"`
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Data    json.RawMessage `json:"data,omitempty"`
	Time    time.Time       `json:"time"`
}

// ConnectionStore keeps connections and their room memberships.
type ConnectionStore interface {
	// Put stores c and a membership for each of c.Rooms, all or nothing. A
	// connection already stored under c.ID is replaced with all its
	// memberships, so a replayed $connect leaves exactly c.Rooms.
	Put(ctx context.Context, c Connection) error
	// Get returns the connection or an error matching ErrNotFound.
	Get(ctx context.Context, id string) (Connection, error)
	// Delete removes the connection and all its memberships; deleting a
	// connection that is not there is not an error.
	Delete(ctx context.Context, id string) error
	// Touch records activity: sets LastSeenAt and ExpiresAt; ErrNotFound if
	// the connection is gone.
	Touch(ctx context.Context, id string, lastSeen, expiresAt time.Time) error
	// Join adds the connection to room, the membership expiring at expiresAt
	// like its connection; ErrNotFound if the connection is gone, a *Error
	// with CodeTooManyRooms when it already is in MaxRooms rooms. Joining a
	// room twice is not an error.
	Join(ctx context.Context, id, room string, expiresAt time.Time) error
	// Leave removes the connection from room; leaving a room one is not in is
	// not an error.
	Leave(ctx context.Context, id, room string) error
	// Members lists the ids of the room's connections one store page at a
	// time, so a room of any size is read in bounded memory.
	Members(ctx context.Context, room string) iter.Seq2[[]string, error]
	// TakeToken spends one token of the connection's relay bucket under
	// limit and reports whether there was one; concurrent takes of one
	// connection never spend a token twice. ErrNotFound if it is gone.
	TakeToken(ctx context.Context, id string, limit RateLimit, now time.Time) (bool, error)
}

// ItemPage is one page of a room listing.
type ItemPage struct {
	Items []Item
	// Next is the opaque cursor of the following page; empty on the last.
	Next string
}

// Precondition guards a write, from the HTTP conditional headers.
type Precondition struct {
	// IfMatch, when > 0, requires the stored version to equal it.
	IfMatch int64
	// IfNoneMatch requires that no live item exists (If-None-Match: *).
	IfNoneMatch bool
}

// EventPage is one page of a room's history.
type EventPage struct {
	// Events are in seq order, each as it was pushed.
	Events []Event
	// Last is the room's latest seq (0 for a room never written).
	Last int64
	// More reports events after the page's last.
	More bool
	// Expired reports that events right after the asked seq are no longer
	// kept: the client has to read the room's items again.
	Expired bool
}

// ItemReader reads items and the room's history.
type ItemReader interface {
	// GetItem returns the item or an error matching ErrNotFound.
	GetItem(ctx context.Context, room, id string) (Item, error)
	// ListItems returns up to limit items of room after cursor, ordered by id.
	ListItems(ctx context.Context, room, cursor string, limit int) (ItemPage, error)
	// ListEvents returns up to limit events of room with seq > after, in
	// seq order.
	ListEvents(ctx context.Context, room string, after int64, limit int) (EventPage, error)
	// LastSeq returns the room's latest seq, 0 for a room never written.
	LastSeq(ctx context.Context, room string) (int64, error)
}

// HistoryPage makes the page a store answers from the events it still
// keeps after seq after (in seq order, at least one past limit when there
// are more), the room's last seq, and limit. Seqs have no holes, so a first
// kept event other than after+1, while the room has later ones, means the
// history no longer reaches back that far. An after past the room's last
// seq means the store lost the room (a local store restarted empty): that
// client, too, must read the room again.
func HistoryPage(kept []Event, after, last int64, limit int) EventPage {
	p := EventPage{Last: last}
	if after > last || after < last && (len(kept) == 0 || kept[0].Seq != after+1) {
		p.Expired = true
		return p
	}
	if len(kept) > limit {
		kept, p.More = kept[:limit], true
	}
	p.Events = kept
	return p
}

// Change is what a store records a write's event with: the event id the
// write publishes, its time, and how long the room's history keeps it.
type Change struct {
	Now        time.Time
	EventID    string
	HistoryTTL time.Duration
}

// ItemStore reads and writes items. Versions only grow: a deleted item leaves
// a tombstone so a later put continues its version sequence and a repeated
// delete can re-publish its event.
type ItemStore interface {
	ItemReader
	Outbox
	// PutItem creates or replaces the item, setting Version to the previous
	// version + 1 and UpdatedAt to ch.Now. In the same atomic write it
	// takes the room's next seq and keeps the event in the history.
	PutItem(ctx context.Context, it Item, pre Precondition, ch Change) (Put, error)
	// DeleteItem tombstones the item and returns it with its new version,
	// its event taking a seq and a place in the history as PutItem's does.
	// Deleting an already deleted item returns the tombstone again with
	// Repeated set and the event it recorded then (same id, same seq), so a
	// delete whose event was lost can be retried.
	DeleteItem(ctx context.Context, room, id string, pre Precondition, ch Change) (Deleted, error)
}

// Outbox is the part of the history not known to be published: every
// event a write records starts on it, and leaves it when a publish of it
// succeeded. What is left there is published by the outbox sweeper, so a
// publish that failed after its write still reaches the room.
type Outbox interface {
	// MarkPublished takes the event of room's seq off the outbox; one
	// already off, or expired, is not an error.
	MarkPublished(ctx context.Context, room string, seq int64) error
	// Unpublished returns up to limit events on the outbox since before
	// (put there, or last claimed, before it), oldest first.
	Unpublished(ctx context.Context, before time.Time, limit int) ([]Pending, error)
	// Claim sets a pending event's time to now if it still is p.At and
	// reports whether it did: of two sweepers that read it, one publishes
	// it, and if that one fails it is on the outbox again later.
	Claim(ctx context.Context, p Pending, now time.Time) (bool, error)
}

// Pending is an event on the outbox and the time it was put there or last
// claimed.
type Pending struct {
	Event Event
	At    time.Time
}

// Put is the outcome of ItemStore.PutItem.
type Put struct {
	Item Item
	// Created reports that no live item was there before (none, or a
	// tombstone): the write answers 201 rather than 200.
	Created bool
	// Event is the change as the history keeps it, to publish.
	Event Event
}

// Deleted is the outcome of ItemStore.DeleteItem.
type Deleted struct {
	Item     Item
	Repeated bool
	Event    Event
}

// PutEvent is the event of a stored put.
func PutEvent(it Item, eventID string, seq int64) Event {
	return Event{EventID: eventID, Seq: seq, Type: EventItemPut, Room: it.Room, ID: it.ID, Version: it.Version, Data: it.Data, Time: it.UpdatedAt}
}

// DeleteEvent is the event of a stored delete.
func DeleteEvent(it Item, eventID string, seq int64) Event {
	return Event{EventID: eventID, Seq: seq, Type: EventItemDeleted, Room: it.Room, ID: it.ID, Version: it.Version, Time: it.UpdatedAt}
}

// Publisher sends an event to every broadcaster.
type Publisher interface {
	Publish(ctx context.Context, e Event) error
}

// Receipts remember which published messages were delivered, so a replayed
// one (SNS delivers at least once; anyone allowed to invoke the
// broadcaster could resend a record) is not pushed again.
type Receipts interface {
	// Delivered reports whether message id was delivered.
	Delivered(ctx context.Context, id string) (bool, error)
	// MarkDelivered records id as delivered until the receipt expires.
	MarkDelivered(ctx context.Context, id string, expiresAt time.Time) error
}

// Poster delivers one frame to one connection (the Management API's
// PostToConnection). Failures are *PostError.
type Poster interface {
	Post(ctx context.Context, connectionID string, frame []byte) error
}

// MarshalJSON writes Data as stored, byte for byte, so clients receive what
// the writer sent. Call it directly: json.Marshal compacts and HTML-escapes
// whatever a MarshalJSON method returns.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // without this method
	p := plain(e)
	p.Data = nil
	head, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(e.Data) == 0 {
		return head, nil
	}
	if !json.Valid(e.Data) {
		return nil, fmt.Errorf("event %s: data is not valid JSON", e.EventID)
	}
	b := make([]byte, 0, len(head)+len(e.Data)+8)
	b = append(b, head[:len(head)-1]...)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}'), nil
}
