package dynamo_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/testkit/storetest"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }

// tables creates a fresh connections/items table pair on moto, deleted
// when the test ends.
func tables(t *testing.T) (client *dynamodb.Client, connections, items string) {
	t.Helper()
	client = dynamodb.NewFromConfig(testenv.AWSConfig(t, testenv.Moto(t)))
	connections, items = testenv.Tables(t, client)
	return client, connections, items
}

func TestConnectionsContract(t *testing.T) {
	storetest.ConnectionStore(t, func(t *testing.T) domain.ConnectionStore {
		client, conns, _ := tables(t)
		return dynamo.NewConnections(client, conns, dynamo.WithPageSize(storetest.MembersPageSize))
	})
}

func TestItemsContract(t *testing.T) {
	storetest.ItemStore(t, func(t *testing.T) domain.ItemStore {
		client, _, items := tables(t)
		return dynamo.NewItems(client, items)
	})
}

// TestMembersPastOneMegabyte fills a room's shard 0 with more than
// DynamoDB's 1 MB Query page: only following LastEvaluatedKey lists them
// all.
func TestMembersPastOneMegabyte(t *testing.T) {
	ctx := t.Context()
	client, conns, _ := tables(t)
	const members = 800
	pad := strings.Repeat("x", 1500)
	var want []string
	for i := range members {
		want = append(want, fmt.Sprintf("c%04d", i))
	}
	for batch := range slices.Chunk(want, 25) {
		var writes []types.WriteRequest
		for _, id := range batch {
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"pk":           &types.AttributeValueMemberS{Value: "room#huge"},
				"sk":           &types.AttributeValueMemberS{Value: "conn#" + id},
				"connectionId": &types.AttributeValueMemberS{Value: id},
				"padding":      &types.AttributeValueMemberS{Value: pad},
			}}})
		}
		out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{conns: writes}})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(out.UnprocessedItems[conns]); n > 0 {
			t.Fatalf("%d writes unprocessed", n)
		}
	}
	if members*len(pad) <= 1<<20 {
		t.Fatal("the room must exceed 1 MB")
	}

	store := dynamo.NewConnections(client, conns)
	var got []string
	pages := 0
	for ids, err := range store.Members(ctx, "huge") {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, ids...)
	}
	if pages < 2 {
		t.Fatalf("%d page(s): the 1 MB limit did not split the room", pages)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d members (%d distinct), want %d", len(got), len(slices.Compact(got)), len(want))
	}
}

