package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/local/samtemplate"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }

type mode struct {
	name  string
	setup func(t testing.TB, o *local.Options)
}

var modes = []mode{
	{"embedded", func(testing.TB, *local.Options) {}},
	{"moto", func(t testing.TB, o *local.Options) {
		// A moto of its own: the stack's table and topic names are fixed.
		ep := testenv.StartMoto(t)
		o.DynamoDBEndpoint, o.SNSEndpoint = ep, ep
	}},
}

func start(t testing.TB, m mode, tweak func(*local.Options)) (*local.Stack, *testenv.Buffer) {
	t.Helper()
	return localtest.Start(t, func(o *local.Options) {
		m.setup(t, o)
		if tweak != nil {
			tweak(o)
		}
	})
}

func dial(t testing.TB, s *local.Stack, room string) *wsclient.Client {
	t.Helper()
	query := ""
	if room != "" {
		query = "room=" + room
	}
	return wsclient.Dial(t, localtest.WebSocketURL(t, s, query))
}

func put(t *testing.T, s *local.Stack, room, id, body string) int {
	t.Helper()
	a := call(t, s, http.MethodPut, "/rooms/"+room+"/items/"+id, body)
	if a.status >= 300 {
		t.Logf("PUT %s/%s: %d %s", room, id, a.status, a.body)
	}
	return a.status
}

// answer is an HTTP response as a test reads it.
type answer struct {
	status     int
	code       string
	version    int64
	retryAfter string
	body       string
}

