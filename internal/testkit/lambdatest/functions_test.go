package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/testkit/lambdafake"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }

// artifacts are the built binaries every subtest runs.
type artifacts struct {
	root       string
	bootstraps map[string]string
	rie        string
}

// TestFunctions builds the four functions and the emulator once, then runs
// each function's sample events through its bootstrap against moto.
func TestFunctions(t *testing.T) {
	if runtime.GOOS != "linux" {
		testenv.Unavailable(t, "lambdatest: the functions are linux binaries; this is %s", runtime.GOOS)
	}
	testenv.Moto(t)
	root := RepoRoot(t)
	dir := t.TempDir()
	a := artifacts{
		root:       root,
		bootstraps: Build(t, root, dir, runtime.GOARCH, Functions()...),
		rie:        BuildRIE(t, root, dir),
	}
	t.Run("ConnectionFunction", func(t *testing.T) { testConnectionFunction(t, a) })
	t.Run("ItemsFunctions", func(t *testing.T) { testItemsFunctions(t, a) })
	t.Run("BroadcastFunction", func(t *testing.T) { testBroadcastFunction(t, a) })
	t.Run("BroadcastShares", func(t *testing.T) { testBroadcastShares(t, a) })
	t.Run("WriteReachesRoom", func(t *testing.T) { testWriteReachesRoom(t, a) })
	t.Run("AuthorizerFunction", func(t *testing.T) { testAuthorizerFunction(t, a) })
	t.Run("OutboxFunction", func(t *testing.T) { testOutboxFunction(t, a) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, a) })
}

// stack is what the functions of one subtest talk to: tables and a topic
// in moto, the Management API backed by a recorder, and an HTTP
// subscription on the topic that keeps every notification.
type stack struct {
	moto       string
	home       string
	connsTable string
	itemsTable string
	topicARN   string
	mgmtURL    string
	conns      *dynamo.Connections
	items      *dynamo.Items
	recorder   *mgmtserver.Recorder
	notes      *testenv.SNSInbox
	// signingKey is the Secrets Manager secret (in moto) holding the
	// sample events' signing key.
	signingKey string
	// extra overrides or adds variables of every function's environment.
	extra map[string]string
}

// shareTarget is the function name shares are handed to in these tests.
const shareTarget = "pushgate-test-BroadcastFunction"

// sampleTopic is the topic of sns-item-put.json's record: the broadcaster
// refuses records of any topic but its TOPIC_ARN.
const sampleTopic = "arn:aws:sns:us-east-1:123456789012:pushgate-PushTopic-Q4m7Rz2kLx9w"

