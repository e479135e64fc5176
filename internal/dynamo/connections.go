package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/backoff"
	"github.com/pushgate/pushgate/internal/domain"
)

// Connections-table layout. A connection is pk=conn#<id>, sk=conn; its
// membership of a room is pk=room#<room>, sk=conn#<id>, so a room's members
// are one Query.
const (
	attrPK           = "pk"
	attrSK           = "sk"
	attrConnectionID = "connectionId"
	attrConnectedAt  = "connectedAt"
	attrLastSeenAt   = "lastSeenAt"
	attrSourceIP     = "sourceIp"
	attrUserAgent    = "userAgent"
	attrIdentity     = "identity"
	attrJoinGrants   = "joinGrants"
	attrWriteGrants  = "writeGrants"
	attrRooms        = "rooms"
	// The relay's rate-limit bucket: tokens left at relayAt (Unix ms).
	attrRelayTokens = "relayTokens"
	attrRelayAt     = "relayAt"

	connPrefix = "conn#"
	roomPrefix = "room#"
	connSK     = "conn"
	// A delivered message's receipt: pk=delivered#<message id>.
	receiptPrefix = "delivered#"
	receiptSK     = "delivered"
)

// MembershipShards is how many partitions a room's memberships spread
// over: one partition takes about 1,000 writes a second, so a room of
// 100,000 fills four times as fast, and Members reads the four at once.
// A connection's shard follows from its id (shardOf). Shard 0 keeps the
// unsharded key, room#<room>. Changing it moves memberships: keep it.
const MembershipShards = 4

// maxBatchWrite is BatchWriteItem's per-request limit.
const maxBatchWrite = 25

// Retries of a batch's unprocessed items, which DynamoDB returns when
// throttled.
const (
	batchAttempts  = 8
	batchBaseDelay = 25 * time.Millisecond
	batchMaxDelay  = time.Second
)

// Option configures Connections.
type Option func(*Connections)

// WithPageSize sets a Limit on each Members query (tests use a small one
// to exercise paging); without it a page ends at DynamoDB's 1 MB.
func WithPageSize(n int) Option {
	return func(c *Connections) {
		if n > 0 {
			c.pageSize = n
		}
	}
}

// Connections is a domain.ConnectionStore on the connections table.
type Connections struct {
	api      API
	table    string
	pageSize int
	// sleep waits between batch retries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ domain.ConnectionStore = (*Connections)(nil)

// NewConnections returns a store on table; client is usually a
// *dynamodb.Client.
func NewConnections(client API, table string, opts ...Option) *Connections {
	c := &Connections{api: withClassifiedErrors(client), table: table, sleep: backoff.Sleep}
	for _, o := range opts {
		o(c)
	}
	return c
}

func connKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s(connPrefix + id), attrSK: s(connSK)}
}

func memberKey(room, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s(roomPK(room, shardOf(id))), attrSK: s(connPrefix + id)}
}

// roomPK is the partition key of a room's shard: room#<room> for shard 0,
// room#<room>#<shard> for the others (a room name has no #).
func roomPK(room string, shard int) string {
	if shard == 0 {
		return roomPrefix + room
	}
	return roomPrefix + room + "#" + strconv.Itoa(shard)
}

// shardOf is the membership shard of a connection id: FNV-1a, so every
// function and deployment agrees.
func shardOf(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % MembershipShards)
}

// MembershipItem is the record that puts connection id in room, as Put and
// Join write it: for tools that load a table directly (benchmarks).
func MembershipItem(room, id string, expiresAt time.Time) map[string]types.AttributeValue {
	return memberItem(room, id, expiresAt)
}

func memberItem(room, id string, expiresAt time.Time) map[string]types.AttributeValue {
	item := memberKey(room, id)
	item[attrConnectionID] = s(id)
	if !expiresAt.IsZero() {
		item[TTLAttribute] = epochSeconds(expiresAt)
	}
	return item
}

