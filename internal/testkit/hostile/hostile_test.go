// Package hostile_test sends the local stack what an attacker or a broken
// client would, over real sockets: malformed and oversized frames, names
// that URLs rewrite, bytes that are not UTF-8, requests no route takes,
// Management API calls that cannot succeed. Every case asserts the
// documented answer, that the attacker's socket (unless documented to
// close) and the stack keep working, that the room's bystanders see
// nothing, and that nothing was stored.
package hostile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
	"github.com/pushgate/pushgate/internal/wire"
)

var rooms atomic.Int64

// env is one case's world: an attacker and a bystander in a room of their
// own, and an outsider in another room.
type env struct {
	t          *testing.T
	stack      *local.Stack
	room       string
	other      string
	attacker   *wsclient.Client
	attackerID string
	bystander  *wsclient.Client
	outsider   *wsclient.Client
	outsiderID string
	// token lets its holder join and write every room: the cases here
	// are about what a client sends, not what it may.
	token string
}

func newEnv(t *testing.T, s *local.Stack) *env {
	t.Helper()
	n := rooms.Add(1)
	e := &env{t: t, stack: s, room: fmt.Sprintf("hostile-%d", n), other: fmt.Sprintf("other-%d", n), token: localtest.Token(t, s, "hostile")}
	e.attacker = wsclient.Dial(t, localtest.WebSocketURL(t, s, "room="+e.room))
	e.bystander = wsclient.Dial(t, localtest.WebSocketURL(t, s, "room="+e.room))
	e.outsider = wsclient.Dial(t, localtest.WebSocketURL(t, s, "room="+e.other))
	e.attackerID = whoami(t, e.attacker)
	e.outsiderID = whoami(t, e.outsider)
	return e
}

func whoami(t *testing.T, c *wsclient.Client) string {
	t.Helper()
	c.Send(`{"action":"whoami"}`)
	f := c.Next()
	id, _ := f["connectionId"].(string)
	if f["action"] != wire.ActionWhoami || id == "" {
		t.Fatalf("whoami: %v", f)
	}
	return id
}

// untouched asserts what every case must leave true: nobody else heard a
// thing, the attacker's socket still answers (when it is meant to stay),
// nothing was stored, and the HTTP API still serves.
func (e *env) untouched(attackerStays bool) {
	e.t.Helper()
	e.bystander.Quiet()
	e.outsider.Quiet()
	ctx := context.Background()
	if attackerStays {
		e.attacker.Send(`{"action":"ping"}`)
		if f := e.attacker.Next(); f["action"] != wire.ActionPong {
			e.t.Errorf("the attacker's socket after the case: %v, want a pong", f)
		}
		c, err := e.stack.Connections().Get(ctx, e.attackerID)
		if err != nil || !slices.Equal(c.Rooms, []string{e.room}) {
			e.t.Errorf("the attacker's record: %+v, %v; want it in exactly %s", c, err, e.room)
		}
	}
	for _, room := range []string{e.room, e.other} {
		page, err := e.stack.Items().ListItems(ctx, room, "", domain.MaxListLimit)
		if err != nil || len(page.Items) > 0 {
			e.t.Errorf("room %s holds %d items (%v) after the case", room, len(page.Items), err)
		}
	}
	resp, body := do(e.t, http.MethodGet, e.stack.HTTPURL()+"/rooms/"+e.room+"/items", e.authed(nil), nil)
	var list struct{ Items []json.RawMessage }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Items) != 0 {
		e.t.Errorf("list after the case: %d %s", resp.StatusCode, body)
	}
	// The bystander still gets the room's events: a write that is no part
	// of the case, removed again at once.
	url := e.stack.HTTPURL() + "/rooms/" + e.room + "/items/probe"
	if resp, body := do(e.t, http.MethodPut, url, e.authed(map[string]string{"Content-Type": "application/json"}), []byte(`{}`)); resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("probe PUT: %d %s", resp.StatusCode, body)
	}
	if f := e.bystander.Next(); f["action"] != wire.ActionEvent || f["id"] != "probe" {
		e.t.Errorf("the bystander after the case: %v, want the probe's event", f)
	}
	do(e.t, http.MethodDelete, url, e.authed(nil), nil)
	e.bystander.Next()
	if attackerStays {
		e.attacker.Next()
		e.attacker.Next()
	}
}

