package lambdatest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/authorizer"
	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/wire"
	"github.com/pushgate/pushgate/internal/wsapi"
)

// The sample WebSocket events are one connection's life, so they share its
// id and connection time.
const (
	sampleConnectionID = "WcK2dcPZoAMCFwQ="
	sampleConnectedAt  = 1714564800000
	sampleStage        = "prod"
	sampleRoom         = "demo"
)

func readEvent(t *testing.T, root, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, EventsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// decodeEvent decodes raw as the Lambda runtime would, refusing fields the
// type lacks. These files are ours, so an unknown field is a typo or
// something the function could never see. It also requires the decoding
// to lose nothing: encoding/json matches names case-insensitively, so a
// miscased "connectionID" would decode yet reveal itself on re-encoding.
func decodeEvent[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode into %T: %v", v, err)
	}
	if dec.More() {
		t.Fatalf("decode into %T: data after the event", v)
	}
	back, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var orig, round any
	if err := json.Unmarshal(raw, &orig); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &round); err != nil {
		t.Fatal(err)
	}
	orig, round = prune(orig), prune(round)
	if !reflect.DeepEqual(orig, round) {
		a, _ := json.MarshalIndent(orig, "", " ")
		b, _ := json.MarshalIndent(round, "", " ")
		t.Fatalf("decoding into %T loses or changes data:\nfile:\n%s\nas decoded:\n%s", v, a, b)
	}
	return v
}

// prune drops zero values (null, "", false, 0, {}, []) from objects, since
// a file may spell them out where the type omits them and the other way
// round; what is left must survive decoding unchanged.
func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			e = prune(e)
			if !isZero(e) {
				out[k] = e
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = prune(e)
		}
		return out
	}
	return v
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case float64:
		return v == 0
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

// wsEvent describes one WebSocket sample: its route and, for a message,
// what wire.ParseFrame must make of its body.
type wsEvent struct {
	route, eventType string
	action           string // the frame's action, for a valid message
	errCode          string // ParseFrame's error code, for an invalid one
}

func checkWebsocket(want wsEvent) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		ev := decodeEvent[events.APIGatewayWebsocketProxyRequest](t, raw)
		rc := ev.RequestContext
		if rc.RouteKey != want.route || rc.EventType != want.eventType {
			t.Errorf("routeKey, eventType = %q, %q; want %q, %q", rc.RouteKey, rc.EventType, want.route, want.eventType)
		}
		if rc.ConnectionID != sampleConnectionID || rc.ConnectedAt != sampleConnectedAt {
			t.Errorf("connectionId, connectedAt = %q, %d; want the samples' %q, %d",
				rc.ConnectionID, rc.ConnectedAt, sampleConnectionID, sampleConnectedAt)
		}
		if rc.RequestTimeEpoch < rc.ConnectedAt {
			t.Errorf("requestTimeEpoch %d is before connectedAt %d", rc.RequestTimeEpoch, rc.ConnectedAt)
		}
		if rc.Stage != sampleStage || rc.APIID == "" || !strings.HasPrefix(rc.DomainName, rc.APIID+".execute-api.") {
			t.Errorf("stage, apiId, domainName = %q, %q, %q", rc.Stage, rc.APIID, rc.DomainName)
		}
		if rc.RequestID == "" || rc.ExtendedRequestID == "" || rc.MessageDirection != "IN" {
			t.Errorf("requestId, extendedRequestId, messageDirection = %q, %q, %q", rc.RequestID, rc.ExtendedRequestID, rc.MessageDirection)
		}
		if rc.Identity.SourceIP == "" || rc.Identity.UserAgent == "" {
			t.Errorf("identity = %+v; want sourceIp and userAgent", rc.Identity)
		}
		id, isString := rc.MessageID.(string)
		if want.eventType == "MESSAGE" {
			if !isString || id == "" {
				t.Errorf("messageId = %#v; a message has one", rc.MessageID)
			}
		} else if rc.MessageID != nil {
			t.Errorf("messageId = %#v; want null on %s", rc.MessageID, want.eventType)
		}
		switch want.route {
		case wsapi.RouteConnect:
			if room := ev.QueryStringParameters["room"]; room != sampleRoom {
				t.Errorf("?room = %q, want %q", room, sampleRoom)
			}
			if ev.Body != "" {
				t.Errorf("$connect carries a body: %q", ev.Body)
			}
		case wsapi.RouteDisconnect:
			if rc.DisconnectStatusCode == 0 {
				t.Error("$disconnect without disconnectStatusCode")
			}
		case wsapi.RouteDefault:
			f, err := wire.ParseFrame([]byte(ev.Body))
			var de *domain.Error
			switch {
			case want.errCode != "":
				if !errors.As(err, &de) || de.Code != want.errCode {
					t.Errorf("ParseFrame(%q) = %+v, %v; want error code %q", ev.Body, f, err, want.errCode)
				}
			case err != nil || f.Action != want.action:
				t.Errorf("ParseFrame(%q) = %+v, %v; want action %q", ev.Body, f, err, want.action)
			}
		}
	}
}