func connItem(c domain.Connection) map[string]types.AttributeValue {
	item := connKey(c.ID)
	item[attrConnectionID] = s(c.ID)
	item[attrSourceIP] = s(c.SourceIP)
	item[attrUserAgent] = s(c.UserAgent)
	if !c.ConnectedAt.IsZero() {
		item[attrConnectedAt] = n(c.ConnectedAt.UnixMilli())
	}
	if !c.LastSeenAt.IsZero() {
		item[attrLastSeenAt] = n(c.LastSeenAt.UnixMilli())
	}
	if c.Identity != "" {
		item[attrIdentity] = s(c.Identity)
	}
	for name, grants := range map[string][]string{attrJoinGrants: c.JoinGrants, attrWriteGrants: c.WriteGrants} {
		// A string set cannot be empty; no grants is no attribute.
		if set := domain.RoomSet(grants); len(set) > 0 {
			item[name] = &types.AttributeValueMemberSS{Value: set}
		}
	}
	if len(c.Rooms) > 0 {
		item[attrRooms] = &types.AttributeValueMemberSS{Value: c.Rooms}
	}
	if !c.ExpiresAt.IsZero() {
		item[TTLAttribute] = epochSeconds(c.ExpiresAt)
	}
	return item
}

func decodeConn(item map[string]types.AttributeValue) (domain.Connection, error) {
	c := domain.Connection{
		ID:        stringAttr(item, attrConnectionID),
		SourceIP:  stringAttr(item, attrSourceIP),
		UserAgent: stringAttr(item, attrUserAgent),
		Identity:  stringAttr(item, attrIdentity),
	}
	if c.ID == "" {
		c.ID = strings.TrimPrefix(stringAttr(item, attrPK), connPrefix)
	}
	millis := map[string]*time.Time{attrConnectedAt: &c.ConnectedAt, attrLastSeenAt: &c.LastSeenAt}
	for name, dst := range millis {
		ms, err := intAttr(item, name)
		if err != nil {
			return domain.Connection{}, err
		}
		if _, ok := item[name]; ok {
			*dst = time.UnixMilli(ms).UTC()
		}
	}
	exp, err := intAttr(item, TTLAttribute)
	if err != nil {
		return domain.Connection{}, err
	}
	if _, ok := item[TTLAttribute]; ok {
		c.ExpiresAt = time.Unix(exp, 0).UTC()
	}
	if rooms, ok := item[attrRooms].(*types.AttributeValueMemberSS); ok {
		c.Rooms = domain.RoomSet(rooms.Value)
	}
	for name, dst := range map[string]*[]string{attrJoinGrants: &c.JoinGrants, attrWriteGrants: &c.WriteGrants} {
		if set, ok := item[name].(*types.AttributeValueMemberSS); ok {
			*dst = domain.RoomSet(set.Value)
		}
	}
	return c, nil
}

// putAttempts bounds Put's retries when the record changes between the
// read and the write (a join racing a replayed $connect).
const putAttempts = 3

// Put writes the connection and its memberships in one transaction, so a
// connection is never listed in a room without its record or vice versa.
// Memberships of a record it replaces that the new one does not name are
// deleted in the same transaction; the write is conditional on the record
// read first, so a join in between makes Put read again.
func (st *Connections) Put(ctx context.Context, c domain.Connection) error {
	c.Rooms = domain.RoomSet(c.Rooms)
	if len(c.Rooms) > domain.MaxRooms {
		return domain.TooManyRooms(c.ID)
	}
	for attempt := 1; ; attempt++ {
		err := st.replace(ctx, c)
		if err == nil || !transactionConditionFailed(err) || attempt == putAttempts {
			if err != nil {
				return fmt.Errorf("dynamo: put connection %s: %w", c.ID, err)
			}
			return nil
		}
	}
}

func (st *Connections) replace(ctx context.Context, c domain.Connection) error {
	item, err := st.getRecord(ctx, c.ID)
	if err != nil {
		return err
	}
	put := &types.Put{TableName: &st.table, Item: connItem(c), ExpressionAttributeNames: map[string]string{"#pk": attrPK}}
	var old []string
	if item == nil {
		put.ConditionExpression = aws.String("attribute_not_exists(#pk)")
	} else {
		prev, err := decodeConn(item)
		if err != nil {
			return err
		}
		old = prev.Rooms
		put.ConditionExpression, put.ExpressionAttributeValues = sameRooms(old)
		put.ExpressionAttributeNames["#rooms"] = attrRooms
	}
	writes := []types.TransactWriteItem{{Put: put}}
	for _, room := range c.Rooms {
		writes = append(writes, types.TransactWriteItem{Put: &types.Put{TableName: &st.table, Item: memberItem(room, c.ID, c.ExpiresAt)}})
	}
	for _, room := range old {
		if !slices.Contains(c.Rooms, room) {
			writes = append(writes, types.TransactWriteItem{Delete: &types.Delete{TableName: &st.table, Key: memberKey(room, c.ID)}})
		}
	}
	_, err = st.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	return err
}

