package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/domain"
)

// Items-table layout: key room (HASH), id (RANGE). data is the item's JSON
// as a string, byte for byte; a tombstone has deleted=true, no data, and
// an expiresAt TTL.
const (
	attrRoom      = "room"
	attrID        = "id"
	attrData      = "data"
	attrVersion   = "version"
	attrUpdatedAt = "updatedAt"
	attrDeleted   = "deleted"
)

// TombstoneTTL is how long a deleted item's tombstone stays: long enough
// for a retried delete to find it, short enough not to pile up.
const TombstoneTTL = 30 * 24 * time.Hour

// minListQuery keeps a listing from crawling through a run of tombstones
// a handful of items per Query.
const minListQuery = 25

// itemNames aliases every attribute an expression names: "data" is a
// DynamoDB reserved word, and aliasing all keeps expressions uniform.
func itemNames(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, name := range names {
		m["#"+name] = name
	}
	return m
}

// Items is a domain.ItemStore on the items table.
type Items struct {
	api   API
	table string
}

var _ domain.ItemStore = (*Items)(nil)

// NewItems returns a store on table; client is usually a *dynamodb.Client.
func NewItems(client API, table string) *Items {
	return &Items{api: withClassifiedErrors(client), table: table}
}

func itemKey(room, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrRoom: s(room), attrID: s(id)}
}

func decodeItem(item map[string]types.AttributeValue) (domain.Item, bool, error) {
	version, err := intAttr(item, attrVersion)
	if err != nil {
		return domain.Item{}, false, err
	}
	it := domain.Item{
		Room:    stringAttr(item, attrRoom),
		ID:      stringAttr(item, attrID),
		Version: version,
	}
	if at := stringAttr(item, attrUpdatedAt); at != "" {
		if it.UpdatedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return domain.Item{}, false, fmt.Errorf("attribute %s: %w", attrUpdatedAt, err)
		}
	}
	deleted := boolAttr(item, attrDeleted)
	if _, ok := item[attrData]; ok && !deleted {
		it.Data = json.RawMessage(stringAttr(item, attrData))
	}
	return it, deleted, nil
}

// The room's history shares its partition: reserved ids, which no item id
// can be (an item id has no #), hold the room's seq counter and one record
// per event. Every reserved id sorts before reservedEnd, every item id after.
const (
	seqID          = "#seq"
	eventIDPrefix  = "#ev#"
	reservedEnd    = "#~"
	attrSeq        = "seq"
	attrEventID    = "eventId"
	attrEventFrame = "event"
	// writeAttempts bounds a write's rounds of read, then transaction: a
	// lost round means another write of the room took the seq first.
	writeAttempts = 8
)

// eventKey is the history record of seq: zero-padded, so ids sort by seq.
func eventKey(room string, seq int64) map[string]types.AttributeValue {
	return itemKey(room, fmt.Sprintf("%s%020d", eventIDPrefix, seq))
}

// PutItem creates or replaces the item and records its event, all in one
// transaction: the item (on condition that it is as read), the room's
// counter (on condition it still holds the seq read) and the event's
// history record. A transaction that loses a race is read again and retried.
func (st *Items) PutItem(ctx context.Context, it domain.Item, pre domain.Precondition, ch domain.Change) (domain.Put, error) {
	for attempt := 1; ; attempt++ {
		old, deleted, err := st.get(ctx, it.Room, it.ID)
		exists := err == nil
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s: %w", it.Room, it.ID, err)
		}
		live := exists && !deleted
		if pre.IfMatch > 0 && (!live || old.Version != pre.IfMatch) {
			return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s if-match %d: %w", it.Room, it.ID, pre.IfMatch, domain.ErrPrecondition)
		}
		if pre.IfNoneMatch && live {
			return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s if-none-match: %w", it.Room, it.ID, domain.ErrConflict)
		}
		stored := domain.Item{Room: it.Room, ID: it.ID, Data: it.Data, Version: old.Version + 1, UpdatedAt: ch.Now.UTC()}
		last, err := st.LastSeq(ctx, it.Room)
		if err != nil {
			return domain.Put{}, err
		}
		ev := domain.PutEvent(stored, ch.EventID, last+1)
		record := itemKey(it.Room, it.ID)
		record[attrData] = s(string(it.Data))
		record[attrVersion] = n(stored.Version)
		record[attrUpdatedAt] = s(stored.UpdatedAt.Format(time.RFC3339Nano))
		record[attrSeq], record[attrEventID] = n(ev.Seq), s(ev.EventID)
		err = st.commit(ctx, ev, record, old.Version, exists, ch)
		if err == nil {
			return domain.Put{Item: stored, Created: !live, Event: ev}, nil
		}
		if !transactionConditionFailed(err) || attempt == writeAttempts {
			return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s: %w", it.Room, it.ID, err)
		}
	}
}

