package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/domain"
)

// The outbox is a sparse global secondary index of the items table: a
// history record is in it while it has outbox (its room's shard) and
// outboxAt (Unix milliseconds it went on, or was last claimed). Shards
// spread the index's writes over partitions, as every write of every room
// puts a record on and takes it off.
const (
	OutboxIndex  = "outbox"
	attrOutbox   = "outbox"
	attrOutboxAt = "outboxAt"
	outboxShards = 16
)

// outboxShard is the room's partition of the outbox index.
func outboxShard(room string) string {
	h := fnv.New32a()
	h.Write([]byte(room))
	return shardKey(h.Sum32() % outboxShards)
}

// shardKey is shard i's partition key: 00 … 15.
func shardKey(i uint32) string { return fmt.Sprintf("%02d", i) }

func millis(t time.Time) types.AttributeValue { return n(t.UnixMilli()) }

// MarkPublished removes the event's record from the outbox index.
func (st *Items) MarkPublished(ctx context.Context, room string, seq int64) error {
	_, err := st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.table,
		Key:                      eventKey(room, seq),
		UpdateExpression:         aws.String("REMOVE #outbox, #outboxAt"),
		ConditionExpression:      aws.String("attribute_exists(#id)"),
		ExpressionAttributeNames: itemNames(attrOutbox, attrOutboxAt, attrID),
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("dynamo: mark event %d of %s published: %w", seq, room, err)
	}
	return nil
}

// Unpublished reads the shards of the outbox index for records since
// before, the oldest of each, until it holds limit: a room is in one
// shard, so each room's events come in order, and a backlog is read a
// bounded batch at a time (the sweeper reads again until nothing is left).
// The index is eventually consistent: a record just taken off may still be
// listed, and Claim tells.
func (st *Items) Unpublished(ctx context.Context, before time.Time, limit int) ([]domain.Pending, error) {
	var out []domain.Pending
	now := time.Now()
	for shard := uint32(0); shard < outboxShards && len(out) < limit; shard++ {
		var start map[string]types.AttributeValue
		for len(out) < limit {
			page, err := st.api.Query(ctx, &dynamodb.QueryInput{
				TableName:                &st.table,
				IndexName:                aws.String(OutboxIndex),
				KeyConditionExpression:   aws.String("#outbox = :shard AND #outboxAt < :before"),
				ExpressionAttributeNames: itemNames(attrOutbox, attrOutboxAt),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":shard": s(shardKey(shard)), ":before": millis(before),
				},
				Limit:             aws.Int32(int32(limit - len(out))),
				ExclusiveStartKey: start,
			})
			if err != nil {
				return nil, fmt.Errorf("dynamo: outbox shard %s: %w", shardKey(shard), err)
			}
			for _, raw := range page.Items {
				if expired(raw, now) {
					continue
				}
				at, err := intAttr(raw, attrOutboxAt)
				if err != nil {
					return nil, err
				}
				var e domain.Event
				if err := json.Unmarshal([]byte(stringAttr(raw, attrEventFrame)), &e); err != nil {
					return nil, fmt.Errorf("dynamo: outbox record %s/%s: %w", stringAttr(raw, attrRoom), stringAttr(raw, attrID), err)
				}
				out = append(out, domain.Pending{Event: e, At: time.UnixMilli(at)})
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			start = page.LastEvaluatedKey
		}
	}
	slices.SortFunc(out, func(a, b domain.Pending) int { return a.At.Compare(b.At) })
	return out[:min(limit, len(out))], nil
}

// Claim moves the record's outboxAt from p.At to now, on condition that it
// still is p.At (so it is still on the outbox and nobody claimed it since).
func (st *Items) Claim(ctx context.Context, p domain.Pending, now time.Time) (bool, error) {
	_, err := st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.table,
		Key:                       eventKey(p.Event.Room, p.Event.Seq),
		UpdateExpression:          aws.String("SET #outboxAt = :now"),
		ConditionExpression:       aws.String("#outboxAt = :seen"),
		ExpressionAttributeNames:  itemNames(attrOutboxAt),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": millis(now), ":seen": millis(p.At)},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dynamo: claim event %d of %s: %w", p.Event.Seq, p.Event.Room, err)
	}
	return true, nil
}