// sameRooms is a condition that the record still holds exactly rooms: a
// string set of that size containing each of them.
func sameRooms(rooms []string) (*string, map[string]types.AttributeValue) {
	if len(rooms) == 0 {
		return aws.String("attribute_exists(#pk) AND attribute_not_exists(#rooms)"), nil
	}
	values := map[string]types.AttributeValue{":n": n(int64(len(rooms)))}
	cond := "attribute_exists(#pk) AND size(#rooms) = :n"
	for i, room := range rooms {
		key := fmt.Sprintf(":r%d", i)
		values[key] = s(room)
		cond += " AND contains(#rooms, " + key + ")"
	}
	return aws.String(cond), values
}

// Get reads the connection (strongly consistent: a Join right after
// $connect must see the record).
func (st *Connections) Get(ctx context.Context, id string) (domain.Connection, error) {
	item, err := st.getRecord(ctx, id)
	if err != nil {
		return domain.Connection{}, fmt.Errorf("dynamo: get connection %s: %w", id, err)
	}
	if item == nil {
		return domain.Connection{}, fmt.Errorf("dynamo: get connection %s: %w", id, domain.ErrNotFound)
	}
	c, err := decodeConn(item)
	if err != nil {
		return domain.Connection{}, fmt.Errorf("dynamo: decode connection %s: %w", id, err)
	}
	return c, nil
}

// getRecord returns the connection's attributes, nil if there is none.
func (st *Connections) getRecord(ctx context.Context, id string) (map[string]types.AttributeValue, error) {
	out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &st.table,
		Key:            connKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// Delete removes the connection and its memberships. Memberships go first
// in the batch order so that, should a later batch fail, the record that
// lists them is still there for a retry.
func (st *Connections) Delete(ctx context.Context, id string) error {
	item, err := st.getRecord(ctx, id)
	if err != nil {
		return fmt.Errorf("dynamo: delete connection %s: %w", id, err)
	}
	if item == nil {
		return nil
	}
	c, err := decodeConn(item)
	if err != nil {
		return fmt.Errorf("dynamo: delete connection %s: %w", id, err)
	}
	var deletes []types.WriteRequest
	for _, room := range c.Rooms {
		deletes = append(deletes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: memberKey(room, id)}})
	}
	deletes = append(deletes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: connKey(id)}})
	for batch := range slices.Chunk(deletes, maxBatchWrite) {
		if err := st.batchWrite(ctx, batch); err != nil {
			return fmt.Errorf("dynamo: delete connection %s: %w", id, err)
		}
	}
	return nil
}

// batchWrite writes one batch, retrying what DynamoDB leaves unprocessed
// with jittered exponential backoff.
func (st *Connections) batchWrite(ctx context.Context, batch []types.WriteRequest) error {
	pending := batch
	for attempt := 1; ; attempt++ {
		out, err := st.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{st.table: pending},
		})
		if err != nil {
			return err
		}
		pending = out.UnprocessedItems[st.table]
		if len(pending) == 0 {
			return nil
		}
		if attempt == batchAttempts {
			return fmt.Errorf("%d writes still unprocessed after %d attempts", len(pending), attempt)
		}
		if err := st.sleep(ctx, backoff.FullJitter(attempt, batchBaseDelay, batchMaxDelay)); err != nil {
			return err
		}
	}
}

// Touch sets LastSeenAt and ExpiresAt of an existing connection.
func (st *Connections) Touch(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	_, err := st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &st.table,
		Key:                 connKey(id),
		UpdateExpression:    aws.String("SET #lastSeen = :lastSeen, #expires = :expires"),
		ConditionExpression: aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK, "#lastSeen": attrLastSeenAt, "#expires": TTLAttribute,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":lastSeen": n(lastSeen.UnixMilli()),
			":expires":  epochSeconds(expiresAt),
		},
	})
	if conditionFailed(err) {
		return fmt.Errorf("dynamo: touch connection %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("dynamo: touch connection %s: %w", id, err)
	}
	return nil
}