// DeleteItem tombstones a live item and records its event in one
// transaction, as PutItem does. A tombstone makes it a repeated delete,
// which returns the tombstone and the event it recorded.
func (st *Items) DeleteItem(ctx context.Context, room, id string, pre domain.Precondition, ch domain.Change) (domain.Deleted, error) {
	for attempt := 1; ; attempt++ {
		raw, err := st.getRaw(ctx, room, id)
		if err != nil {
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s: %w", room, id, err)
		}
		old, deleted, err := decodeItem(raw)
		if err != nil {
			return domain.Deleted{}, fmt.Errorf("dynamo: decode item %s/%s: %w", room, id, err)
		}
		if deleted {
			seq, err := intAttr(raw, attrSeq)
			if err != nil {
				return domain.Deleted{}, err
			}
			eventID := stringAttr(raw, attrEventID)
			if eventID == "" { // a tombstone from before seqs
				eventID = ch.EventID
			}
			return domain.Deleted{Item: old, Repeated: true, Event: domain.DeleteEvent(old, eventID, seq)}, nil
		}
		if pre.IfMatch > 0 && old.Version != pre.IfMatch {
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s if-match %d: %w", room, id, pre.IfMatch, domain.ErrPrecondition)
		}
		stored := domain.Item{Room: room, ID: id, Version: old.Version + 1, UpdatedAt: ch.Now.UTC()}
		last, err := st.LastSeq(ctx, room)
		if err != nil {
			return domain.Deleted{}, err
		}
		ev := domain.DeleteEvent(stored, ch.EventID, last+1)
		record := itemKey(room, id)
		record[attrVersion] = n(stored.Version)
		record[attrUpdatedAt] = s(stored.UpdatedAt.Format(time.RFC3339Nano))
		record[attrDeleted] = &types.AttributeValueMemberBOOL{Value: true}
		record[TTLAttribute] = epochSeconds(ch.Now.Add(TombstoneTTL))
		record[attrSeq], record[attrEventID] = n(ev.Seq), s(ev.EventID)
		err = st.commit(ctx, ev, record, old.Version, true, ch)
		if err == nil {
			return domain.Deleted{Item: stored, Event: ev}, nil
		}
		if !transactionConditionFailed(err) || attempt == writeAttempts {
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s: %w", room, id, err)
		}
	}
}

// LastSeq reads the room's counter: the seq of its latest event, 0 for a
// room never written.
func (st *Items) LastSeq(ctx context.Context, room string) (int64, error) {
	out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &st.table,
		Key:            itemKey(room, seqID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("dynamo: seq of room %s: %w", room, err)
	}
	return intAttr(out.Item, attrSeq)
}

// commit writes record (the item or tombstone as it is to be), the room's
// counter at ev.Seq and ev's history record in one transaction, each on
// condition that nobody wrote it since it was read.
func (st *Items) commit(ctx context.Context, ev domain.Event, record map[string]types.AttributeValue, oldVersion int64, exists bool, ch domain.Change) error {
	frame, err := ev.MarshalJSON()
	if err != nil {
		return fmt.Errorf("dynamo: encode event %s: %w", ev.EventID, err)
	}
	itemCond := "attribute_not_exists(#version)"
	itemValues := map[string]types.AttributeValue{}
	if exists {
		itemCond = "#version = :version"
		itemValues[":version"] = n(oldVersion)
	}
	counterCond := "attribute_not_exists(#seq) OR #seq = :last"
	history := eventKey(ev.Room, ev.Seq)
	history[attrEventFrame] = s(string(frame))
	history[TTLAttribute] = epochSeconds(ch.Now.Add(ch.HistoryTTL))
	history[attrOutbox], history[attrOutboxAt] = s(outboxShard(ev.Room)), millis(ch.Now)
	_, err = st.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName:                 &st.table,
				Item:                      record,
				ConditionExpression:       aws.String(itemCond),
				ExpressionAttributeNames:  itemNames(attrVersion),
				ExpressionAttributeValues: nilIfEmpty(itemValues),
			}},
			{Update: &types.Update{
				TableName:                 &st.table,
				Key:                       itemKey(ev.Room, seqID),
				UpdateExpression:          aws.String("SET #seq = :next"),
				ConditionExpression:       aws.String(counterCond),
				ExpressionAttributeNames:  itemNames(attrSeq),
				ExpressionAttributeValues: map[string]types.AttributeValue{":next": n(ev.Seq), ":last": n(ev.Seq - 1)},
			}},
			{Put: &types.Put{
				TableName:                &st.table,
				Item:                     history,
				ConditionExpression:      aws.String("attribute_not_exists(#id)"),
				ExpressionAttributeNames: itemNames(attrID),
			}},
		},
	})
	return err
}

func nilIfEmpty(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	return m
}