func call(t *testing.T, s *local.Stack, method, path, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, s.HTTPURL()+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(localtest.Authorize(t, s, req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var parsed struct {
		Version int64 `json:"version"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &parsed); err != nil {
		t.Fatalf("%s %s answered %d with no JSON: %q", method, path, resp.StatusCode, b)
	}
	return answer{resp.StatusCode, parsed.Error.Code, parsed.Version, resp.Header.Get("Retry-After"), string(b)}
}

func TestLocalStack(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Run("write is pushed to exactly the room", func(t *testing.T) {
				s, _ := start(t, m, nil)
				a1, a2, b := dial(t, s, "alpha"), dial(t, s, "alpha"), dial(t, s, "beta")
				lobby := dial(t, s, "")
				if code := put(t, s, "alpha", "n1", `{"text": "hi"}`); code != http.StatusCreated {
					t.Fatalf("PUT = %d", code)
				}
				for _, c := range []*wsclient.Client{a1, a2} {
					f := c.Next()
					if f["action"] != "event" || f["type"] != domain.EventItemPut || f["room"] != "alpha" || f["id"] != "n1" || f["version"] != float64(1) {
						t.Errorf("frame %v", f)
					}
					if d, _ := json.Marshal(f["data"]); string(d) != `{"text":"hi"}` {
						t.Errorf("data %s", d)
					}
				}
				b.Quiet()
				lobby.Quiet()
				// A client joining beta later gets beta's writes too.
				a1.Send(`{"action":"subscribe","room":"beta"}`)
				if f := a1.Next(); f["action"] != "ack" || f["room"] != "beta" {
					t.Fatalf("subscribe: %v", f)
				}
				put(t, s, "beta", "n2", `{}`)
				for _, c := range []*wsclient.Client{a1, b} {
					if f := c.Next(); f["room"] != "beta" || f["id"] != "n2" {
						t.Errorf("frame %v", f)
					}
				}
				a2.Quiet()
			})
			t.Run("ping, bad frames and relays", func(t *testing.T) {
				s, _ := start(t, m, nil)
				a, b := dial(t, s, "g"), dial(t, s, "g")
				a.Send(`{"action":"ping"}`)
				if f := a.Next(); f["action"] != "pong" || f["time"] == nil {
					t.Errorf("pong: %v", f)
				}
				a.Send(`not json`)
				if f := a.Next(); f["action"] != "error" || f["code"] != domain.CodeInvalidJSON {
					t.Errorf("error frame: %v", f)
				}
				a.Send(`{"action":"update","target":"*","number":3,"data":{"type":"move","data":{"id":"p1"}}}`)
				f := b.Next()
				if f["action"] != "update" || f["number"] != float64(3) || f["from"] == "" {
					t.Errorf("relay: %v", f)
				}
				a.Quiet() // the sender gets nothing back, and its socket stays
				a.Send(`{"action":"ping"}`)
				if f := a.Next(); f["action"] != "pong" {
					t.Errorf("socket unusable after an error: %v", f)
				}
			})
			t.Run("oversized frame closes 1009", func(t *testing.T) {
				s, _ := start(t, m, nil)
				a := dial(t, s, "")
				a.Send(`{"action":"ping","pad":"` + strings.Repeat("x", 40*1024) + `"}`)
				if code := a.Closed(); code != websocket.StatusMessageTooBig {
					t.Errorf("close code %d, want 1009", code)
				}
			})
			t.Run("idle timeout closes 1001 and forgets the connection", func(t *testing.T) {
				s, _ := start(t, m, func(o *local.Options) { o.IdleTimeout = 500 * time.Millisecond })
				a := dial(t, s, "idle")
				ids := s.ConnectionIDs()
				if len(ids) != 1 {
					t.Fatalf("open connections %v", ids)
				}
				if code := a.Closed(); code != websocket.StatusGoingAway {
					t.Errorf("close code %d, want 1001", code)
				}
				deadline := time.Now().Add(5 * time.Second)
				for {
					_, err := s.Connections().Get(context.Background(), ids[0])
					if errors.Is(err, domain.ErrNotFound) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("connection still stored after $disconnect: %v", err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
			t.Run("management API through the SDK", func(t *testing.T) {
				s, _ := start(t, m, nil)
				a := dial(t, s, "")
				ids := s.ConnectionIDs()
				if len(ids) != 1 {
					t.Fatalf("open connections %v", ids)
				}
				id := ids[0]
				api := apigatewaymanagementapi.NewFromConfig(aws.Config{
					Region: "us-east-1",
					Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
						return aws.Credentials{AccessKeyID: "x", SecretAccessKey: "x"}, nil
					}),
				}, func(o *apigatewaymanagementapi.Options) { o.BaseEndpoint = aws.String(s.ManagementURL()) })
				ctx := context.Background()
				if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte(`{"hello":1}`)}); err != nil {
					t.Fatal(err)
				}
				if f := a.Next(); f["hello"] != float64(1) {
					t.Errorf("posted frame %v", f)
				}
				info, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
				if err != nil || info.ConnectedAt == nil || info.Identity == nil || aws.ToString(info.Identity.SourceIp) != "127.0.0.1" {
					t.Fatalf("GetConnection: %+v %v", info, err)
				}
				if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id}); err != nil {
					t.Fatal(err)
				}
				a.Closed()
				var gone *types.GoneException
				_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte(`{}`)})
				if !errors.As(err, &gone) {
					t.Errorf("post to a closed connection: %v, want GoneException", err)
				}
			})
		})
	}
}

// TestAWSCLIPostToConnection posts with the AWS CLI, as the README's tour
// does.
func TestAWSCLIPostToConnection(t *testing.T) {
	awsCLI := testenv.Required(t, "aws")
	s, _ := start(t, modes[0], nil)
	a := dial(t, s, "")
	id := s.ConnectionIDs()[0]
	cmd := exec.Command(awsCLI, "apigatewaymanagementapi", "post-to-connection",
		"--endpoint-url", s.ManagementURL(), "--connection-id", id, "--data", `{"from":"cli"}`)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aws cli: %v\n%s", err, out)
	}
	if f := a.Next(); f["from"] != "cli" {
		t.Errorf("frame %v", f)
	}
}

func TestConnectRefusedWithHandlerStatus(t *testing.T) {
	s, _ := start(t, modes[0], nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, localtest.WebSocketURL(t, s, "room=bad%20room"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial with an invalid room: resp %v err %v, want 400", resp, err)
	}
}

// TestRoutesAgreeWithTemplate proves the local stack serves exactly the
// template's routes: every HTTP route reaches its function, and the
// WebSocket API selects routes as the template says.
func TestRoutesAgreeWithTemplate(t *testing.T) {
	tmpl, err := samtemplate.Load(filepath.Join(localtest.Root(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl, err = tmpl.Resolved(nil); err != nil {
		t.Fatal(err)
	}
	api, _, err := tmpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	s, logs := start(t, modes[0], nil)
	for _, r := range api.Routes {
		name := r.Function
		method := r.Method
		if method == "ANY" {
			method = http.MethodPost
		}
		path := strings.NewReplacer("{room}", "r1", "{id}", "i1").Replace(r.Path)
		if r.Path == "$default" {
			path = "/no/such/route"
		}
		before := len(logs.String())
		req, _ := http.NewRequest(method, s.HTTPURL()+path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(localtest.Authorize(t, s, req))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// The gateway logs the route it matched, the function its own
		// invocation.
		lines := logs.String()[before:]
		routeKey := fmt.Sprintf(`"route":%q`, r.Method+" "+r.Path)
		if r.Path == "$default" {
			routeKey = `"route":"$default"`
		}
		fnLine := fmt.Sprintf(`"function":%q`, name)
		if !strings.Contains(lines, routeKey) || !strings.Contains(lines, fnLine) {
			t.Errorf("%s %s did not reach %s (status %d):\n%s", r.Method, r.Path, name, resp.StatusCode, lines)
		}
	}
	ws, err := tmpl.WebSocket()
	if err != nil {
		t.Fatal(err)
	}
	if ws.RouteSelectionExpression != "$request.body.action" {
		t.Errorf("selection %q", ws.RouteSelectionExpression)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range ws.Routes {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"$connect", "$default", "$disconnect"}) {
		t.Errorf("websocket routes %v", keys)
	}
}

func TestInvoke(t *testing.T) {
	s, _ := start(t, modes[0], nil)
	tests := []struct {
		function, event string
		want            string
	}{
		{"ItemsWriteFunction", "http-put.json", `"statusCode":201`},
		{"ItemsReadFunction", "http-get.json", `"statusCode":200`},
		{"ConnectionFunction", "ws-invalid.json", `invalid_json`},
		{"ConnectionFunction", "ws-connect.json", `"statusCode":200`},
		{"OutboxFunction", "outbox-schedule.json", `null`},
	}
	for _, tc := range tests {
		ev, err := os.ReadFile(filepath.Join(localtest.Root(), "events", tc.event))
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Invoke(context.Background(), tc.function, ev)
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s %s: %s %v, want %s", tc.function, tc.event, out, err, tc.want)
		}
	}
	if _, err := s.Invoke(context.Background(), "Nope", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "ConnectionFunction") {
		t.Errorf("unknown function: %v", err)
	}
}

// TestCloseSaysGoingAway is what Ctrl-C does: every socket is closed with
// 1001 and its $disconnect runs before Close returns.
func TestCloseSaysGoingAway(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s, _ := start(t, m, nil)
			a, b := dial(t, s, "x"), dial(t, s, "y")
			ids := s.ConnectionIDs()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*wsclient.Client{a, b} {
				if code := c.Closed(); code != websocket.StatusGoingAway {
					t.Errorf("close code %d, want 1001", code)
				}
			}
			for _, id := range ids {
				if _, err := s.Connections().Get(context.Background(), id); !errors.Is(err, domain.ErrNotFound) {
					t.Errorf("%s still stored after shutdown: %v", id, err)
				}
			}
		})
	}
}

// TestStaleSubscriptionIsRemoved: a stack killed without Close leaves its
// SNS subscription behind, and moto fails every publish to a dead endpoint;
// the next start must clean it up.
func TestStaleSubscriptionIsRemoved(t *testing.T) {
	ep := testenv.StartMoto(t)
	client := sns.NewFromConfig(testenv.AWSConfig(t, ep))
	topic, err := client.CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String(local.StackName + "-PushTopic")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Subscribe(context.Background(), &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("http"),
		Endpoint: aws.String("http://" + testenv.FreeAddr(t) + "/_local/sns/BroadcastFunction"),
	}); err != nil {
		t.Fatal(err)
	}
	// A subscription of a stack still running stays.
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer live.Close()
	liveEndpoint := live.URL + "/_local/sns/BroadcastFunction"
	if _, err := client.Subscribe(context.Background(), &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("http"), Endpoint: aws.String(liveEndpoint),
	}); err != nil {
		t.Fatal(err)
	}
	s, _ := start(t, mode{"moto", func(t testing.TB, o *local.Options) { o.DynamoDBEndpoint, o.SNSEndpoint = ep, ep }}, nil)
	subs, err := client.ListSubscriptionsByTopic(context.Background(), &sns.ListSubscriptionsByTopicInput{TopicArn: topic.TopicArn})
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, sub := range subs.Subscriptions {
		endpoints = append(endpoints, aws.ToString(sub.Endpoint))
	}
	if len(endpoints) != 2 || !slices.Contains(endpoints, liveEndpoint) {
		t.Errorf("subscriptions %v: want the live one and the stack's", endpoints)
	}
	a := dial(t, s, "r")
	if code := put(t, s, "r", "x", `{}`); code != http.StatusCreated {
		t.Fatalf("PUT = %d", code)
	}
	if f := a.Next(); f["id"] != "x" {
		t.Errorf("frame %v", f)
	}
}

// TestExternalStoreThatLostItsTables: moto restarted under a running
// stack (here: reset) comes back empty. The stack recreates its tables,
// topic and subscription and keeps serving; an open socket, whose record
// went with the tables, is told not_found so its client reconnects.
func TestExternalStoreThatLostItsTables(t *testing.T) {
	ep := testenv.StartMoto(t)
	s, logs := start(t, mode{"moto", func(t testing.TB, o *local.Options) { o.DynamoDBEndpoint, o.SNSEndpoint = ep, ep }}, nil)
	a := dial(t, s, "r")
	if code := put(t, s, "r", "before", `{}`); code != http.StatusCreated {
		t.Fatalf("PUT = %d", code)
	}
	a.Next()
	// The broadcast ends after its posts (it records its receipt then):
	// reset only once it has, or it heals the tables itself.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"msg":"broadcast"`); {
		if time.Now().After(deadline) {
			t.Fatal("the broadcast did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Post(ep+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	for _, msg := range []string{`{"action":"ping"}`, `{"action":"whoami"}`, `{"action":"update","target":"*"}`} {
		a.Send(msg)
		if f := a.Next(); f["action"] != "error" || f["code"] != domain.CodeNotFound {
			t.Errorf("%s after the reset: %v, want not_found", msg, f)
		}
	}
	b := dial(t, s, "r")
	if code := put(t, s, "r", "after", `{"n":1}`); code != http.StatusCreated {
		t.Fatalf("PUT after the reset = %d", code)
	}
	if f := b.Next(); f["id"] != "after" {
		t.Errorf("frame %v", f)
	}
	for _, want := range []string{"had lost the stack's tables", "had lost the stack's topic"} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("%d log lines say %q, want 1", n, want)
		}
	}
}

func TestConfigJSONUsesTheRequestHost(t *testing.T) {
	s, _ := start(t, modes[0], nil)
	req, _ := http.NewRequest(http.MethodGet, s.HTTPURL()+"/config.json", nil)
	req.Host = "board.example:3000"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct{ HTTPAPI, WebSocket string }
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	_, wsPort, _ := strings.Cut(strings.TrimPrefix(s.WebSocketURL(), "ws://127.0.0.1"), ":")
	if cfg.WebSocket != "ws://board.example:"+wsPort {
		t.Errorf("webSocket = %q, want ws://board.example:%s", cfg.WebSocket, wsPort)
	}
}

// TestCORSFollowsTemplate: preflights are answered with the HttpApi's
// CorsConfiguration, its AllowedOrigin parameter resolved to the default.
func TestCORSFollowsTemplate(t *testing.T) {
	s, _ := start(t, modes[0], nil)
	req, _ := http.NewRequest(http.MethodOptions, s.HTTPURL()+"/rooms/r/items/i", nil)
	req.Header.Set("Origin", "http://elsewhere.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") || !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "if-match") {
		t.Errorf("preflight %d %v", resp.StatusCode, h)
	}
}

// TestBigRoomsAreShared: with a low share threshold, a write to a room and
// a client's relay of "*" to it are posted in shares, by the same
// asynchronous-invocation path as deployed; every member gets one copy,
// the relay's sender none.
func TestBigRoomsAreShared(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s, logs := start(t, m, func(o *local.Options) {
				o.Parameters = map[string]string{"FanoutShareSize": "15", "RelayOwnShare": "10"}
			})
			const n = 60
			clients := make([]*wsclient.Client, n)
			for i := range clients {
				clients[i] = dial(t, s, "big")
			}
			expectOnce := func(what string, skip int, match func(map[string]any) bool) {
				t.Helper()
				for i, c := range clients {
					if i == skip {
						continue
					}
					if f := c.Next(); !match(f) {
						t.Fatalf("%s: client %d got %v", what, i, f)
					}
				}
				time.Sleep(150 * time.Millisecond) // time for a second copy to arrive
				for i, c := range clients {
					if i != skip {
						if f, err := c.Receive(time.Millisecond); err == nil {
							t.Fatalf("%s: client %d got a second frame %.200q", what, i, f.Data)
						}
					}
				}
			}
			if code := put(t, s, "big", "n1", `{"v":1}`); code != http.StatusCreated {
				t.Fatalf("PUT = %d", code)
			}
			expectOnce("write", -1, func(f map[string]any) bool { return f["action"] == "event" && f["id"] == "n1" })
			clients[0].Send(`{"action":"update","target":"*","data":{"move":7}}`)
			expectOnce("relay", 0, func(f map[string]any) bool { return f["action"] == "update" && f["from"] != nil })
			clients[0].Quiet()

			// The broadcaster listed 60, kept 15 and handed 45 to 3 shares;
			// the relay kept 10 and handed 49 to 4.
			var summary, relay map[string]any
			shares := 0
			for l := range strings.SplitSeq(logs.String(), "\n") {
				var e map[string]any
				if json.Unmarshal([]byte(l), &e) != nil {
					continue
				}
				switch {
				case e["msg"] == "broadcast":
					summary = e
				case e["msg"] == "broadcast share":
					shares++
				case e["msg"] == "websocket event" && e["recipients"] != nil:
					relay = e
				}
			}
			if summary["recipients"] != float64(n) || summary["shared"] != float64(45) || summary["shares"] != float64(3) {
				t.Errorf("broadcast summary %v", summary)
			}
			if relay["recipients"] != float64(n-1) || relay["shared"] != float64(49) || relay["shares"] != float64(4) {
				t.Errorf("relay summary %v", relay)
			}
			if shares != 7 {
				t.Errorf("%d share lines, want 7", shares)
			}
		})
	}
}