// Delivered reports whether a receipt for message id is stored (and not yet
// expired: TTL deletion lags by up to days, so the expiry is checked).
func (st *Connections) Delivered(ctx context.Context, id string) (bool, error) {
	out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &st.table,
		Key:       map[string]types.AttributeValue{attrPK: s(receiptPrefix + id), attrSK: s(receiptSK)},
	})
	if err != nil {
		return false, fmt.Errorf("dynamo: receipt of %s: %w", id, err)
	}
	if out.Item == nil {
		return false, nil
	}
	exp, err := intAttr(out.Item, TTLAttribute)
	if err != nil {
		return false, err
	}
	return exp == 0 || time.Unix(exp, 0).After(time.Now()), nil
}

// MarkDelivered stores a receipt for message id until expiresAt.
func (st *Connections) MarkDelivered(ctx context.Context, id string, expiresAt time.Time) error {
	// An update makes the item when there is none; one IAM action fewer
	// than PutItem for the broadcaster, which updates nothing else.
	_, err := st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.table,
		Key:                       map[string]types.AttributeValue{attrPK: s(receiptPrefix + id), attrSK: s(receiptSK)},
		UpdateExpression:          aws.String("SET #exp = :exp"),
		ExpressionAttributeNames:  map[string]string{"#exp": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":exp": epochSeconds(expiresAt)},
	})
	if err != nil {
		return fmt.Errorf("dynamo: receipt of %s: %w", id, err)
	}
	return nil
}

// tokenAttempts bounds the read-then-conditional-write rounds of one
// TakeToken: each lost round means another relay of the same connection
// spent a token in between.
const tokenAttempts = 5

// TakeToken spends a token of the connection's relay bucket: it reads the
// bucket, and writes the spent one on condition that nobody wrote it since.
func (st *Connections) TakeToken(ctx context.Context, id string, limit domain.RateLimit, now time.Time) (bool, error) {
	for range tokenAttempts {
		out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:                &st.table,
			Key:                      connKey(id),
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("#pk, #tokens, #at"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#tokens": attrRelayTokens, "#at": attrRelayAt},
		})
		if err != nil {
			return false, fmt.Errorf("dynamo: rate limit of connection %s: %w", id, err)
		}
		if out.Item == nil {
			return false, fmt.Errorf("dynamo: rate limit of connection %s: %w", id, domain.ErrNotFound)
		}
		var b domain.Bucket
		_, seen := out.Item[attrRelayAt]
		if seen {
			at, err := intAttr(out.Item, attrRelayAt)
			if err != nil {
				return false, err
			}
			tokens, err := strconv.ParseFloat(numberAttr(out.Item, attrRelayTokens), 64)
			if err != nil {
				return false, fmt.Errorf("dynamo: connection %s: %s is not a number: %w", id, attrRelayTokens, err)
			}
			b = domain.Bucket{Tokens: tokens, At: time.UnixMilli(at)}
		}
		next, ok := limit.Take(b, now)
		if !ok {
			return false, nil
		}
		cond := "attribute_exists(#pk) AND attribute_not_exists(#at)"
		values := map[string]types.AttributeValue{
			":tokens": &types.AttributeValueMemberN{Value: strconv.FormatFloat(next.Tokens, 'f', 3, 64)},
			":at":     n(next.At.UnixMilli()),
		}
		if seen {
			cond = "attribute_exists(#pk) AND #at = :prev"
			values[":prev"] = out.Item[attrRelayAt]
		}
		_, err = st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &st.table,
			Key:                       connKey(id),
			UpdateExpression:          aws.String("SET #tokens = :tokens, #at = :at"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#tokens": attrRelayTokens, "#at": attrRelayAt},
			ExpressionAttributeValues: values,
		})
		if err == nil {
			return true, nil
		}
		if !conditionFailed(err) {
			return false, fmt.Errorf("dynamo: rate limit of connection %s: %w", id, err)
		}
	}
	// Every round lost to another relay of this connection: it is relaying
	// as fast as it can, so refusing this one is what the limit is for.
	return false, nil
}