// ListEvents returns the history of room after seq after, in seq order,
// from the records TTL has not removed (nor should have: an expired one
// still there counts as gone).
func (st *Items) ListEvents(ctx context.Context, room string, after int64, limit int) (domain.EventPage, error) {
	limit = domain.ListLimit(limit)
	last, err := st.LastSeq(ctx, room)
	if err != nil {
		return domain.EventPage{}, err
	}
	if after >= last {
		// Nothing follows (or the store lost the room): no query, whose
		// range would start past its end for a huge after.
		return domain.HistoryPage(nil, after, last, limit), nil
	}
	from := eventKey(room, after+1)[attrID]
	to := eventKey(room, 1<<62)[attrID]
	now := time.Now()
	var kept []domain.Event
	var start map[string]types.AttributeValue
	size := 0
	for len(kept) <= limit && size <= domain.MaxPageBytes {
		out, err := st.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &st.table,
			KeyConditionExpression:    aws.String("#room = :room AND #id BETWEEN :from AND :to"),
			ExpressionAttributeNames:  itemNames(attrRoom, attrID),
			ExpressionAttributeValues: map[string]types.AttributeValue{":room": s(room), ":from": from, ":to": to},
			ConsistentRead:            aws.Bool(true),
			Limit:                     aws.Int32(int32(limit + 1 - len(kept))),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return domain.EventPage{}, fmt.Errorf("dynamo: events of %s: %w", room, err)
		}
		for _, raw := range out.Items {
			if expired(raw, now) {
				continue
			}
			frame := stringAttr(raw, attrEventFrame)
			var e domain.Event
			if err := json.Unmarshal([]byte(frame), &e); err != nil {
				return domain.EventPage{}, fmt.Errorf("dynamo: event record of %s: %w", room, err)
			}
			kept = append(kept, e)
			size += len(frame)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	page := domain.HistoryPage(kept, after, last, limit)
	if size > domain.MaxPageBytes && !page.Expired && len(page.Events) > 1 {
		// A page of big events: stop where about a megabyte was read.
		page.More = true
	}
	return page, nil
}

// GetItem returns the live item; a tombstone is not found.
func (st *Items) GetItem(ctx context.Context, room, id string) (domain.Item, error) {
	it, deleted, err := st.get(ctx, room, id)
	if err != nil {
		return domain.Item{}, fmt.Errorf("dynamo: get item %s/%s: %w", room, id, err)
	}
	if deleted {
		return domain.Item{}, fmt.Errorf("dynamo: get item %s/%s (deleted): %w", room, id, domain.ErrNotFound)
	}
	return it, nil
}

// getRaw reads the record as stored; ErrNotFound if there is none.
func (st *Items) getRaw(ctx context.Context, room, id string) (map[string]types.AttributeValue, error) {
	out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &st.table,
		Key:            itemKey(room, id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, domain.ErrNotFound
	}
	return out.Item, nil
}

// get reads the record, tombstone or not; ErrNotFound if there is none.
func (st *Items) get(ctx context.Context, room, id string) (domain.Item, bool, error) {
	raw, err := st.getRaw(ctx, room, id)
	if err != nil {
		return domain.Item{}, false, err
	}
	it, deleted, err := decodeItem(raw)
	if err != nil {
		return domain.Item{}, false, fmt.Errorf("decode: %w", err)
	}
	return it, deleted, nil
}

// ListItems returns up to limit live items after the cursor. It reads one
// item past the page, so Next is empty exactly when nothing follows, and
// queries again while tombstones leave the page short.
func (st *Items) ListItems(ctx context.Context, room, cursor string, limit int) (domain.ItemPage, error) {
	after, err := domain.DecodeCursor(cursor)
	if err != nil {
		return domain.ItemPage{}, err
	}
	limit = domain.ListLimit(limit)
	want := limit + 1
	var start map[string]types.AttributeValue
	if after != "" {
		start = itemKey(room, after)
	}
	items := make([]domain.Item, 0, min(want, domain.DefaultListLimit+1))
	size, more := 0, false
	for len(items) < want {
		// The room's counter and history sort before reservedEnd.
		out, err := st.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &st.table,
			KeyConditionExpression:    aws.String("#room = :room AND #id > :reserved"),
			FilterExpression:          aws.String("attribute_not_exists(#deleted)"),
			ExpressionAttributeNames:  itemNames(attrRoom, attrID, attrDeleted),
			ExpressionAttributeValues: map[string]types.AttributeValue{":room": s(room), ":reserved": s(reservedEnd)},
			ConsistentRead:            aws.Bool(true),
			Limit:                     aws.Int32(int32(min(max(want-len(items), minListQuery), want))),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return domain.ItemPage{}, fmt.Errorf("dynamo: list items of %s: %w", room, err)
		}
		for _, raw := range out.Items {
			it, _, err := decodeItem(raw)
			if err != nil {
				return domain.ItemPage{}, fmt.Errorf("dynamo: decode item of %s: %w", room, err)
			}
			items = append(items, it)
			size += len(it.Data)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		if size > domain.MaxPageBytes {
			// Enough for a page; reading on would only hold more in memory.
			more = true
			break
		}
		start = out.LastEvaluatedKey
	}
	return domain.Page(items, limit, more), nil
}