// httpEvent describes one HTTP API sample.
type httpEvent struct {
	method, path string // path is the route's, as in httpapi
	base64       bool
}

func checkHTTP(want httpEvent) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		ev := decodeEvent[events.APIGatewayV2HTTPRequest](t, raw)
		rc := ev.RequestContext
		route := want.method + " " + want.path
		if ev.Version != "2.0" || ev.RouteKey != route || rc.RouteKey != route {
			t.Errorf("version, routeKey, requestContext.routeKey = %q, %q, %q; want 2.0, %q", ev.Version, ev.RouteKey, rc.RouteKey, route)
		}
		if rc.HTTP.Method != want.method || rc.HTTP.Path != ev.RawPath || rc.HTTP.Protocol == "" ||
			rc.HTTP.SourceIP == "" || rc.HTTP.UserAgent == "" {
			t.Errorf("requestContext.http = %+v; want method %s, path %q (rawPath) and the rest", rc.HTTP, want.method, ev.RawPath)
		}
		if rc.APIID == "" || rc.DomainName != rc.APIID+".execute-api.us-east-1.amazonaws.com" ||
			rc.DomainPrefix != rc.APIID || rc.Stage == "" || rc.RequestID == "" || rc.Time == "" || rc.TimeEpoch == 0 {
			t.Errorf("requestContext = %+v; incomplete", rc)
		}
		// rawPath is the route's path with the path parameters filled in.
		path := want.path
		for name, v := range ev.PathParameters {
			if !wire.ValidName(v) {
				t.Errorf("path parameter %s = %q is not a valid name", name, v)
			}
			path = strings.Replace(path, "{"+name+"}", v, 1)
		}
		if path != ev.RawPath {
			t.Errorf("rawPath %q; the route and path parameters make %q", ev.RawPath, path)
		}
		for name, v := range ev.Headers {
			if name != strings.ToLower(name) {
				t.Errorf("header %q: payload 2.0 lower-cases header names", name)
			}
			if name == "user-agent" && v != rc.HTTP.UserAgent {
				t.Errorf("user-agent %q, requestContext.http.userAgent %q", v, rc.HTTP.UserAgent)
			}
		}
		query, err := url.ParseQuery(ev.RawQueryString)
		if err != nil {
			t.Fatalf("rawQueryString %q: %v", ev.RawQueryString, err)
		}
		params := map[string]string{}
		for k := range query {
			params[k] = query.Get(k)
		}
		if !maps.Equal(params, ev.QueryStringParameters) {
			t.Errorf("queryStringParameters %v; rawQueryString %q makes %v", ev.QueryStringParameters, ev.RawQueryString, params)
		}
		if ev.IsBase64Encoded != want.base64 {
			t.Errorf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, want.base64)
		}
		if want.method != "PUT" {
			if ev.Body != "" {
				t.Errorf("%s with a body %q", want.method, ev.Body)
			}
			return
		}
		if mt, _, err := mime.ParseMediaType(ev.Headers["content-type"]); err != nil || mt != "application/json" {
			t.Errorf("content-type %q, want application/json", ev.Headers["content-type"])
		}
		body := []byte(ev.Body)
		if ev.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
				t.Fatalf("body is not base64: %v", err)
			}
		}
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Errorf("body %q is not a JSON object: %v", body, err)
		}
		if cl := ev.Headers["content-length"]; cl != "" && cl != strconv.Itoa(len(body)) {
			t.Errorf("content-length %s, body is %d bytes", cl, len(body))
		}
	}
}