// TestUnknownParameterIsRefused: a -parameter the template does not have
// is a mistake to report, not to ignore.
func TestUnknownParameterIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := local.Start(ctx, local.Options{
		HTTPPort: -1, WSPort: -1,
		TemplatePath: filepath.Join(localtest.Root(), "template.yaml"),
		Parameters:   map[string]string{"FanoutShareSise": "10"},
		Log:          slog.New(slog.DiscardHandler),
	})
	if err == nil || !strings.Contains(err.Error(), "no parameter FanoutShareSise") {
		t.Fatalf("Start = %v, want the unknown parameter named", err)
	}
}

// TestAuthNone: with AuthMode=none (-auth none) the stack runs no
// authorizer, anyone connects, joins and writes without a token, and it
// says so, loudly.
func TestAuthNone(t *testing.T) {
	s, logs := start(t, modes[0], func(o *local.Options) { o.Parameters = map[string]string{"AuthMode": "none"} })
	if s.AuthMode() != "none" {
		t.Fatalf("AuthMode() = %q", s.AuthMode())
	}
	if slices.Contains(s.FunctionNames(), "AuthorizerFunction") {
		t.Fatal("an authorizer is deployed with auth off")
	}
	c := wsclient.Dial(t, s.WebSocketURL()+"?room=open")
	c.Send(`{"action":"whoami"}`)
	if f := c.Next(); f["user"] != "anonymous" {
		t.Fatalf("whoami = %v, want user anonymous", f)
	}
	c.Send(`{"action":"subscribe","room":"anything"}`)
	if f := c.Next(); f["action"] != "ack" {
		t.Fatalf("subscribe = %v", f)
	}
	req, _ := http.NewRequest(http.MethodPut, s.HTTPURL()+"/rooms/open/items/a", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT without a token: %s", resp.Status)
	}
	if f := c.Next(); f["action"] != "event" {
		t.Fatalf("the event: %v", f)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"AUTH IS OFF`) {
		t.Errorf("no AUTH IS OFF warning in the log:\n%s", logs.String())
	}
	if _, err := s.Token(local.TokenRequest{User: "u"}); !errors.Is(err, local.ErrNoTokens) {
		t.Errorf("Token with auth off = %v, want ErrNoTokens", err)
	}
}

// TestConfigJSONToken: config.json gives the pages a token the stack
// accepts for every room.
func TestConfigJSONToken(t *testing.T) {
	s, _ := start(t, modes[0], nil)
	resp, err := http.Get(s.HTTPURL() + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct{ Auth, Token, WebSocket string }
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil || cfg.Auth != "key" || cfg.Token == "" {
		t.Fatalf("config.json = %+v, %v", cfg, err)
	}
	c := wsclient.Dial(t, cfg.WebSocket+"?room=any-room&token="+cfg.Token)
	c.Send(`{"action":"whoami"}`)
	if f := c.Next(); f["user"] != "demo-page" {
		t.Fatalf("whoami = %v", f)
	}
}