// TestPutAllOrNothing: a Put whose membership cannot be written writes
// nothing, and a repeated Put leaves one record.
func TestPutAllOrNothing(t *testing.T) {
	ctx := t.Context()
	client, conns, _ := tables(t)
	store := dynamo.NewConnections(client, conns)
	c := domain.Connection{ID: "c1", ConnectedAt: time.Now(), Rooms: []string{"ok", strings.Repeat("r", 2100)}}
	if err := store.Put(ctx, c); err == nil {
		t.Fatal("Put with an over-long room key succeeded")
	}
	if _, err := store.Get(ctx, "c1"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Get after a failed Put: %v, want not found", err)
	}
	if n := countItems(t, client, conns); n != 0 {
		t.Fatalf("failed Put left %d records", n)
	}

	c.Rooms = []string{"ok", "also"}
	for range 2 {
		if err := store.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := countItems(t, client, conns); n != 3 {
		t.Fatalf("two Puts of a connection in 2 rooms left %d records, want 3", n)
	}
}

func countItems(t *testing.T, client *dynamodb.Client, table string) int {
	t.Helper()
	out, err := client.Scan(t.Context(), &dynamodb.ScanInput{TableName: &table, Select: types.SelectCount, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

// TestRecordLayout pins the attributes and types the SAM template, the TTL
// and any reader of the tables rely on.
func TestRecordLayout(t *testing.T) {
	ctx := t.Context()
	client, conns, items := tables(t)
	connected := time.Date(2026, 11, 26, 10, 0, 0, 987654321, time.UTC)
	expires := connected.Add(2 * time.Hour)

	get := func(t *testing.T, table string, key map[string]string) map[string]types.AttributeValue {
		t.Helper()
		k := map[string]types.AttributeValue{}
		for name, v := range key {
			k[name] = &types.AttributeValueMemberS{Value: v}
		}
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}

	store := dynamo.NewConnections(client, conns)
	err := store.Put(ctx, domain.Connection{
		ID: "abc=", ConnectedAt: connected, LastSeenAt: connected, SourceIP: "198.51.100.1",
		UserAgent: "ua", Identity: "alice", Rooms: []string{"lobby", "x"}, ExpiresAt: expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, domain.Connection{ID: "bare", ConnectedAt: connected, ExpiresAt: expires}); err != nil {
		t.Fatal(err)
	}
	ms := strconv.FormatInt(connected.UnixMilli(), 10)
	secs := strconv.FormatInt(expires.Unix(), 10)

	items1 := []struct {
		name  string
		table string
		key   map[string]string
		want  map[string]string // attribute -> type:value ("SS:" lists sorted values)
	}{
		{"connection", conns, map[string]string{"pk": "conn#abc=", "sk": "conn"}, map[string]string{
			"pk": "S:conn#abc=", "sk": "S:conn", "connectionId": "S:abc=", "connectedAt": "N:" + ms,
			"lastSeenAt": "N:" + ms, "sourceIp": "S:198.51.100.1", "userAgent": "S:ua", "identity": "S:alice",
			"rooms": "SS:lobby,x", "expiresAt": "N:" + secs,
		}},
		// abc= is in shard 2 of the room's memberships (FNV-1a of the id, modulo 4).
		{"membership", conns, map[string]string{"pk": "room#x#2", "sk": "conn#abc="}, map[string]string{
			"pk": "S:room#x#2", "sk": "S:conn#abc=", "connectionId": "S:abc=", "expiresAt": "N:" + secs,
		}},
		{"connection without identity or rooms", conns, map[string]string{"pk": "conn#bare", "sk": "conn"}, map[string]string{
			"pk": "S:conn#bare", "sk": "S:conn", "connectionId": "S:bare", "connectedAt": "N:" + ms,
			"sourceIp": "S:", "userAgent": "S:", "expiresAt": "N:" + secs,
		}},
	}

	itemStore := dynamo.NewItems(client, items)
	data := "{ \"k\" :\t[1,2] }\n"
	if _, err := itemStore.PutItem(ctx, domain.Item{Room: "r", ID: "live", Data: []byte(data)}, domain.Precondition{}, domain.Change{Now: connected, EventID: "ev-1", HistoryTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := itemStore.PutItem(ctx, domain.Item{Room: "r", ID: "gone", Data: []byte(`{}`)}, domain.Precondition{}, domain.Change{Now: connected, EventID: "ev-2", HistoryTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := itemStore.DeleteItem(ctx, "r", "gone", domain.Precondition{}, domain.Change{Now: connected, EventID: "ev-3", HistoryTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := itemStore.PutItem(ctx, domain.Item{Room: "r", ID: "back", Data: []byte(`1`)}, domain.Precondition{}, domain.Change{Now: connected, EventID: "ev-4", HistoryTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := itemStore.DeleteItem(ctx, "r", "back", domain.Precondition{}, domain.Change{Now: connected, EventID: "ev-5", HistoryTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := itemStore.PutItem(ctx, domain.Item{Room: "r", ID: "back", Data: []byte(`2`)}, domain.Precondition{}, domain.Change{Now: connected, EventID: "ev-6", HistoryTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	stamp := "S:" + connected.Format(time.RFC3339Nano)
	items1 = append(items1, []struct {
		name  string
		table string
		key   map[string]string
		want  map[string]string
	}{
		{"item", items, map[string]string{"room": "r", "id": "live"}, map[string]string{
			"room": "S:r", "id": "S:live", "data": "S:" + data, "version": "N:1", "updatedAt": stamp,
			"seq": "N:1", "eventId": "S:ev-1",
		}},
		{"tombstone", items, map[string]string{"room": "r", "id": "gone"}, map[string]string{
			"room": "S:r", "id": "S:gone", "version": "N:2", "updatedAt": stamp, "deleted": "BOOL:true",
			"expiresAt": "N:" + strconv.FormatInt(connected.Add(30*24*time.Hour).Unix(), 10),
			"seq":       "N:3",
			"eventId":   "S:ev-3",
		}},
		{"item put over a tombstone", items, map[string]string{"room": "r", "id": "back"}, map[string]string{
			"room": "S:r", "id": "S:back", "data": "S:2", "version": "N:3", "updatedAt": stamp,
			"seq": "N:6", "eventId": "S:ev-6",
		}},
		// The room's counter and its history, in the same partition under
		// ids no item can have.
		{"the room's counter", items, map[string]string{"room": "r", "id": "#seq"}, map[string]string{
			"room": "S:r", "id": "S:#seq", "seq": "N:6",
		}},
		{"a history record", items, map[string]string{"room": "r", "id": "#ev#00000000000000000001"}, map[string]string{
			"room": "S:r", "id": "S:#ev#00000000000000000001",
			"event":     "S:" + `{"eventId":"ev-1","seq":1,"type":"item.put","room":"r","id":"live","version":1,"time":"` + connected.UTC().Format(time.RFC3339Nano) + `","data":` + data + `}`,
			"expiresAt": "N:" + strconv.FormatInt(connected.Add(time.Hour).Unix(), 10),
			// On the outbox (nothing published it): room r's shard.
			"outbox":   "S:05",
			"outboxAt": "N:" + strconv.FormatInt(connected.UnixMilli(), 10),
		}},
	}...)

	for _, tc := range items1 {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for name, v := range get(t, tc.table, tc.key) {
				got[name] = describe(v)
			}
			for name, w := range tc.want {
				if got[name] != w {
					t.Errorf("%s = %q, want %q", name, got[name], w)
				}
			}
			for name := range got {
				if _, ok := tc.want[name]; !ok {
					t.Errorf("unexpected attribute %s = %q", name, got[name])
				}
			}
		})
	}
}

func describe(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberBOOL:
		return "BOOL:" + strconv.FormatBool(v.Value)
	case *types.AttributeValueMemberSS:
		set := slices.Clone(v.Value)
		sort.Strings(set)
		return "SS:" + strings.Join(set, ",")
	default:
		return fmt.Sprintf("%T", v)
	}
}

func TestCreateTablesIsIdempotentAndEnablesTTL(t *testing.T) {
	ctx := t.Context()
	client, conns, items := tables(t)
	if err := dynamo.CreateTables(ctx, client, conns, items); err != nil {
		t.Fatalf("second CreateTables: %v", err)
	}
	for _, tc := range []struct{ table, hash, rng string }{{conns, "pk", "sk"}, {items, "room", "id"}} {
		t.Run(tc.hash, func(t *testing.T) {
			d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &tc.table})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, k := range d.Table.KeySchema {
				keys = append(keys, string(k.KeyType)+":"+*k.AttributeName)
			}
			if want := []string{"HASH:" + tc.hash, "RANGE:" + tc.rng}; !slices.Equal(keys, want) {
				t.Errorf("key schema = %q, want %q", keys, want)
			}
			if d.Table.TableStatus != types.TableStatusActive {
				t.Errorf("status = %s", d.Table.TableStatus)
			}
			if b := d.Table.BillingModeSummary; b == nil || b.BillingMode != types.BillingModePayPerRequest {
				t.Errorf("billing mode = %+v, want PAY_PER_REQUEST", b)
			}
			ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &tc.table})
			if err != nil {
				t.Fatal(err)
			}
			if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != dynamo.TTLAttribute {
				t.Errorf("TTL = %+v, want enabled on %s", d, dynamo.TTLAttribute)
			}
		})
	}
}