// checkSNSItemPut requires the item.put event of http-put.json.
func checkSNSItemPut(root string) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		ev := decodeEvent[events.SNSEvent](t, raw)
		if len(ev.Records) != 1 {
			t.Fatalf("%d records, want 1", len(ev.Records))
		}
		rec := ev.Records[0]
		if rec.EventSource != "aws:sns" || rec.EventVersion != "1.0" || rec.SNS.Type != "Notification" {
			t.Errorf("EventSource, EventVersion, Type = %q, %q, %q", rec.EventSource, rec.EventVersion, rec.SNS.Type)
		}
		if rec.SNS.TopicArn == "" || !strings.HasPrefix(rec.EventSubscriptionArn, rec.SNS.TopicArn+":") {
			t.Errorf("subscription %q is not one of topic %q", rec.EventSubscriptionArn, rec.SNS.TopicArn)
		}
		if rec.SNS.MessageID == "" || rec.SNS.Timestamp.IsZero() {
			t.Errorf("MessageId %q, Timestamp %v", rec.SNS.MessageID, rec.SNS.Timestamp)
		}
		e, err := snspub.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if e.EventID == "" || e.Seq != 1 || e.Type != domain.EventItemPut || e.Room != sampleRoom || e.ID != "note-1" ||
			e.Version != 1 || e.Time.IsZero() {
			t.Errorf("event = %+v; want item.put of %s/note-1 version 1, seq 1, with an id and a time", e, sampleRoom)
		}
		put := decodeEvent[events.APIGatewayV2HTTPRequest](t, readEvent(t, root, "http-put.json"))
		if !jsonEqual(e.Data, []byte(put.Body)) {
			t.Errorf("event data %s; http-put.json stores %s", e.Data, put.Body)
		}
		for name, want := range map[string]string{snspub.AttrRoom: e.Room, snspub.AttrType: e.Type} {
			attr, _ := rec.SNS.MessageAttributes[name].(map[string]any)
			if attr["Type"] != "String" || attr["Value"] != want {
				t.Errorf("MessageAttributes[%s] = %v, want String %q", name, rec.SNS.MessageAttributes[name], want)
			}
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// checkShare: the share is of the event sns-item-put.json publishes, for
// two connections, one level deep.
func checkShare(root string) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		inv := decodeEvent[broadcast.Invocation](t, raw)
		if inv.Share == nil || len(inv.Records) != 0 {
			t.Fatalf("not a share: %s", raw)
		}
		sns := decodeEvent[events.SNSEvent](t, readEvent(t, root, "sns-item-put.json"))
		e, err := snspub.Decode(sns.Records[0])
		if err != nil {
			t.Fatal(err)
		}
		s := inv.Share
		if !bytes.Equal(s.Frame, wire.EventFrame(e)) || s.Origin != e.EventID || s.Depth != 1 || s.Rate <= 0 {
			t.Errorf("share %+v is not sns-item-put.json's event frame at depth 1", s)
		}
		if !slices.Equal(s.IDs, []string{"liveConnAAAAAA=", "WcK2dcPZoAMCFwQ="}) {
			t.Errorf("ids %v", s.IDs)
		}
	}
}

// checkAuthorizerConnect: the $connect of ws-connect.json as its authorizer
// sees it, the sample token in ?token=.
func checkAuthorizerConnect(root string) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		ev := decodeEvent[authorizer.WebSocketRequest](t, raw)
		rc := ev.RequestContext
		want := "arn:aws:execute-api:us-east-1:123456789012:" + rc.APIID + "/" + rc.Stage + "/$connect"
		if ev.Type != "REQUEST" || ev.MethodArn != want || rc.RouteKey != wsapi.RouteConnect || rc.EventType != "CONNECT" {
			t.Errorf("type %q, methodArn %q (want %q), route %q, event type %q", ev.Type, ev.MethodArn, want, rc.RouteKey, rc.EventType)
		}
		connect := decodeEvent[events.APIGatewayWebsocketProxyRequest](t, readEvent(t, root, "ws-connect.json"))
		if rc.ConnectionID != connect.RequestContext.ConnectionID || !maps.Equal(ev.Headers, connect.Headers) ||
			ev.QueryStringParameters["room"] != connect.QueryStringParameters["room"] {
			t.Errorf("not ws-connect.json's upgrade request")
		}
		checkSampleToken(t, ev.QueryStringParameters[authorizer.QueryToken], connect.RequestContext.Authorizer)
	}
}

