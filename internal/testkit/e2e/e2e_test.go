// Package e2e_test runs pushgate's real code paths end to end: the WebSocket
// and HTTP handlers on DynamoDB (moto), an item write published to SNS
// (moto), delivered over an HTTP subscription to the broadcast handler, and
// posted through the Management API client to a test endpoint.
package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/mgmtapi"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/wsapi"
)

func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }

func TestWriteIsPushedToExactlyTheRoom(t *testing.T) {
	ctx := context.Background()
	moto := testenv.Moto(t)
	cfg := testenv.AWSConfig(t, moto)
	ddb := dynamodb.NewFromConfig(cfg)
	connTable, itemTable := testenv.Tables(t, ddb)
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	conns := dynamo.NewConnections(ddb, connTable)
	items := dynamo.NewItems(ddb, itemTable)

	// The Management API far end: sockets a, b, c are open; "gone" was
	// stored but its socket has closed.
	rec := mgmtserver.NewRecorder("a", "b", "c")
	mgmt := httptest.NewServer(mgmtserver.Handler(rec))
	defer mgmt.Close()
	poster, err := mgmtapi.New(cfg, mgmt.URL+"/prod", 8)
	if err != nil {
		t.Fatal(err)
	}
	fan := fanout.New(poster, conns, fanout.Options{Workers: 8})

	// Connections arrive through the WebSocket handler: a and b in "demo",
	// c in "other", gone in "demo".
	ws := wsapi.New(conns, fan, wsapi.Settings{TTL: time.Hour}, log)
	for id, room := range map[string]string{"a": "demo", "b": "demo", "c": "other", "gone": "demo"} {
		resp, err := ws.Handle(ctx, events.APIGatewayWebsocketProxyRequest{
			QueryStringParameters: map[string]string{"room": room},
			RequestContext: events.APIGatewayWebsocketProxyRequestContext{
				RouteKey: "$connect", EventType: "CONNECT", ConnectionID: id,
				ConnectedAt: time.Now().UnixMilli(), Stage: "prod",
			},
		})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connect %s: %d %v", id, resp.StatusCode, err)
		}
	}

	// SNS on moto delivers to an HTTP subscription that hands each
	// notification to the broadcast handler, as Lambda's SNS trigger would.
	var bc *broadcast.Handler // once the topic exists; nothing is published before
	var delivered sync.WaitGroup
	sub := httptest.NewServer(snslocal.Receiver("arn:aws:sns:us-east-1:123456789012:test:sub", func(ctx context.Context, ev events.SNSEvent) error {
		defer delivered.Done()
		return bc.Handle(ctx, ev)
	}, log))
	defer sub.Close()
	snsClient := sns.NewFromConfig(cfg)
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(testenv.Unique(t, "topic"))})
	if err != nil {
		t.Fatal(err)
	}
	bc = broadcast.New(conns, fan, broadcast.Settings{Topic: *topic.TopicArn, Receipts: conns}, log)
	if _, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("http"), Endpoint: aws.String(sub.URL + "/sns"),
	}); err != nil {
		t.Fatal(err)
	}

	// The write, through the HTTP handler.
	writer := httpapi.NewWriter(items, snspub.New(snsClient, *topic.TopicArn), auth.Gate{}, log)
	delivered.Add(1)
	resp, err := writer.Handle(ctx, events.APIGatewayV2HTTPRequest{
		RouteKey:       "PUT /rooms/{room}/items/{id}",
		RawPath:        "/rooms/demo/items/note-1",
		Headers:        map[string]string{"content-type": "application/json"},
		PathParameters: map[string]string{"room": "demo", "id": "note-1"},
		Body:           `{"text": "hello <world>"}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "PUT", Path: "/rooms/demo/items/note-1"},
		},
	})
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s %v", resp.StatusCode, resp.Body, err)
	}
	delivered.Wait()

	got := rec.Received()
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("frames went to %v, want exactly [a b]\nlogs: %s", got, logs.String())
	}
	for _, id := range got {
		frames := rec.Frames(id)
		if len(frames) != 1 {
			t.Fatalf("%s got %d frames", id, len(frames))
		}
		var f struct {
			Action, Type, Room, ID string
			Version                int64
			Data                   json.RawMessage
		}
		if err := json.Unmarshal(frames[0], &f); err != nil {
			t.Fatal(err)
		}
		if f.Action != "event" || f.Type != domain.EventItemPut || f.Room != "demo" || f.ID != "note-1" ||
			f.Version != 1 || string(f.Data) != `{"text": "hello <world>"}` {
			t.Errorf("%s got %s", id, frames[0])
		}
	}
	if _, err := conns.Get(ctx, "gone"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("the gone connection was not pruned: %v", err)
	}
	for page, err := range conns.Members(ctx, "demo") {
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(page, "gone") {
			t.Error("the gone connection's membership is still listed")
		}
	}
	if _, err := conns.Get(ctx, "c"); err != nil {
		t.Errorf("c, in another room, was touched: %v", err)
	}
}
