package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// deleteAttempts bounds DeleteItem's retries when the item changes between
// the failed conditional write and the read that explains it.
const deleteAttempts = 3

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
	return &Items{api: client, table: table}
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

// PutItem creates or replaces the item in one conditional update that
// continues the version sequence, tombstone or not. The update returns the
// record as it was, which tells a create from a replace without a read.
func (st *Items) PutItem(ctx context.Context, it domain.Item, pre domain.Precondition, now time.Time) (domain.Put, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: &st.table,
		Key:       itemKey(it.Room, it.ID),
		UpdateExpression: aws.String("SET #data = :data, #updatedAt = :updatedAt, #version = if_not_exists(#version, :zero) + :one " +
			"REMOVE #deleted, #expiresAt"),
		ExpressionAttributeNames: itemNames(attrData, attrUpdatedAt, attrVersion, attrDeleted, TTLAttribute),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":data":      s(string(it.Data)),
			":updatedAt": s(now.UTC().Format(time.RFC3339Nano)),
			":zero":      n(0),
			":one":       n(1),
		},
		ReturnValues: types.ReturnValueAllOld,
	}
	var conds []string
	if pre.IfMatch > 0 {
		conds = append(conds, "(#version = :ifMatch AND attribute_not_exists(#deleted))")
		in.ExpressionAttributeValues[":ifMatch"] = n(pre.IfMatch)
	}
	if pre.IfNoneMatch {
		conds = append(conds, "(attribute_not_exists(#version) OR #deleted = :true)")
		in.ExpressionAttributeValues[":true"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if len(conds) > 0 {
		in.ConditionExpression = aws.String(strings.Join(conds, " AND "))
	}
	out, err := st.api.UpdateItem(ctx, in)
	if conditionFailed(err) {
		if pre.IfMatch > 0 {
			return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s if-match %d: %w", it.Room, it.ID, pre.IfMatch, domain.ErrPrecondition)
		}
		return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s if-none-match: %w", it.Room, it.ID, domain.ErrConflict)
	}
	if err != nil {
		return domain.Put{}, fmt.Errorf("dynamo: put item %s/%s: %w", it.Room, it.ID, err)
	}
	put := domain.Put{
		Item:    domain.Item{Room: it.Room, ID: it.ID, Data: it.Data, Version: 1, UpdatedAt: now.UTC()},
		Created: true,
	}
	if len(out.Attributes) > 0 {
		old, deleted, err := decodeItem(out.Attributes)
		if err != nil {
			return domain.Put{}, fmt.Errorf("dynamo: decode item %s/%s: %w", it.Room, it.ID, err)
		}
		put.Item.Version = old.Version + 1
		put.Created = deleted
	}
	return put, nil
}

// DeleteItem turns a live item into a tombstone with the next version.
// When the conditional write fails, the item as it is then says why: a
// tombstone makes this a repeated delete, which returns it again.
func (st *Items) DeleteItem(ctx context.Context, room, id string, pre domain.Precondition, now time.Time) (domain.Deleted, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: &st.table,
		Key:       itemKey(room, id),
		UpdateExpression: aws.String("SET #deleted = :true, #version = #version + :one, #updatedAt = :updatedAt, #expiresAt = :expiresAt " +
			"REMOVE #data"),
		ConditionExpression:      aws.String("attribute_exists(#version) AND attribute_not_exists(#deleted)"),
		ExpressionAttributeNames: itemNames(attrData, attrUpdatedAt, attrVersion, attrDeleted, TTLAttribute),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true":      &types.AttributeValueMemberBOOL{Value: true},
			":one":       n(1),
			":updatedAt": s(now.UTC().Format(time.RFC3339Nano)),
			":expiresAt": epochSeconds(now.Add(TombstoneTTL)),
		},
		ReturnValues: types.ReturnValueAllNew,
	}
	if pre.IfMatch > 0 {
		in.ConditionExpression = aws.String(*in.ConditionExpression + " AND #version = :ifMatch")
		in.ExpressionAttributeValues[":ifMatch"] = n(pre.IfMatch)
	}
	for attempt := 1; ; attempt++ {
		out, err := st.api.UpdateItem(ctx, in)
		if err == nil {
			it, _, err := decodeItem(out.Attributes)
			if err != nil {
				return domain.Deleted{}, fmt.Errorf("dynamo: decode item %s/%s: %w", room, id, err)
			}
			return domain.Deleted{Item: it}, nil
		}
		if !conditionFailed(err) {
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s: %w", room, id, err)
		}
		it, deleted, err := st.get(ctx, room, id)
		switch {
		case err != nil:
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s: %w", room, id, err)
		case deleted:
			return domain.Deleted{Item: it, Repeated: true}, nil
		case pre.IfMatch > 0 && it.Version != pre.IfMatch:
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s if-match %d: %w", room, id, pre.IfMatch, domain.ErrPrecondition)
		case attempt == deleteAttempts:
			return domain.Deleted{}, fmt.Errorf("dynamo: delete item %s/%s: still changing after %d attempts", room, id, attempt)
		}
		// The item was recreated (or re-versioned to match) after the
		// failed write: try again on what is there now.
	}
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

// get reads the record, tombstone or not; ErrNotFound if there is none.
func (st *Items) get(ctx context.Context, room, id string) (domain.Item, bool, error) {
	out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &st.table,
		Key:            itemKey(room, id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return domain.Item{}, false, err
	}
	if len(out.Item) == 0 {
		return domain.Item{}, false, domain.ErrNotFound
	}
	it, deleted, err := decodeItem(out.Item)
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
		out, err := st.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &st.table,
			KeyConditionExpression:    aws.String("#room = :room"),
			FilterExpression:          aws.String("attribute_not_exists(#deleted)"),
			ExpressionAttributeNames:  itemNames(attrRoom, attrDeleted),
			ExpressionAttributeValues: map[string]types.AttributeValue{":room": s(room)},
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