// checkAuthorizerHTTP: http-put.json as its authorizer sees it.
func checkAuthorizerHTTP(root string) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		ev := decodeEvent[events.APIGatewayV2CustomAuthorizerV2Request](t, raw)
		rc := ev.RequestContext
		want := "arn:aws:execute-api:us-east-1:" + rc.AccountID + ":" + rc.APIID + "/" + rc.Stage + "/" + rc.HTTP.Method + rc.HTTP.Path
		if ev.Version != "2.0" || ev.Type != "REQUEST" || ev.RouteArn != want {
			t.Errorf("version %q, type %q, routeArn %q (want %q)", ev.Version, ev.Type, ev.RouteArn, want)
		}
		put := decodeEvent[events.APIGatewayV2HTTPRequest](t, readEvent(t, root, "http-put.json"))
		if ev.RouteKey != put.RouteKey || ev.RawPath != put.RawPath || !maps.Equal(ev.Headers, put.Headers) {
			t.Errorf("not http-put.json's request")
		}
		authz := ev.Headers["authorization"]
		if len(ev.IdentitySource) != 1 || ev.IdentitySource[0] != authz {
			t.Errorf("identitySource %q, want the Authorization header %q", ev.IdentitySource, authz)
		}
		token, _ := strings.CutPrefix(authz, "Bearer ")
		checkSampleToken(t, token, map[string]any(put.RequestContext.Authorizer.Lambda))
	}
}

// checkSampleToken: token verifies with the sample key, and the context
// the other samples carry is what the authorizer makes of it.
func checkSampleToken(t *testing.T, token string, context any) {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: auth.StaticKeys(sampleSigningKey), Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("the sample token: %v", err)
	}
	m, _ := context.(map[string]any)
	got, err := auth.FromContext(m)
	if err != nil || got.User != p.User || !slices.Equal(got.Join, p.Join) || !slices.Equal(got.Write, p.Write) || !got.ExpiresAt.Equal(p.ExpiresAt) {
		t.Errorf("the samples' authorizer context %v is not the token's %+v (%v)", context, p, err)
	}
}

// sampleChecks says what each sample event must be.
func sampleChecks(root string) map[string]func(*testing.T, []byte) {
	return map[string]func(*testing.T, []byte){
		"ws-connect.json":         checkWebsocket(wsEvent{route: wsapi.RouteConnect, eventType: "CONNECT"}),
		"ws-disconnect.json":      checkWebsocket(wsEvent{route: wsapi.RouteDisconnect, eventType: "DISCONNECT"}),
		"ws-subscribe.json":       checkWebsocket(wsEvent{route: wsapi.RouteDefault, eventType: "MESSAGE", action: wire.ActionSubscribe}),
		"ws-unsubscribe.json":     checkWebsocket(wsEvent{route: wsapi.RouteDefault, eventType: "MESSAGE", action: wire.ActionUnsubscribe}),
		"ws-ping.json":            checkWebsocket(wsEvent{route: wsapi.RouteDefault, eventType: "MESSAGE", action: wire.ActionPing}),
		"ws-update.json":          checkWebsocket(wsEvent{route: wsapi.RouteDefault, eventType: "MESSAGE", action: wire.ActionUpdate}),
		"ws-invalid.json":         checkWebsocket(wsEvent{route: wsapi.RouteDefault, eventType: "MESSAGE", errCode: domain.CodeInvalidJSON}),
		"ws-unknown-action.json":  checkWebsocket(wsEvent{route: wsapi.RouteDefault, eventType: "MESSAGE", errCode: domain.CodeUnknownAction}),
		"http-put.json":           checkHTTP(httpEvent{method: "PUT", path: httpapi.ItemPath}),
		"http-put-base64.json":    checkHTTP(httpEvent{method: "PUT", path: httpapi.ItemPath, base64: true}),
		"http-get.json":           checkHTTP(httpEvent{method: "GET", path: httpapi.ItemPath}),
		"http-list.json":          checkHTTP(httpEvent{method: "GET", path: httpapi.ItemsPath}),
		"http-events.json":        checkHTTP(httpEvent{method: "GET", path: httpapi.EventsPath}),
		"http-delete.json":        checkHTTP(httpEvent{method: "DELETE", path: httpapi.ItemPath}),
		"sns-item-put.json":       checkSNSItemPut(root),
		"broadcast-share.json":    checkShare(root),
		"authorizer-connect.json": checkAuthorizerConnect(root),
		"authorizer-http.json":    checkAuthorizerHTTP(root),
		"outbox-schedule.json":    checkSchedule,
	}
}