// Join adds room to the connection's set and writes the membership in one
// transaction; the condition keeps the set within MaxRooms even when joins
// race.
func (st *Connections) Join(ctx context.Context, id, room string, expiresAt time.Time) error {
	_, err := st.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName:           &st.table,
				Key:                 connKey(id),
				UpdateExpression:    aws.String("ADD #rooms :rooms"),
				ConditionExpression: aws.String("attribute_exists(#pk) AND (attribute_not_exists(#rooms) OR contains(#rooms, :room) OR size(#rooms) < :max)"),
				ExpressionAttributeNames: map[string]string{
					"#pk": attrPK, "#rooms": attrRooms,
				},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":rooms": &types.AttributeValueMemberSS{Value: []string{room}},
					":room":  s(room),
					":max":   n(domain.MaxRooms),
				},
			}},
			{Put: &types.Put{TableName: &st.table, Item: memberItem(room, id, expiresAt)}},
		},
	})
	if err == nil {
		return nil
	}
	if !transactionConditionFailed(err) {
		return fmt.Errorf("dynamo: join connection %s to %s: %w", id, room, err)
	}
	// The condition does not say which part failed: the record tells.
	item, rerr := st.getRecord(ctx, id)
	switch {
	case rerr != nil:
		return fmt.Errorf("dynamo: join connection %s to %s: %w (reading it back: %w)", id, room, err, rerr)
	case item == nil:
		return fmt.Errorf("dynamo: join connection %s to %s: %w", id, room, domain.ErrNotFound)
	default:
		return domain.TooManyRooms(id)
	}
}

// Leave removes room from the connection's set and deletes the membership
// in one transaction.
func (st *Connections) Leave(ctx context.Context, id, room string) error {
	_, err := st.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName:                 &st.table,
				Key:                       connKey(id),
				UpdateExpression:          aws.String("DELETE #rooms :rooms"),
				ConditionExpression:       aws.String("attribute_exists(#pk)"),
				ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#rooms": attrRooms},
				ExpressionAttributeValues: map[string]types.AttributeValue{":rooms": &types.AttributeValueMemberSS{Value: []string{room}}},
			}},
			{Delete: &types.Delete{TableName: &st.table, Key: memberKey(room, id)}},
		},
	})
	if transactionConditionFailed(err) {
		return fmt.Errorf("dynamo: leave connection %s from %s: %w", id, room, domain.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("dynamo: leave connection %s from %s: %w", id, room, err)
	}
	return nil
}

// Members queries the room's membership shards at once, each one page
// (one Query) at a time following LastEvaluatedKey, and yields the pages as
// they come. A page ends at DynamoDB's 1 MB (or the WithPageSize Limit).
// The first failure is yielded, and ends the listing.
func (st *Connections) Members(ctx context.Context, room string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		pages := make(chan membersPage, MembershipShards)
		var wg sync.WaitGroup
		for shard := range MembershipShards {
			wg.Go(func() { st.queryShard(ctx, room, shard, pages) })
		}
		go func() {
			wg.Wait()
			close(pages)
		}()
		// No query outlives the listing: the shards still reading are
		// stopped and waited for.
		defer func() {
			cancel()
			for range pages {
			}
		}()
		for p := range pages {
			if p.err != nil {
				yield(nil, fmt.Errorf("dynamo: members of %s: %w", room, p.err))
				return
			}
			if !yield(p.ids, nil) {
				return
			}
		}
	}
}

type membersPage struct {
	ids []string
	err error
}

func (st *Connections) queryShard(ctx context.Context, room string, shard int, pages chan<- membersPage) {
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ProjectionExpression:      aws.String("#sk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(roomPK(room, shard))},
		ConsistentRead:            aws.Bool(true),
	}
	if st.pageSize > 0 {
		in.Limit = aws.Int32(int32(st.pageSize))
	}
	send := func(p membersPage) bool {
		select {
		case pages <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		out, err := st.api.Query(ctx, in)
		if err != nil {
			send(membersPage{err: err})
			return
		}
		ids := make([]string, 0, len(out.Items))
		for _, item := range out.Items {
			if id, ok := strings.CutPrefix(stringAttr(item, attrSK), connPrefix); ok {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 && !send(membersPage{ids: ids}) {
			return
		}
		if len(out.LastEvaluatedKey) == 0 {
			return
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
