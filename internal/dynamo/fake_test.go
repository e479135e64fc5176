package dynamo

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/domain"
)

// fakeAPI answers the calls a test scripts and fails any other.
type fakeAPI struct {
	getItem    func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	query      func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
	batchWrite func(*dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error)
	transact   func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
}

var errUnscripted = errors.New("unscripted call")

func (f *fakeAPI) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.getItem == nil {
		return nil, errUnscripted
	}
	return f.getItem(in)
}

func (f *fakeAPI) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errUnscripted
}

func (f *fakeAPI) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if f.query == nil {
		return nil, errUnscripted
	}
	return f.query(in)
}

func (f *fakeAPI) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if f.transact == nil {
		return nil, errUnscripted
	}
	return f.transact(in)
}

func (f *fakeAPI) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if f.batchWrite == nil {
		return nil, errUnscripted
	}
	return f.batchWrite(in)
}

func deletedKeys(reqs []types.WriteRequest) []string {
	var keys []string
	for _, r := range reqs {
		keys = append(keys, stringAttr(r.DeleteRequest.Key, attrPK)+"|"+stringAttr(r.DeleteRequest.Key, attrSK))
	}
	sort.Strings(keys)
	return keys
}

func TestDeleteRetriesUnprocessedWrites(t *testing.T) {
	record := connItem(domain.Connection{ID: "c1", Rooms: []string{"a", "b"}})
	// c1's memberships are in shard 1 of each room.
	all := []string{"conn#c1|conn", "room#a#1|conn#c1", "room#b#1|conn#c1"}
	tests := []struct {
		name string
		// unprocessed returns what call n (from 1) leaves unprocessed.
		unprocessed func(n int, got []types.WriteRequest) []types.WriteRequest
		wantCalls   int
		wantErr     bool
	}{
		{"all processed at once", func(int, []types.WriteRequest) []types.WriteRequest { return nil }, 1, false},
		{"one left twice", func(n int, got []types.WriteRequest) []types.WriteRequest {
			if n <= 2 {
				return got[:1]
			}
			return nil
		}, 3, false},
		{"never processed", func(_ int, got []types.WriteRequest) []types.WriteRequest { return got }, batchAttempts, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls, left [][]string
			api := &fakeAPI{
				getItem: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
					return &dynamodb.GetItemOutput{Item: record}, nil
				},
				batchWrite: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
					got := in.RequestItems["conns"]
					calls = append(calls, deletedKeys(got))
					rest := tc.unprocessed(len(calls), got)
					left = append(left, deletedKeys(rest))
					out := &dynamodb.BatchWriteItemOutput{}
					if len(rest) > 0 {
						out.UnprocessedItems = map[string][]types.WriteRequest{"conns": rest}
					}
					return out, nil
				},
			}
			store := NewConnections(api, "conns")
			var slept []time.Duration
			store.sleep = func(_ context.Context, d time.Duration) error {
				slept = append(slept, d)
				return nil
			}
			err := store.Delete(t.Context(), "c1")
			if (err != nil) != tc.wantErr {
				t.Fatalf("Delete error = %v, want error %v", err, tc.wantErr)
			}
			if len(calls) != tc.wantCalls {
				t.Fatalf("%d BatchWriteItem calls, want %d", len(calls), tc.wantCalls)
			}
			if !slices.Equal(calls[0], all) {
				t.Fatalf("first batch deletes %q, want %q", calls[0], all)
			}
			for i, c := range calls[1:] {
				if !slices.Equal(c, left[i]) {
					t.Fatalf("retry %d sent %q, want exactly the unprocessed %q", i+1, c, left[i])
				}
			}
			if len(slept) != tc.wantCalls-1 {
				t.Fatalf("slept %d times between %d calls", len(slept), tc.wantCalls)
			}
			for _, d := range slept {
				if d <= 0 || d > batchMaxDelay {
					t.Fatalf("backoff %v outside (0, %v]", d, batchMaxDelay)
				}
			}
		})
	}
}

// TestMembersYieldsQueryErrorAndStops: shard 0 of the room answers a page
// and then fails; the other shards are empty. The page is yielded, then
// the error, once, and nothing after it.
func TestMembersYieldsQueryErrorAndStops(t *testing.T) {
	boom := errors.New("throttled")
	var mu sync.Mutex
	calls := map[string]int{}
	api := &fakeAPI{query: func(in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
		pk := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS).Value
		mu.Lock()
		calls[pk]++
		n := calls[pk]
		mu.Unlock()
		if pk != "room#r" {
			return &dynamodb.QueryOutput{}, nil
		}
		if n == 1 {
			if in.ExclusiveStartKey != nil || *in.Limit != 2 {
				t.Errorf("first query: start %v limit %d", in.ExclusiveStartKey, *in.Limit)
			}
			return &dynamodb.QueryOutput{
				Items:            []map[string]types.AttributeValue{memberKey("r", "a"), memberKey("r", "e")},
				LastEvaluatedKey: memberKey("r", "e"),
			}, nil
		}
		if stringAttr(in.ExclusiveStartKey, attrSK) != "conn#e" {
			t.Errorf("second query starts at %v, want after e", in.ExclusiveStartKey)
		}
		return nil, boom
	}}
	store := NewConnections(api, "conns", WithPageSize(2))
	var pages [][]string
	var errs []error
	for ids, err := range store.Members(t.Context(), "r") {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pages = append(pages, ids)
	}
	if len(pages) != 1 || !slices.Equal(pages[0], []string{"a", "e"}) {
		t.Fatalf("pages = %q, want [[a e]]", pages)
	}
	if len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Fatalf("errors = %v, want the query's error once", errs)
	}
	// The other shards may or may not have been asked before the failure
	// stopped the listing; none is asked twice.
	for pk, n := range calls {
		if (pk == "room#r" && n != 2) || (pk != "room#r" && n > 1) || !strings.HasPrefix(pk, "room#r") {
			t.Fatalf("queries %v: want room#r twice and each other shard at most once", calls)
		}
	}
}

func TestJoinPassesOtherTransactionFailuresThrough(t *testing.T) {
	conflict := &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{
		{Code: strPtr("TransactionConflict")}, {Code: strPtr("None")},
	}}
	api := &fakeAPI{transact: func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		return nil, conflict
	}}
	err := NewConnections(api, "conns").Join(t.Context(), "c1", "r", time.Now())
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Join error = %v, want the transaction conflict", err)
	}
	var de *domain.Error
	if errors.As(err, &de) {
		t.Fatalf("Join error = %v, a conflict is not a client error", err)
	}
}

func strPtr(s string) *string { return &s }