// checkSchedule: EventBridge's scheduled event, as the Schedule event's
// rule sends it.
func checkSchedule(t *testing.T, raw []byte) {
	ev := decodeEvent[events.EventBridgeEvent](t, raw)
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || len(ev.Resources) != 1 ||
		!strings.HasPrefix(ev.Resources[0], "arn:aws:events:") || ev.Time.IsZero() {
		t.Errorf("not a scheduled event: %s", raw)
	}
}

func TestSampleEventsDecode(t *testing.T) {
	root := RepoRoot(t)
	checks := sampleChecks(root)
	for _, file := range slices.Sorted(maps.Keys(checks)) {
		t.Run(file, func(t *testing.T) {
			checks[file](t, readEvent(t, root, file))
		})
	}
}

func TestSampleEventsBelongToFunctions(t *testing.T) {
	root := RepoRoot(t)
	paths, err := filepath.Glob(filepath.Join(root, EventsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range paths {
		files = append(files, filepath.Base(p))
	}
	readme, err := os.ReadFile(filepath.Join(root, EventsDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	checks := sampleChecks(root)

	owner := map[string]string{}
	var names []string
	for _, fn := range Functions() {
		names = append(names, fn.Name)
		if len(fn.Events) == 0 {
			t.Errorf("%s has no sample event", fn.Name)
		}
		for _, file := range fn.Events {
			if prev, dup := owner[file]; dup {
				t.Errorf("%s is listed for %s and %s", file, prev, fn.Name)
			}
			owner[file] = fn.Name
			if !slices.Contains(files, file) {
				t.Errorf("%s lists %s, which is not in %s/", fn.Name, file, EventsDir)
			}
		}
	}
	if !slices.Equal(names, config.Functions()) {
		t.Errorf("Functions() = %v, config.Functions() = %v", names, config.Functions())
	}
	for _, file := range files {
		fn, ok := owner[file]
		if !ok {
			t.Errorf("%s/%s belongs to no function's Events", EventsDir, file)
			continue
		}
		if _, ok := checks[file]; !ok {
			t.Errorf("%s has no check in TestSampleEventsDecode", file)
		}
		if !readmeRow(readme, file, fn) {
			t.Errorf("%s/README.md has no row for %s with %s", EventsDir, file, fn)
		}
	}
}

func readmeRow(readme []byte, file, function string) bool {
	for line := range strings.Lines(string(readme)) {
		if strings.HasPrefix(line, "| `"+file+"` | "+function+" |") {
			return true
		}
	}
	return false
}

func TestFunctionDirsAreMains(t *testing.T) {
	root := RepoRoot(t)
	for _, fn := range Functions() {
		src, err := os.ReadFile(filepath.Join(root, fn.Dir, "main.go"))
		if err != nil {
			t.Errorf("%s: %v", fn.Name, err)
			continue
		}
		// Each main configures itself as its function; a main wired to
		// another function's settings would read the wrong variables.
		if !bytes.Contains(src, []byte("config."+fn.Name)) {
			t.Errorf("%s/main.go does not set itself up as config.%s", fn.Dir, fn.Name)
		}
	}
}