func newStack(t *testing.T) *stack {
	t.Helper()
	moto := testenv.Moto(t)
	cfg := testenv.AWSConfig(t, moto)
	ddb := dynamodb.NewFromConfig(cfg)
	s := &stack{
		moto:     moto,
		home:     t.TempDir(),
		recorder: mgmtserver.NewRecorder(),
		notes:    &testenv.SNSInbox{},
	}
	s.connsTable, s.itemsTable = testenv.Tables(t, ddb)
	secret, err := secretsmanager.NewFromConfig(cfg).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(testenv.Unique(t, "signing-key")), SecretString: aws.String(string(sampleSigningKey)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.signingKey = aws.ToString(secret.ARN)
	s.conns = dynamo.NewConnections(ddb, s.connsTable)
	s.items = dynamo.NewItems(ddb, s.itemsTable)

	// The SDK sends the stage as a path prefix, as it does against the
	// real endpoint; anything else is a 404 the delivery checks notice.
	mux := http.NewServeMux()
	mux.Handle("/"+sampleStage+"/", mgmtserver.Handler(s.recorder))
	mgmt := httptest.NewServer(mux)
	t.Cleanup(mgmt.Close)
	s.mgmtURL = mgmt.URL + "/" + sampleStage

	receiver := httptest.NewServer(snslocal.Receiver("", s.notes.Deliver, slog.New(slog.DiscardHandler)))
	t.Cleanup(receiver.Close)
	snsClient := sns.NewFromConfig(cfg)
	topic, err := snsClient.CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(testenv.Unique(t, "topic"))})
	if err != nil {
		t.Fatal(err)
	}
	s.topicARN = aws.ToString(topic.TopicArn)
	// Registered after the receiver's Close, so it runs before it: moto
	// must not deliver to a closed endpoint.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := snsClient.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: topic.TopicArn}); err != nil {
			t.Errorf("delete topic: %v", err)
		}
	})
	if _, err := snsClient.Subscribe(t.Context(), &sns.SubscribeInput{
		TopicArn: topic.TopicArn,
		Protocol: aws.String("http"),
		Endpoint: aws.String(receiver.URL + "/"),
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// env is function's environment: BaseEnv plus exactly the variables
// config.Required names for it, as the template sets them.
func (s *stack) env(t *testing.T, function string) map[string]string {
	t.Helper()
	values := map[string]string{
		config.EnvConnectionsTable:   s.connsTable,
		config.EnvItemsTable:         s.itemsTable,
		config.EnvTopicARN:           s.topicARN,
		config.EnvManagementEndpoint: s.mgmtURL,
		config.EnvFanoutWorkers:      "4",
		config.EnvFanoutAttempts:     "2",
		config.EnvConnectionTTL:      "2h10m",
		config.EnvFanoutFunction:     shareTarget,
		config.EnvFanoutShareSize:    "30000",
		config.EnvFanoutOwnShare:     "1000",
		config.EnvFanoutRate:         "10000",
		config.EnvAuthMode:           "key",
		config.EnvReadAccess:         "authenticated",
		config.EnvRelayRate:          "20",
		config.EnvRelayBurst:         "40",
		config.EnvAuthIssuer:         "pushgate",
		config.EnvAuthAudience:       "pushgate",
		config.EnvAuthJWKSURL:        "",
		config.EnvSigningKeySecret:   s.signingKey,
		config.EnvAllowedOrigins:     "",
		config.EnvHistoryTTL:         "24h",
		config.EnvOutboxGrace:        "30s",
	}
	env := BaseEnv(s.moto, s.home)
	env["AWS_LAMBDA_FUNCTION_NAME"] = function
	for _, name := range append(config.Required(function), config.Optional(function)...) {
		v, ok := values[name]
		if !ok {
			t.Fatalf("%s requires %s, which this test does not provide", function, name)
		}
		env[name] = v
	}
	maps.Copy(env, s.extra)
	return env
}

func (s *stack) start(t *testing.T, a artifacts, function string) *RIE {
	t.Helper()
	r := StartRIE(t, a.rie, a.bootstraps[function], s.env(t, function))
	t.Cleanup(func() {
		// Runs before the emulator stops, while its output is complete.
		if errs := r.ErrorLogs(); len(errs) > 0 {
			t.Errorf("%s logged errors:\n%s", function, strings.Join(errs, "\n"))
		}
		if t.Failed() {
			t.Logf("%s emulator output:\n%s", function, r.Output())
		}
	})
	return r
}

// putConnection stores a connection in rooms directly, as if it had
// connected earlier, and opens its socket at the Management API unless
// gone.
func (s *stack) putConnection(t *testing.T, id string, gone bool, rooms ...string) {
	t.Helper()
	now := time.Now()
	c := domain.Connection{ID: id, ConnectedAt: now, LastSeenAt: now, SourceIP: "198.51.100.7",
		UserAgent: "test", Rooms: rooms, ExpiresAt: now.Add(time.Hour)}
	if err := s.conns.Put(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if !gone {
		s.recorder.Open(id)
	}
}

func (s *stack) requireGone(t *testing.T, id string) {
	t.Helper()
	if c, err := s.conns.Get(t.Context(), id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("connection %s: Get = %+v, %v; want not found", id, c, err)
	}
}

// published decodes the pushgate events of every notification so far.
func published(t *testing.T, n *testenv.SNSInbox) ([]domain.Event, []events.SNSEvent) {
	t.Helper()
	var out []domain.Event
	evs := n.Events()
	for _, ev := range evs {
		for _, rec := range ev.Records {
			e, err := snspub.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	return out, evs
}

// invoke runs event through r and decodes the function's response as T,
// failing on an emulator error or a function error.
func invoke[T any](t *testing.T, r *RIE, event []byte) T {
	t.Helper()
	status, body := r.Invoke(t, event)
	if status != http.StatusOK {
		t.Fatalf("emulator answered %d: %s", status, body)
	}
	var fnErr struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &fnErr) == nil && fnErr.ErrorType != "" {
		t.Fatalf("function failed: %s: %s", fnErr.ErrorType, fnErr.ErrorMessage)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("response %s is not a %T: %v", body, v, err)
	}
	return v
}

// connectedAt sets the WebSocket event's connectedAt and requestTimeEpoch:
// the samples' lie in the past, and the record's TTL counts from them.
func connectedAt(t *testing.T, raw []byte, at time.Time) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	rc, ok := ev["requestContext"].(map[string]any)
	if !ok {
		t.Fatal("event without requestContext")
	}
	rc["connectedAt"] = at.UnixMilli()
	rc["requestTimeEpoch"] = time.Now().UnixMilli()
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeJSON[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return v
}

type errorFrame struct {
	Action  string `json:"action"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func testConnectionFunction(t *testing.T, a artifacts) {
	s := newStack(t)
	r := s.start(t, a, config.ConnectionFunction)
	at := time.Now().Truncate(time.Millisecond)
	const peer = "peerConnAAAAAA="
	s.putConnection(t, peer, false, sampleRoom)

	wantRooms := func(t *testing.T, rooms ...string) {
		t.Helper()
		c, err := s.conns.Get(t.Context(), sampleConnectionID)
		if err != nil {
			t.Fatalf("connection record: %v", err)
		}
		if !slices.Equal(c.Rooms, rooms) {
			t.Errorf("rooms = %v, want %v", c.Rooms, rooms)
		}
	}
	wantFrame := func(t *testing.T, resp events.APIGatewayProxyResponse, frame string) {
		t.Helper()
		if resp.StatusCode != http.StatusOK || resp.Body != frame {
			t.Errorf("response %d %q, want 200 %q", resp.StatusCode, resp.Body, frame)
		}
	}
	wantError := func(code string) func(*testing.T, events.APIGatewayProxyResponse) {
		return func(t *testing.T, resp events.APIGatewayProxyResponse) {
			f := decodeJSON[errorFrame](t, resp.Body)
			// The socket stays open: the error is a frame, not a status.
			if resp.StatusCode != http.StatusOK || f.Action != wire.ActionError || f.Code != code || f.Message == "" {
				t.Errorf("response %d %s, want 200 and an error frame with code %s", resp.StatusCode, resp.Body, code)
			}
		}
	}

	steps := []struct {
		file  string
		check func(*testing.T, events.APIGatewayProxyResponse)
	}{
		{"ws-connect.json", func(t *testing.T, resp events.APIGatewayProxyResponse) {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d %s, want 200", resp.StatusCode, resp.Body)
			}
			c, err := s.conns.Get(t.Context(), sampleConnectionID)
			if err != nil {
				t.Fatalf("connection record: %v", err)
			}
			ttl := c.ExpiresAt.Sub(at)
			if !slices.Equal(c.Rooms, []string{sampleRoom}) || c.SourceIP != "203.0.113.24" ||
				!strings.Contains(c.UserAgent, "Firefox/125.0") || !c.ConnectedAt.Equal(at) ||
				ttl <= 2*time.Hour+9*time.Minute || ttl > 2*time.Hour+10*time.Minute {
				t.Errorf("record = %+v; want room %s, the event's identity, connectedAt %v and a TTL of 2h10m", c, sampleRoom, at)
			}
		}},
		{"ws-subscribe.json", func(t *testing.T, resp events.APIGatewayProxyResponse) {
			wantFrame(t, resp, `{"action":"ack","of":"subscribe","room":"game-1"}`)
			wantRooms(t, sampleRoom, "game-1")
		}},
		{"ws-ping.json", func(t *testing.T, resp events.APIGatewayProxyResponse) {
			pong := decodeJSON[struct {
				Action string `json:"action"`
				Time   int64  `json:"time"`
			}](t, resp.Body)
			if resp.StatusCode != http.StatusOK || pong.Action != wire.ActionPong ||
				time.Since(time.UnixMilli(pong.Time)).Abs() > time.Minute {
				t.Errorf("response %d %s, want 200 and a pong with the current time", resp.StatusCode, resp.Body)
			}
			c, err := s.conns.Get(t.Context(), sampleConnectionID)
			if err != nil || !c.LastSeenAt.Equal(time.UnixMilli(pong.Time)) {
				t.Errorf("after ping: lastSeenAt %v, %v; want the pong's time", c.LastSeenAt, err)
			}
		}},
		{"ws-update.json", func(t *testing.T, resp events.APIGatewayProxyResponse) {
			if resp.StatusCode != http.StatusOK || resp.Body != "" {
				t.Errorf("response %d %q, want an empty 200", resp.StatusCode, resp.Body)
			}
			want := `{"from":"` + sampleConnectionID + `","action":"update","number":1,"data":{"type":"move","data":{"id":"p1","x":3}}}`
			if got := s.recorder.Frames(peer); len(got) != 1 || string(got[0]) != want {
				t.Errorf("peer received %q, want [%s]", got, want)
			}
			if got := s.recorder.Received(); !slices.Equal(got, []string{peer}) {
				t.Errorf("frames went to %v, want only the peer", got)
			}
		}},
		{"ws-unsubscribe.json", func(t *testing.T, resp events.APIGatewayProxyResponse) {
			wantFrame(t, resp, `{"action":"ack","of":"unsubscribe","room":"game-1"}`)
			wantRooms(t, sampleRoom)
		}},
		{"ws-invalid.json", wantError(domain.CodeInvalidJSON)},
		{"ws-unknown-action.json", wantError(domain.CodeUnknownAction)},
		{"ws-disconnect.json", func(t *testing.T, resp events.APIGatewayProxyResponse) {
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d %s, want 200", resp.StatusCode, resp.Body)
			}
			s.requireGone(t, sampleConnectionID)
			var members []string
			for page, err := range s.conns.Members(t.Context(), sampleRoom) {
				if err != nil {
					t.Fatal(err)
				}
				members = append(members, page...)
			}
			if !slices.Equal(members, []string{peer}) {
				t.Errorf("room %s members = %v, want only the peer", sampleRoom, members)
			}
		}},
	}
	covered := map[string]bool{}
	for _, step := range steps {
		covered[step.file] = true
		ok := t.Run(step.file, func(t *testing.T) {
			step.check(t, invoke[events.APIGatewayProxyResponse](t, r, connectedAt(t, readEvent(t, a.root, step.file), at)))
		})
		if !ok {
			return
		}
	}
	requireCovered(t, config.ConnectionFunction, covered)
}

// requireCovered fails when a sample event of function went untested.
func requireCovered(t *testing.T, function string, covered map[string]bool) {
	t.Helper()
	for _, fn := range Functions() {
		if fn.Name != function {
			continue
		}
		for _, file := range fn.Events {
			if !covered[file] {
				t.Errorf("%s: sample %s is not invoked", function, file)
			}
		}
	}
}

type itemBody struct {
	Room      string          `json:"room"`
	ID        string          `json:"id"`
	Version   int64           `json:"version"`
	UpdatedAt time.Time       `json:"updatedAt"`
	Data      json.RawMessage `json:"data"`
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func testItemsFunctions(t *testing.T, a artifacts) {
	s := newStack(t)
	write := s.start(t, a, config.ItemsWriteFunction)
	read := s.start(t, a, config.ItemsReadFunction)
	start := time.Now().Add(-time.Second)

	wantItem := func(t *testing.T, resp events.APIGatewayV2HTTPResponse, status int, id string, version int64, data string) {
		t.Helper()
		it := decodeJSON[itemBody](t, resp.Body)
		if resp.StatusCode != status || it.Room != sampleRoom || it.ID != id || it.Version != version ||
			it.UpdatedAt.Before(start) || !jsonEqual(it.Data, []byte(data)) {
			t.Errorf("response %d %s, want %d with %s/%s version %d data %s", resp.StatusCode, resp.Body, status, sampleRoom, id, version, data)
		}
		if etag := resp.Headers["ETag"]; etag != `"`+strconv.FormatInt(version, 10)+`"` {
			t.Errorf("ETag %q, want version %d", etag, version)
		}
	}
	wantError := func(t *testing.T, resp events.APIGatewayV2HTTPResponse, status int, code string) {
		t.Helper()
		e := decodeJSON[errorBody](t, resp.Body)
		if resp.StatusCode != status || e.Error.Code != code || e.Error.Message == "" {
			t.Errorf("response %d %s, want %d with error code %s", resp.StatusCode, resp.Body, status, code)
		}
	}
	wantPublished := func(t *testing.T, n int, typ, id string, version int64, data string) {
		t.Helper()
		got, _ := published(t, s.notes)
		if len(got) != n {
			t.Fatalf("%d events published, want %d: %+v", len(got), n, got)
		}
		e := got[n-1]
		if e.Type != typ || e.Room != sampleRoom || e.ID != id || e.Version != version || e.EventID == "" ||
			(data != "" && !jsonEqual(e.Data, []byte(data))) || (data == "" && len(e.Data) > 0) {
			t.Errorf("published %+v (data %s), want %s of %s/%s version %d data %s", e, e.Data, typ, sampleRoom, id, version, data)
		}
	}
	const note1 = `{"title":"Buy milk","done":false}`
	const note2 = `{"title":"Walk the dog","done":true}`

	steps := []struct {
		name string
		fn   *RIE
		file string
		// want checks the response and what the call left behind.
		want func(*testing.T, events.APIGatewayV2HTTPResponse)
	}{
		{"put", write, "http-put.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantItem(t, resp, http.StatusCreated, "note-1", 1, note1)
			wantPublished(t, 1, domain.EventItemPut, "note-1", 1, note1)
		}},
		{"put base64", write, "http-put-base64.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantItem(t, resp, http.StatusCreated, "note-2", 1, note2)
			wantPublished(t, 2, domain.EventItemPut, "note-2", 1, note2)
		}},
		{"put again replaces", write, "http-put.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantItem(t, resp, http.StatusOK, "note-1", 2, note1)
			wantPublished(t, 3, domain.EventItemPut, "note-1", 2, note1)
		}},
		{"reader refuses put", read, "http-put.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantError(t, resp, http.StatusMethodNotAllowed, domain.CodeMethodNotAllowed)
		}},
		{"get", read, "http-get.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantItem(t, resp, http.StatusOK, "note-1", 2, note1)
		}},
		{"writer refuses get", write, "http-get.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantError(t, resp, http.StatusMethodNotAllowed, domain.CodeMethodNotAllowed)
		}},
		{"list", read, "http-list.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			page := decodeJSON[struct {
				Items []itemBody `json:"items"`
				Next  string     `json:"next"`
			}](t, resp.Body)
			var ids []string
			for _, it := range page.Items {
				ids = append(ids, it.ID)
			}
			if resp.StatusCode != http.StatusOK || !slices.Equal(ids, []string{"note-1", "note-2"}) || page.Next != "" ||
				!jsonEqual(page.Items[1].Data, []byte(note2)) {
				t.Errorf("response %d %s, want 200 with note-1 and note-2 and no next page", resp.StatusCode, resp.Body)
			}
		}},
		{"delete", write, "http-delete.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			it := decodeJSON[itemBody](t, resp.Body)
			if resp.StatusCode != http.StatusOK || it.ID != "note-1" || it.Version != 3 || len(it.Data) > 0 {
				t.Errorf("response %d %s, want 200 with note-1 version 3 and no data", resp.StatusCode, resp.Body)
			}
			wantPublished(t, 4, domain.EventItemDeleted, "note-1", 3, "")
		}},
		{"get after delete", read, "http-get.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			wantError(t, resp, http.StatusNotFound, domain.CodeNotFound)
		}},
		// The room's history after seq 1: the three later writes, with
		// their seqs, as they were published.
		{"history", read, "http-events.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			page := decodeJSON[struct {
				Events []eventFrame `json:"events"`
				Last   int64        `json:"last"`
			}](t, resp.Body)
			published, _ := published(t, s.notes)
			if resp.StatusCode != http.StatusOK || page.Last != 4 || len(page.Events) != 3 || len(published) != 4 {
				t.Fatalf("response %d %s; want 200, last 4, the 3 events after seq 1", resp.StatusCode, resp.Body)
			}
			for i, e := range page.Events {
				p := published[i+1]
				if e.Action != wire.ActionEvent || e.Seq != int64(i+2) || e.EventID != p.EventID || e.Seq != p.Seq || e.Version != p.Version {
					t.Errorf("history event %d = %+v; published %+v", i, e, p)
				}
			}
		}},
	}
	covered := map[string]bool{}
	for _, step := range steps {
		covered[step.file] = true
		ok := t.Run(step.name, func(t *testing.T) {
			step.want(t, invoke[events.APIGatewayV2HTTPResponse](t, step.fn, readEvent(t, a.root, step.file)))
		})
		if !ok {
			return
		}
	}
	requireCovered(t, config.ItemsWriteFunction, covered)
	requireCovered(t, config.ItemsReadFunction, covered)
}

type eventFrame struct {
	Action string `json:"action"`
	domain.Event
}

func testBroadcastFunction(t *testing.T, a artifacts) {
	s := newStack(t)
	s.extra = map[string]string{config.EnvTopicARN: sampleTopic}
	r := s.start(t, a, config.BroadcastFunction)
	const live, gone, elsewhere = "liveConnAAAAAA=", "goneConnAAAAAA=", "elseConnAAAAAA="
	s.putConnection(t, live, false, sampleRoom)
	// Stored but its socket closed: the Management API answers 410.
	s.putConnection(t, gone, true, sampleRoom)
	s.putConnection(t, elsewhere, false, "other")

	raw := readEvent(t, a.root, "sns-item-put.json")
	sent := decodeEvent[events.SNSEvent](t, raw)
	want, err := snspub.Decode(sent.Records[0])
	if err != nil {
		t.Fatal(err)
	}
	status, body := r.Invoke(t, raw)
	// The handler returns only an error, so success is a null payload.
	if status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("invocation answered %d %s, want 200 null", status, body)
	}
	frames := s.recorder.Frames(live)
	if len(frames) != 1 {
		t.Fatalf("live connection received %d frames, want 1", len(frames))
	}
	if !bytes.Equal(frames[0], wire.EventFrame(want)) {
		t.Errorf("frame %s, want %s", frames[0], wire.EventFrame(want))
	}
	var f eventFrame
	if err := json.Unmarshal(frames[0], &f); err != nil {
		t.Fatal(err)
	}
	if f.Action != wire.ActionEvent || f.EventID != want.EventID || f.Type != domain.EventItemPut ||
		f.Room != sampleRoom || f.ID != "note-1" || f.Version != 1 || !jsonEqual(f.Data, want.Data) {
		t.Errorf("frame %s is not the event %+v", frames[0], want)
	}
	if got := s.recorder.Frames(elsewhere); len(got) > 0 {
		t.Errorf("a connection in another room received %q", got)
	}
	s.requireGone(t, gone)
	if _, err := s.conns.Get(t.Context(), live); err != nil {
		t.Errorf("live connection: %v", err)
	}

	// A share, as the broadcaster hands one to itself: posted to its ids
	// only, the one without a socket pruned (it has no record: no error).
	status, body = r.Invoke(t, readEvent(t, a.root, "broadcast-share.json"))
	if status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("share invocation answered %d %s, want 200 null", status, body)
	}
	if frames := s.recorder.Frames(live); len(frames) != 2 || !bytes.Equal(frames[1], wire.EventFrame(want)) {
		t.Errorf("after the share the live connection has %d frames, want the event again", len(frames))
	}
	if got := s.recorder.Frames(elsewhere); len(got) > 0 {
		t.Errorf("a connection not in the share received %q", got)
	}
	if !r.OutputHas(`"msg":"broadcast share"`) {
		t.Errorf("no share summary line:\n%s", r.Output())
	}
	requireCovered(t, config.BroadcastFunction, map[string]bool{"sns-item-put.json": true, "broadcast-share.json": true})
}

// testBroadcastShares: the built broadcaster, with a share size of 25,
// lists a room of 100 in moto, posts to 25 and hands 3 shares of 25 to
// itself through the real Lambda client, at a fake Invoke API that runs
// each in a second emulator of the same bootstrap. Every live member gets
// the frame once; gone ones are pruned wherever they fall.
func testBroadcastShares(t *testing.T, a artifacts) {
	s := newStack(t)
	worker := (*RIE)(nil)
	fake := lambdafake.Start(t, 1, map[string]lambdafake.Run{
		shareTarget: func(ctx context.Context, payload []byte) error {
			status, body, err := worker.Call(ctx, payload)
			if err != nil {
				return err
			}
			if status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
				return fmt.Errorf("share answered %d %s", status, body)
			}
			return nil
		},
	})
	s.extra = map[string]string{config.EnvFanoutShareSize: "25", "AWS_ENDPOINT_URL_LAMBDA": fake.URL, config.EnvTopicARN: sampleTopic}
	worker = s.start(t, a, config.BroadcastFunction)
	coordinator := s.start(t, a, config.BroadcastFunction)

	const n = 100
	var live, gone []string
	for i := range n {
		id := fmt.Sprintf("conn%010d=", i)
		isGone := i%10 == 3
		s.putConnection(t, id, isGone, sampleRoom)
		if isGone {
			gone = append(gone, id)
		} else {
			live = append(live, id)
		}
	}
	raw := readEvent(t, a.root, "sns-item-put.json")
	want, err := snspub.Decode(decodeEvent[events.SNSEvent](t, raw).Records[0])
	if err != nil {
		t.Fatal(err)
	}
	if status, body := coordinator.Invoke(t, raw); status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("invocation answered %d %s", status, body)
	}
	fake.Wait()
	for _, id := range live {
		if frames := s.recorder.Frames(id); len(frames) != 1 || !bytes.Equal(frames[0], wire.EventFrame(want)) {
			t.Errorf("%s received %d frames, want the event once", id, len(frames))
		}
	}
	for _, id := range gone {
		s.requireGone(t, id)
	}
	if st := fake.Stats(); st.Accepted != 3 || st.Ran != 3 || st.Failed != 0 {
		t.Errorf("fake Lambda %+v, want 3 shares run", st)
	}
	if p := fake.Problems(); len(p) > 0 {
		t.Errorf("fake Lambda saw: %v", p)
	}
	if out := coordinator.Output(); !strings.Contains(out, `"recipients":100`) || !strings.Contains(out, `"shared":75,"shares":3`) {
		t.Errorf("coordinator summary lacks its counts:\n%s", out)
	}
}

// testWriteReachesRoom chains the functions: a PUT through the write
// function publishes to the topic, the notification moto delivers is what
// Lambda would hand the broadcast function, and the broadcast function
// pushes it to the room.
func testWriteReachesRoom(t *testing.T, a artifacts) {
	s := newStack(t)
	write := s.start(t, a, config.ItemsWriteFunction)
	bcast := s.start(t, a, config.BroadcastFunction)
	const member = "memberConnAAAA="
	s.putConnection(t, member, false, sampleRoom)

	resp := invoke[events.APIGatewayV2HTTPResponse](t, write, readEvent(t, a.root, "http-put.json"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put: %d %s", resp.StatusCode, resp.Body)
	}
	published, notes := published(t, s.notes)
	if len(notes) != 1 || len(published) != 1 {
		t.Fatalf("%d notifications, want 1", len(notes))
	}
	event, err := json.Marshal(notes[0])
	if err != nil {
		t.Fatal(err)
	}
	if status, body := bcast.Invoke(t, event); status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("broadcast answered %d %s, want 200 null", status, body)
	}
	frames := s.recorder.Frames(member)
	if len(frames) != 1 || !bytes.Equal(frames[0], wire.EventFrame(published[0])) {
		t.Fatalf("member received %q, want [%s]", frames, wire.EventFrame(published[0]))
	}
}

// testOutboxFunction: a write whose publish failed a minute ago (stored
// on the outbox, never published) is published by the scheduled sweep,
// once; a write published since is left alone.
func testOutboxFunction(t *testing.T, a artifacts) {
	s := newStack(t)
	r := s.start(t, a, config.OutboxFunction)
	write := func(id string, at time.Time) domain.Event {
		t.Helper()
		put, err := s.items.PutItem(t.Context(), domain.Item{Room: sampleRoom, ID: id, Data: json.RawMessage(`{"n":1}`)},
			domain.Precondition{}, domain.Change{Now: at, EventID: domain.NewID(), HistoryTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return put.Event
	}
	lost := write("lost", time.Now().Add(-time.Minute))
	write("recent", time.Now())
	raw := readEvent(t, a.root, "outbox-schedule.json")
	for range 2 {
		if status, body := r.Invoke(t, raw); status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("sweep answered %d %s, want 200 null", status, body)
		}
	}
	got, _ := published(t, s.notes)
	if len(got) != 1 || got[0].EventID != lost.EventID || got[0].Seq != 1 || !jsonEqual(got[0].Data, lost.Data) {
		t.Fatalf("published %+v, want only %+v, once", got, lost)
	}
	if !r.OutputHas(`"found":1,"claimed":1,"published":1,"failed":0`) {
		t.Errorf("no summary of the sweep that published it:\n%s", r.Output())
	}
	requireCovered(t, config.OutboxFunction, map[string]bool{"outbox-schedule.json": true})
}
