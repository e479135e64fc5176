package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/wire"
)

func TestParseFrameAccepts(t *testing.T) {
	room128 := strings.Repeat("r", wire.MaxNameLen)
	tests := []struct {
		name string
		body string
		want wire.Frame
	}{
		{"ping", `{"action":"ping"}`, wire.Frame{Action: "ping"}},
		{"whoami", `{"action":"whoami"}`, wire.Frame{Action: "whoami"}},
		{"data with valid non-ASCII UTF-8", `{"action":"update","target":"*","data":"hé ☃ 😀"}`,
			wire.Frame{Action: "update", Target: "*", Data: json.RawMessage(`"hé ☃ 😀"`)}},
		{"ping ignores other fields", `{"action":"ping","room":5,"target":[],"number":"x"}`, wire.Frame{Action: "ping"}},
		{"whitespace around the object", " \t\r\n{\"action\":\"ping\"}\n ", wire.Frame{Action: "ping"}},
		{"subscribe", `{"action":"subscribe","room":"news.eu:1_a-B"}`, wire.Frame{Action: "subscribe", Room: "news.eu:1_a-B"}},
		{"subscribe 128-char room", `{"action":"subscribe","room":"` + room128 + `"}`, wire.Frame{Action: "subscribe", Room: room128}},
		{"unsubscribe", `{"action":"unsubscribe","room":"lobby"}`, wire.Frame{Action: "unsubscribe", Room: "lobby"}},
		{"update to all", `{"action":"update","target":"*","number":42,"data":{"a":1}}`,
			wire.Frame{Action: "update", Target: "*", Number: json.RawMessage(`42`), Data: json.RawMessage(`{"a":1}`)}},
		{"update keeps raw bytes", `{ "action" : "update" , "target" : "c-1" , "number" : 1.50e3 , "data" : { "a" : [1, 2] , "h":"<&>\u00e9" } }`,
			wire.Frame{Action: "update", Target: "c-1", Number: json.RawMessage(`1.50e3`), Data: json.RawMessage(`{ "a" : [1, 2] , "h":"<&>\u00e9" }`)}},
		{"update number null", `{"action":"update","target":"*","number":null,"data":"x"}`,
			wire.Frame{Action: "update", Target: "*", Data: json.RawMessage(`"x"`)}},
		{"update data absent", `{"action":"update","target":"*","number":-7}`,
			wire.Frame{Action: "update", Target: "*", Number: json.RawMessage(`-7`)}},
		{"update data null is relayed", `{"action":"update","target":"*","data":null}`,
			wire.Frame{Action: "update", Target: "*", Data: json.RawMessage(`null`)}},
		{"delete", `{"action":"delete","target":"abc="}`, wire.Frame{Action: "delete", Target: "abc="}},
		{"delete with number and data", `{"action":"delete","target":"*","number":0,"data":[true]}`,
			wire.Frame{Action: "delete", Target: "*", Number: json.RawMessage(`0`), Data: json.RawMessage(`[true]`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wire.ParseFrame([]byte(tc.body))
			if err != nil {
				t.Fatalf("ParseFrame(%s) = %v", tc.body, err)
			}
			if got.Action != tc.want.Action || got.Room != tc.want.Room || got.Target != tc.want.Target ||
				!bytes.Equal(got.Number, tc.want.Number) || !bytes.Equal(got.Data, tc.want.Data) {
				t.Fatalf("ParseFrame(%s) =\n %+v\nwant\n %+v", tc.body, frameString(got), frameString(tc.want))
			}
		})
	}
}

func frameString(f wire.Frame) string {
	return "action=" + f.Action + " room=" + f.Room + " target=" + f.Target +
		" number=" + string(f.Number) + " data=" + string(f.Data)
}

func TestParseFrameAcceptsMaxMessageBytes(t *testing.T) {
	head, tail := `{"action":"update","target":"*","data":"`, `"}`
	body := head + strings.Repeat("x", wire.MaxMessageBytes-len(head)-len(tail)) + tail
	if len(body) != wire.MaxMessageBytes {
		t.Fatalf("test body is %d bytes", len(body))
	}
	f, err := wire.ParseFrame([]byte(body))
	if err != nil {
		t.Fatalf("ParseFrame of exactly MaxMessageBytes = %v", err)
	}
	if len(f.Data) != wire.MaxMessageBytes-len(head)-len(tail)+2 {
		t.Fatalf("data is %d bytes", len(f.Data))
	}
}

func TestParseFrameRejects(t *testing.T) {
	tooLarge := `{"action":"ping","pad":"` + strings.Repeat("x", wire.MaxMessageBytes) + `"}`
	tests := []struct {
		name   string
		body   string
		code   string
		status int
	}{
		{"empty", ``, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"blank", " \n", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"not JSON", `hello`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"truncated", `{"action":"ping"`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"JSON array", `[{"action":"ping"}]`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"JSON string", `"ping"`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"JSON number", `42`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"JSON null", `null`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"trailing garbage", `{"action":"ping"} x`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"second object", `{"action":"ping"}{"action":"ping"}`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"trailing brace", `{"action":"ping"}}`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"trailing bracket", `{"action":"ping"}]`, domain.CodeInvalidJSON, http.StatusBadRequest},
		{"control character in string", "{\"action\":\"ping\",\"x\":\"a\x01\"}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"no action", `{}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"action null", `{"action":null}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"action not a string", `{"action":1}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"action an object", `{"action":{"name":"ping"}}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"unknown action", `{"action":"dance"}`, domain.CodeUnknownAction, http.StatusBadRequest},
		{"empty action", `{"action":""}`, domain.CodeUnknownAction, http.StatusBadRequest},
		{"action is case-sensitive", `{"action":"PING"}`, domain.CodeUnknownAction, http.StatusBadRequest},
		{"server-only action pong", `{"action":"pong"}`, domain.CodeUnknownAction, http.StatusBadRequest},
		{"server-only action event", `{"action":"event"}`, domain.CodeUnknownAction, http.StatusBadRequest},
		{"subscribe without room", `{"action":"subscribe"}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"subscribe room null", `{"action":"subscribe","room":null}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"subscribe room wrong type", `{"action":"subscribe","room":7}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"subscribe empty room", `{"action":"subscribe","room":""}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"subscribe room with space", `{"action":"subscribe","room":"a b"}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"subscribe room with slash", `{"action":"subscribe","room":"a/b"}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"subscribe room non-ASCII", `{"action":"subscribe","room":"caf\u00e9"}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"subscribe room with newline", `{"action":"subscribe","room":"a\n"}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"subscribe 129-char room", `{"action":"subscribe","room":"` + strings.Repeat("r", wire.MaxNameLen+1) + `"}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"unsubscribe without room", `{"action":"unsubscribe"}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"unsubscribe invalid room", `{"action":"unsubscribe","room":"*"}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"update without target", `{"action":"update","number":1}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update target null", `{"action":"update","target":null}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update target not a string", `{"action":"update","target":["*"]}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update empty target", `{"action":"update","target":""}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update number a numeric string", `{"action":"update","target":"*","number":"12"}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update number a string", `{"action":"update","target":"*","number":"twelve"}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update number a bool", `{"action":"update","target":"*","number":true}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"update number an object", `{"action":"update","target":"*","number":{}}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"delete without target", `{"action":"delete"}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"delete target not a string", `{"action":"delete","target":1}`, domain.CodeBadRequest, http.StatusBadRequest},
		{"invalid UTF-8 in relayed data", "{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\xfe\"}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"invalid UTF-8 in a ping", "{\"action\":\"ping\",\"x\":\"\xc3\"}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"invalid UTF-8 in a key", "{\"action\":\"ping\",\"\xff\":1}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"invalid UTF-8 in the action", "{\"action\":\"pi\x80ng\"}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"overlong encoding", "{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xc0\xaf\"}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"encoded surrogate half", "{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xed\xa0\x80\"}", domain.CodeInvalidJSON, http.StatusBadRequest},
		{"subscribe dot", `{"action":"subscribe","room":"."}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"subscribe dot dot", `{"action":"subscribe","room":".."}`, domain.CodeInvalidRoom, http.StatusBadRequest},
		{"over MaxMessageBytes", tooLarge, domain.CodeTooLarge, http.StatusRequestEntityTooLarge},
		{"over MaxMessageBytes and not JSON", strings.Repeat("x", wire.MaxMessageBytes+1), domain.CodeTooLarge, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := wire.ParseFrame([]byte(tc.body))
			if err == nil {
				t.Fatalf("ParseFrame accepted it: %s", frameString(f))
			}
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *domain.Error", err, err)
			}
			if de.Code != tc.code || de.Status != tc.status {
				t.Fatalf("error = code %q status %d (%v), want code %q status %d", de.Code, de.Status, err, tc.code, tc.status)
			}
			if de.Message == "" {
				t.Fatal("error has no message for the client")
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", false},
		{"one char", "a", true},
		{"every allowed char", "AZaz09_.:-", true},
		{"only punctuation", "-", true},
		{"128 chars", strings.Repeat("a", wire.MaxNameLen), true},
		{"129 chars", strings.Repeat("a", wire.MaxNameLen+1), false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"star", wire.TargetAll, false},
		{"hash", "a#b", false},
		{"percent", "a%20", false},
		{"trailing newline", "a\n", false},
		{"leading newline", "\na", false},
		{"NUL", "a\x00", false},
		{"non-ASCII letter", "café", false},
		{"invalid UTF-8", "a\xff", false},
		{"dot segment", ".", false},
		{"dot-dot segment", "..", false},
		{"three dots", "...", true},
		{"leading dot", ".a", true},
		{"trailing dots", "a..", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.ValidName(tc.in); got != tc.want {
				t.Fatalf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
			err := wire.CheckRoom(tc.in)
			if tc.want {
				if err != nil {
					t.Fatalf("CheckRoom(%q) = %v", tc.in, err)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalidRoom || de.Status != http.StatusBadRequest {
				t.Fatalf("CheckRoom(%q) = %v, want a %s *domain.Error", tc.in, err, domain.CodeInvalidRoom)
			}
		})
	}
}

// TestErrorMessagesEchoAShortPrefix: an error frame repeats at most
// MaxEcho bytes of what the client sent, so it stays far below the
// message limit whatever the input.
func TestErrorMessagesEchoAShortPrefix(t *testing.T) {
	long := strings.Repeat("<", 30000)
	_, err := wire.ParseFrame([]byte(`{"action":"` + long + `"}`))
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeUnknownAction {
		t.Fatalf("ParseFrame = %v", err)
	}
	frame := wire.ErrorFrame(de.Code, de.Message)
	if len(frame) > 512 || !json.Valid(frame) {
		t.Fatalf("error frame is %d bytes: %.200s", len(frame), frame)
	}
	tests := []struct{ in, want string }{
		{"dance", `"dance"`},
		{strings.Repeat("a", wire.MaxEcho), `"` + strings.Repeat("a", wire.MaxEcho) + `"`},
		{strings.Repeat("a", wire.MaxEcho+1), `"` + strings.Repeat("a", wire.MaxEcho) + `"…`},
		// A two-byte character straddling the cut is left out whole.
		{strings.Repeat("a", wire.MaxEcho-1) + "é", `"` + strings.Repeat("a", wire.MaxEcho-1) + `"…`},
		{"a\xffb", `"a\xffb"`},
	}
	for _, tc := range tests {
		if got := wire.Echo(tc.in); got != tc.want {
			t.Errorf("Echo(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestRelayKeepsNumberAndDataByteForByte(t *testing.T) {
	number := `1.50e+3`
	data := "{ \"html\" : \"<b>&amp;</b>\",\n  \"e\":\"\\u00e9\\u2028\", \"n\":[ 1 , 2.0 ] }"
	body := `{"action":"update","target":"*","number": ` + number + ` ,"data": ` + data + ` }`
	f, err := wire.ParseFrame([]byte(body))
	if err != nil {
		t.Fatalf("ParseFrame: %v", err)
	}
	from := `conn "1" <&>` + "\u2028"
	got := wire.Relay(from, f)

	fromJSON, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"from":` + string(fromJSON) + `,"action":"update","number":` + number + `,"data":` + data + `}`
	if string(got) != want {
		t.Fatalf("Relay =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("Relay produced invalid JSON: %s", got)
	}
	if bytes.ContainsAny(got[:len(`{"from":`)+len(fromJSON)], "<>&") {
		t.Fatalf("from is not escaped: %s", got)
	}
	var decoded struct {
		From   string          `json:"from"`
		Action string          `json:"action"`
		Number json.RawMessage `json:"number"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(got, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.From != from || decoded.Action != "update" || string(decoded.Number) != number || string(decoded.Data) != data {
		t.Fatalf("Relay decodes to %+v", decoded)
	}
}

func TestRelayShapes(t *testing.T) {
	tests := []struct {
		name  string
		from  string
		frame wire.Frame
		want  string
	}{
		{"delete without number or data", "c1", wire.Frame{Action: "delete", Target: "*"}, `{"from":"c1","action":"delete"}`},
		{"number only", "c1", wire.Frame{Action: "update", Number: json.RawMessage(`3`)}, `{"from":"c1","action":"update","number":3}`},
		{"data only", "c1", wire.Frame{Action: "update", Data: json.RawMessage(`null`)}, `{"from":"c1","action":"update","data":null}`},
		{"from quoted and escaped", "a\"b\\c\n", wire.Frame{Action: "update"}, `{"from":"a\"b\\c\n","action":"update"}`},
		{"from HTML-escaped", "<&>", wire.Frame{Action: "update"}, `{"from":"\u003c\u0026\u003e","action":"update"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := wire.Relay(tc.from, tc.frame)
			if string(got) != tc.want {
				t.Fatalf("Relay = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEventFrame(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	data := "{ \"x\" : \"<&>\",\n \"u\":\"\\u00e9\", \"n\": 1.0 }"
	e := domain.Event{
		EventID: "ev-1", Type: domain.EventItemPut, Room: "lobby", ID: "item<1>",
		Version: 7, Data: json.RawMessage(data), Time: at,
	}
	got := wire.EventFrame(e)
	if !json.Valid(got) {
		t.Fatalf("EventFrame produced invalid JSON: %s", got)
	}
	if !bytes.HasSuffix(got, []byte(`,"data":`+data+`}`)) {
		t.Fatalf("EventFrame does not end with the data byte for byte: %s", got)
	}
	if string(e.Data) != data {
		t.Fatalf("EventFrame changed its argument's data: %s", e.Data)
	}
	var decoded struct {
		Action  string          `json:"action"`
		EventID string          `json:"eventId"`
		Type    string          `json:"type"`
		Room    string          `json:"room"`
		ID      string          `json:"id"`
		Version *int64          `json:"version"`
		Time    string          `json:"time"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(got, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Action != wire.ActionEvent || decoded.EventID != "ev-1" || decoded.Type != domain.EventItemPut ||
		decoded.Room != "lobby" || decoded.ID != "item<1>" || decoded.Version == nil || *decoded.Version != 7 ||
		string(decoded.Data) != data {
		t.Fatalf("EventFrame decodes to %+v", decoded)
	}
	if decoded.Time != "2030-01-02T03:04:05.6Z" {
		t.Fatalf("time = %q", decoded.Time)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(got, &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 8 {
		t.Fatalf("EventFrame has keys %v, want action eventId type room id version time data", keys)
	}
}

func TestEventFrameWithoutData(t *testing.T) {
	e := domain.Event{EventID: "ev-2", Type: domain.EventItemDeleted, Room: "r", ID: "i", Version: 1, Time: time.Unix(0, 0).UTC()}
	got := wire.EventFrame(e)
	want := `{"action":"event","eventId":"ev-2","type":"item.deleted","room":"r","id":"i","version":1,"time":"1970-01-01T00:00:00Z"}`
	if string(got) != want {
		t.Fatalf("EventFrame = %s, want %s", got, want)
	}
}

func TestServerFrames(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"pong", wire.Pong(time.UnixMilli(1_700_000_000_123)), `{"action":"pong","time":1700000000123}`},
		{"ack subscribe", wire.Ack(wire.ActionSubscribe, "lobby"), `{"action":"ack","of":"subscribe","room":"lobby"}`},
		{"ack unsubscribe", wire.Ack(wire.ActionUnsubscribe, "r:1"), `{"action":"ack","of":"unsubscribe","room":"r:1"}`},
		{"whoami", wire.Whoami("WcK2dcPZoAMCFwQ=", "ann", []string{"a", "lobby"}), `{"action":"whoami","connectionId":"WcK2dcPZoAMCFwQ=","user":"ann","rooms":["a","lobby"]}`},
		{"whoami in no room, no user", wire.Whoami("c", "", nil), `{"action":"whoami","connectionId":"c","rooms":[]}`},
		{"error", wire.ErrorFrame(domain.CodeInvalidRoom, "bad room"), `{"action":"error","code":"invalid_room","message":"bad room"}`},
		{"error message escaped", wire.ErrorFrame(domain.CodeUnknownAction, `unknown action "<x>"`),
			`{"action":"error","code":"unknown_action","message":"unknown action \"\u003cx\u003e\""}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Fatalf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
}

// FuzzParseFrame checks that ParseFrame never panics, fails only with a
// *domain.Error, and that whatever it accepts relays as valid JSON carrying
// number and data unchanged.
func FuzzParseFrame(f *testing.F) {
	for _, seed := range []string{
		`{"action":"ping"}`,
		`{"action":"subscribe","room":"lobby"}`,
		`{"action":"update","target":"*","number":1e3,"data":{"a":"<&>\u00e9"}}`,
		`{"action":"delete","target":"c","number":null}`,
		`{"action":"update","target":"*","number":"1"}`,
		`[1]`,
		`{"action":"ping"}}`,
		`{"action":"subscribe","room":".."}`,
		`{"action":"update","target":"*","data":"\u2028"}`,
		"{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\"}",
		` {"action":"whoami"} `,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := wire.ParseFrame(body)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code == "" || de.Status < 400 || de.Status > 499 {
				t.Fatalf("ParseFrame(%q) error %v is not a coded client *domain.Error", body, err)
			}
			// The error frame the sender gets is small, valid UTF-8 JSON
			// whatever it sent.
			if reply := wire.ErrorFrame(de.Code, de.Message); !json.Valid(reply) || !utf8.Valid(reply) || len(reply) > 1024 {
				t.Fatalf("error frame for %q: %q", body, reply)
			}
			return
		}
		out := wire.Relay("from-\"<>", fr)
		if !json.Valid(out) {
			t.Fatalf("Relay of ParseFrame(%q) is not valid JSON: %s", body, out)
		}
		var decoded struct {
			From   string          `json:"from"`
			Action string          `json:"action"`
			Number json.RawMessage `json:"number"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(out, &decoded); err != nil {
			t.Fatalf("Relay output %s: %v", out, err)
		}
		if decoded.From != "from-\"<>" || decoded.Action != fr.Action ||
			!bytes.Equal(decoded.Number, fr.Number) || !bytes.Equal(decoded.Data, fr.Data) {
			t.Fatalf("Relay of ParseFrame(%q) = %s decodes to %+v", body, out, decoded)
		}
		switch fr.Action {
		case wire.ActionSubscribe, wire.ActionUnsubscribe:
			if !wire.ValidName(fr.Room) {
				t.Fatalf("ParseFrame(%q) accepted room %q", body, fr.Room)
			}
		case wire.ActionUpdate, wire.ActionDelete:
			if fr.Target == "" {
				t.Fatalf("ParseFrame(%q) accepted an empty target", body)
			}
			if len(fr.Number) > 0 {
				if fr.Number[0] == '"' || json.Unmarshal(fr.Number, new(json.Number)) != nil {
					t.Fatalf("ParseFrame(%q) accepted number %s", body, fr.Number)
				}
			}
		case wire.ActionPing, wire.ActionWhoami:
		default:
			t.Fatalf("ParseFrame(%q) accepted action %q", body, fr.Action)
		}
		if !utf8.Valid(out) {
			t.Fatalf("Relay of ParseFrame(%q) is not valid UTF-8: %q", body, out)
		}
	})
}