// authed adds the env's bearer token to h, unless h names an Authorization
// of its own ("" for none at all).
func (e *env) authed(h map[string]string) map[string]string {
	out := map[string]string{"Authorization": "Bearer " + e.token}
	maps.Copy(out, h)
	if out["Authorization"] == "" {
		delete(out, "Authorization")
	}
	return out
}

func do(t *testing.T, method, url string, header map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// message is one client message: text or binary, whole or in frames.
type message struct {
	typ    websocket.MessageType
	data   string
	frames []int // frame sizes, when it is sent fragmented
}

func text(s string) message { return message{typ: websocket.MessageText, data: s} }

func (m message) send(t *testing.T, c *wsclient.Client) {
	t.Helper()
	if m.frames == nil {
		c.Write(m.typ, []byte(m.data))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsclient.Wait)
	defer cancel()
	w, err := c.Conn.Writer(ctx, m.typ)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(m.data)
	for _, n := range m.frames {
		n = min(n, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			return // the gateway may close before the client has written it all
		}
		data = data[n:]
	}
	_ = w.Close()
}

// pad makes a relay of about n bytes whose data is a long string.
func pad(n int) string {
	head, tail := `{"action":"update","target":"*","data":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestHostileInput(t *testing.T) {
	// One stack for every case; each case has rooms of its own.
	s, _ := localtest.Start(t, nil)
	long := strings.Repeat("<", 30000)
	fragments := func(n int) []int { return slices.Repeat([]int{wire.MaxFrameBytes}, n/wire.MaxFrameBytes+1) }

	socketCases := []struct {
		name string
		msg  func(e *env) message
		// code is the error frame the attacker gets; close, instead, the
		// code its socket is closed with.
		code  string
		close websocket.StatusCode
	}{
		{"invalid UTF-8 in relayed data", func(*env) message {
			return text("{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\xfe\"}")
		}, domain.CodeInvalidJSON, 0},
		{"invalid UTF-8 in nested data", func(*env) message {
			return text("{\"action\":\"update\",\"target\":\"*\",\"number\":1,\"data\":{\"type\":\"move\",\"data\":{\"id\":\"caf\xc3\"}}}")
		}, domain.CodeInvalidJSON, 0},
		{"invalid UTF-8 in a key", func(*env) message { return text("{\"action\":\"update\",\"target\":\"*\",\"\xff\":1}") }, domain.CodeInvalidJSON, 0},
		{"invalid UTF-8 in a ping", func(*env) message { return text("{\"action\":\"ping\",\"x\":\"\x80\"}") }, domain.CodeInvalidJSON, 0},
		{"overlong UTF-8", func(*env) message { return text("{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xc0\xaf\"}") }, domain.CodeInvalidJSON, 0},
		{"UTF-8 of a surrogate half", func(*env) message {
			return text("{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xed\xa0\x80\"}")
		}, domain.CodeInvalidJSON, 0},
		{"UTF-8 cut short at the end", func(*env) message { return text("{\"action\":\"ping\"}\xe2\x82") }, domain.CodeInvalidJSON, 0},
		{"not JSON", func(*env) message { return text("<script>alert(1)</script>") }, domain.CodeInvalidJSON, 0},
		{"a JSON array", func(*env) message { return text(`[{"action":"update","target":"*"}]`) }, domain.CodeInvalidJSON, 0},
		{"JSON null", func(*env) message { return text(`null`) }, domain.CodeInvalidJSON, 0},
		{"a second object after the first", func(*env) message {
			return text(`{"action":"ping"}{"action":"update","target":"*"}`)
		}, domain.CodeInvalidJSON, 0},
		{"data nested 30,000 deep", func(*env) message {
			return message{typ: websocket.MessageText, data: `{"action":"update","target":"*","data":` + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + `}`, frames: fragments(60100)}
		}, domain.CodeInvalidJSON, 0},
		{"an action of 30,000 bytes", func(*env) message { return text(`{"action":"` + long + `"}`) }, domain.CodeUnknownAction, 0},
		{"a target of 30,000 bytes", func(*env) message { return text(`{"action":"update","target":"` + long + `"}`) }, domain.CodeUnknownTarget, 0},
		{"a server frame's action", func(*env) message {
			return text(`{"action":"event","type":"item.deleted","room":"x","id":"y"}`)
		}, domain.CodeUnknownAction, 0},
		{"subscribe to .", func(*env) message { return text(`{"action":"subscribe","room":"."}`) }, domain.CodeInvalidRoom, 0},
		{"subscribe to ..", func(*env) message { return text(`{"action":"subscribe","room":".."}`) }, domain.CodeInvalidRoom, 0},
		{"subscribe to a path", func(*env) message { return text(`{"action":"subscribe","room":"a/../b"}`) }, domain.CodeInvalidRoom, 0},
		{"subscribe to a 129-character room", func(*env) message {
			return text(`{"action":"subscribe","room":"` + strings.Repeat("r", 129) + `"}`)
		}, domain.CodeInvalidRoom, 0},
		{"subscribe to a number", func(*env) message { return text(`{"action":"subscribe","room":7}`) }, domain.CodeBadRequest, 0},
		{"unsubscribe from an escaped newline", func(*env) message { return text(`{"action":"unsubscribe","room":"a\n"}`) }, domain.CodeInvalidRoom, 0},
		{"a relay numbered with a string", func(*env) message { return text(`{"action":"update","target":"*","number":"1"}`) }, domain.CodeBadRequest, 0},
		{"a relay with an empty target", func(*env) message { return text(`{"action":"update","target":""}`) }, domain.CodeBadRequest, 0},
		{"a relay to a connection in another room", func(e *env) message {
			return text(`{"action":"delete","target":"` + e.outsiderID + `"}`)
		}, domain.CodeUnknownTarget, 0},
		{"a relay to an id that does not exist", func(*env) message { return text(`{"action":"update","target":"AAAAAAAAAAAAAAA="}`) }, domain.CodeUnknownTarget, 0},
		{"a relay that the sender's id would push past 128 KB", func(*env) message {
			m := pad(wire.MaxMessageBytes - 10)
			return message{typ: websocket.MessageText, data: m, frames: fragments(len(m))}
		}, domain.CodeTooLarge, 0},
		{"a binary frame", func(*env) message {
			return message{typ: websocket.MessageBinary, data: "{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\xfe\"}"}
		}, "", websocket.StatusUnsupportedData},
		{"a binary frame of valid JSON", func(*env) message {
			return message{typ: websocket.MessageBinary, data: `{"action":"update","target":"*","data":1}`}
		}, "", websocket.StatusUnsupportedData},
		{"a frame over 32 KB", func(*env) message { return text(pad(40 << 10)) }, "", websocket.StatusMessageTooBig},
		{"a fragmented message over 128 KB", func(*env) message {
			m := pad(wire.MaxMessageBytes + 1)
			return message{typ: websocket.MessageText, data: m, frames: fragments(len(m))}
		}, "", websocket.StatusMessageTooBig},
	}
	for _, tc := range socketCases {
		t.Run("socket/"+tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s)
			tc.msg(e).send(t, e.attacker)
			if tc.close != 0 {
				if got := e.attacker.Closed(); got != tc.close {
					t.Errorf("close code %d, want %d", got, tc.close)
				}
				e.untouched(false)
				return
			}
			f := e.attacker.NextFrame()
			var reply map[string]any
			if f.Type != websocket.MessageText || json.Unmarshal(f.Data, &reply) != nil ||
				reply["action"] != wire.ActionError || reply["code"] != tc.code {
				t.Errorf("reply %v %.200q, want an error frame with code %s", f.Type, f.Data, tc.code)
			}
			if len(f.Data) > 1024 {
				t.Errorf("the error frame is %d bytes", len(f.Data))
			}
			e.untouched(true)
		})
	}

	type httpCase struct {
		name, method, path string
		header             map[string]string
		body               []byte
		status             int
		code               string
	}
	jsonType := map[string]string{"Content-Type": "application/json"}
	item := func(e *env, id string) string { return "/rooms/" + e.room + "/items/" + id }
	httpCases := []struct {
		build func(e *env) httpCase
	}{
		{func(e *env) httpCase {
			return httpCase{"PUT an item named .", "PUT", item(e, "."), jsonType, []byte(`{}`), 400, domain.CodeInvalidID}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT an item named ..", "PUT", item(e, ".."), jsonType, []byte(`{}`), 400, domain.CodeInvalidID}
		}},
		{func(e *env) httpCase {
			return httpCase{"GET an item named . is not the list", "GET", item(e, "."), nil, nil, 400, domain.CodeInvalidID}
		}},
		{func(e *env) httpCase {
			return httpCase{"DELETE an item named ..", "DELETE", item(e, ".."), nil, nil, 400, domain.CodeInvalidID}
		}},
		{func(*env) httpCase {
			return httpCase{"PUT into room .", "PUT", "/rooms/./items/x", jsonType, []byte(`{}`), 400, domain.CodeInvalidRoom}
		}},
		{func(*env) httpCase {
			return httpCase{"GET the list of room ..", "GET", "/rooms/../items", nil, nil, 400, domain.CodeInvalidRoom}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT an id with an encoded slash", "PUT", item(e, "a%2Fb"), jsonType, []byte(`{}`), 400, domain.CodeInvalidID}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT an id of 129 characters", "PUT", item(e, strings.Repeat("i", 129)), jsonType, []byte(`{}`), 400, domain.CodeInvalidID}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT a path too deep", "PUT", item(e, "a/b"), jsonType, []byte(`{}`), 404, domain.CodeNotFound}
		}},
		{func(*env) httpCase {
			return httpCase{"PUT with an empty room segment", "PUT", "/rooms//items/x", jsonType, []byte(`{}`), 404, domain.CodeNotFound}
		}},
		{func(*env) httpCase {
			return httpCase{"GET a path no route has", "GET", "/no/such/route", nil, nil, 404, domain.CodeNotFound}
		}},
		{func(*env) httpCase {
			return httpCase{"POST to the root", "POST", "/", jsonType, []byte(`{}`), 404, domain.CodeNotFound}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT a body that is not UTF-8", "PUT", item(e, "x"), jsonType, []byte("{\"t\":\"\xff\xfe\"}"), 400, domain.CodeInvalidJSON}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT a JSON array", "PUT", item(e, "x"), jsonType, []byte(`[1,2]`), 400, domain.CodeInvalidJSON}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT two objects", "PUT", item(e, "x"), jsonType, []byte(`{}{}`), 400, domain.CodeInvalidJSON}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT 200 KB", "PUT", item(e, "x"), jsonType, []byte(`{"p":"` + strings.Repeat("x", 200<<10) + `"}`), 413, domain.CodeTooLarge}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT as text/plain", "PUT", item(e, "x"), map[string]string{"Content-Type": "text/plain"}, []byte(`{}`), 415, domain.CodeUnsupportedType}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT as JSON in Latin-1", "PUT", item(e, "x"), map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, []byte(`{}`), 415, domain.CodeUnsupportedType}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT with a weak If-Match", "PUT", item(e, "x"), map[string]string{"Content-Type": "application/json", "If-Match": `W/"1"`}, []byte(`{}`), 400, domain.CodeBadRequest}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT with both conditions", "PUT", item(e, "x"), map[string]string{"Content-Type": "application/json", "If-Match": "1", "If-None-Match": "*"}, []byte(`{}`), 400, domain.CodeBadRequest}
		}},
		{func(e *env) httpCase {
			return httpCase{"PUT over a version that is not there", "PUT", item(e, "x"), map[string]string{"Content-Type": "application/json", "If-Match": `"7"`}, []byte(`{}`), 412, domain.CodePrecondition}
		}},
		{func(e *env) httpCase {
			return httpCase{"list with a negative limit", "GET", "/rooms/" + e.room + "/items?limit=-1", nil, nil, 400, domain.CodeBadRequest}
		}},
		{func(e *env) httpCase {
			return httpCase{"list with a forged cursor", "GET", "/rooms/" + e.room + "/items?cursor=%2F%2F%2F", nil, nil, 400, domain.CodeBadRequest}
		}},
		{func(e *env) httpCase {
			return httpCase{"PATCH an item", "PATCH", item(e, "x"), jsonType, []byte(`{}`), 405, domain.CodeMethodNotAllowed}
		}},
		{func(e *env) httpCase {
			return httpCase{"a method of 5,000 letters", strings.Repeat("X", 5000), item(e, "x"), nil, nil, 405, domain.CodeMethodNotAllowed}
		}},
		{func(e *env) httpCase {
			return httpCase{"DELETE what never existed", "DELETE", item(e, "ghost"), nil, nil, 404, domain.CodeNotFound}
		}},
	}
	for _, hc := range httpCases {
		tc := hc.build(&env{room: "R"})
		t.Run("http/"+tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s)
			tc := hc.build(e)
			resp, body := do(t, tc.method, s.HTTPURL()+tc.path, e.authed(tc.header), tc.body)
			var got struct {
				Error struct{ Code, Message string }
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" ||
				json.Unmarshal(body, &got) != nil || got.Error.Code != tc.code || got.Error.Message == "" {
				t.Errorf("%s %.80s: %d %s %.300s, want %d with code %s", tc.method, tc.path, resp.StatusCode,
					resp.Header.Get("Content-Type"), body, tc.status, tc.code)
			}
			if len(body) > 1024 {
				t.Errorf("the error body is %d bytes", len(body))
			}
			e.untouched(true)
		})
	}

	mgmtCases := []struct {
		name   string
		method string
		path   func(e *env) string
		body   []byte
		status int
		errTyp string
		// toAttacker is what the attacker receives, when the call reaches it.
		toAttacker *wsclient.Frame
	}{
		{"POST to a connection that does not exist", "POST", func(*env) string { return "/@connections/AAAAAAAAAAAAAAA=" }, []byte(`{}`), 410, "GoneException", nil},
		{"POST more than 128 KB", "POST", func(e *env) string { return "/@connections/" + e.attackerID }, bytes.Repeat([]byte("x"), 128<<10+1), 413, "PayloadTooLargeException", nil},
		{"POST bytes that are not UTF-8", "POST", func(e *env) string { return "/@connections/" + e.attackerID }, []byte("\xff\xfe{"), 200, "",
			&wsclient.Frame{Type: websocket.MessageBinary, Data: []byte("\xff\xfe{")}},
		{"GET without an id", "GET", func(*env) string { return "/@connections/" }, nil, 404, "NotFoundException", nil},
		{"POST to a path under an id", "POST", func(e *env) string { return "/@connections/" + e.attackerID + "/x" }, []byte(`{}`), 404, "NotFoundException", nil},
		{"PUT to a connection", "PUT", func(e *env) string { return "/@connections/" + e.attackerID }, []byte(`{}`), 405, "MethodNotAllowedException", nil},
		{"DELETE a connection that does not exist", "DELETE", func(*env) string { return "/@connections/AAAAAAAAAAAAAAA=" }, nil, 410, "GoneException", nil},
		{"POST to an id with an encoded slash", "POST", func(e *env) string { return "/@connections/" + e.attackerID + "%2F.." }, []byte(`{}`), 404, "NotFoundException", nil},
	}
	for _, tc := range mgmtCases {
		t.Run("management/"+tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s)
			resp, body := do(t, tc.method, s.ManagementURL()+tc.path(e), nil, tc.body)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Amzn-Errortype") != tc.errTyp {
				t.Errorf("%s: %d %s %.200s, want %d %s", tc.method, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body, tc.status, tc.errTyp)
			}
			if tc.errTyp != "" {
				var msg struct{ Message string }
				if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
					t.Errorf("error body %.200q is not {\"message\":…}", body)
				}
			}
			if tc.toAttacker != nil {
				if f := e.attacker.NextFrame(); f.Type != tc.toAttacker.Type || !bytes.Equal(f.Data, tc.toAttacker.Data) {
					t.Errorf("the attacker got %v %q, want %v %q", f.Type, f.Data, tc.toAttacker.Type, tc.toAttacker.Data)
				}
			} else {
				e.attacker.Quiet()
			}
			e.untouched(true)
		})
	}
	if n := len(socketCases) + len(httpCases) + len(mgmtCases); n < 40 {
		t.Errorf("%d cases; the suite promises at least 40", n)
	}
}
