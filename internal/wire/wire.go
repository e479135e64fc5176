// Package wire defines pushgate's WebSocket protocol: the frames clients send,
// the frames they receive, and the limits and names both sides must respect.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/pushgate/pushgate/internal/domain"
)

// Limits set by API Gateway and by pushgate.
const (
	// MaxMessageBytes is API Gateway's WebSocket message limit (128 KB).
	MaxMessageBytes = 128 * 1024
	// MaxFrameBytes is API Gateway's limit for one WebSocket frame (32 KB).
	MaxFrameBytes = 32 * 1024
	// MaxNameLen bounds room names and item ids.
	MaxNameLen = 128
	// MaxEcho bounds how much of a client's input an error message
	// repeats, so an answer stays small whatever was sent.
	MaxEcho = 32
)

// Client actions.
const (
	ActionPing        = "ping"
	ActionPong        = "pong"
	ActionSubscribe   = "subscribe"
	ActionUnsubscribe = "unsubscribe"
	ActionUpdate      = "update"
	ActionDelete      = "delete"
	ActionError       = "error"
	ActionAck         = "ack"
	ActionEvent       = "event"
	ActionWhoami      = "whoami"
	// TargetAll relays to every other connection in the sender's rooms.
	TargetAll = "*"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// ValidName reports whether s can name a room or an item: 1 to 128 of
// A-Z a-z 0-9 _ . : -, safe in URLs, DynamoDB keys and logs. "." and ".."
// are refused: they are dot segments, which URLs resolve away (a GET of
// /rooms/r/items/. is a GET of the list), so such an item could never be
// addressed.
func ValidName(s string) bool {
	return len(s) > 0 && len(s) <= MaxNameLen && s != "." && s != ".." && nameRE.MatchString(s)
}

// NameRule says what ValidName accepts, for error messages.
const NameRule = "1-128 characters of A-Z a-z 0-9 _ . : -, and not . or .."

// CheckRoom returns a client error if room is not a valid room name.
func CheckRoom(room string) error {
	if !ValidName(room) {
		return domain.Errorf(http.StatusBadRequest, domain.CodeInvalidRoom, "room must be %s", NameRule)
	}
	return nil
}

// Echo quotes client input for an error message: at most MaxEcho bytes of
// it, cut at a character boundary, with "…" when cut.
func Echo(s string) string {
	if len(s) <= MaxEcho {
		return fmt.Sprintf("%q", s)
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

// Frame is a client message. Fields not used by an action are ignored.
type Frame struct {
	Action string
	Room   string
	Target string
	Number json.RawMessage
	Data   json.RawMessage
}

// raw mirrors Frame with every field as raw JSON, so a wrong type is
// reported as such rather than as a generic decode failure.
type raw struct {
	Action json.RawMessage `json:"action"`
	Room   json.RawMessage `json:"room"`
	Target json.RawMessage `json:"target"`
	Number json.RawMessage `json:"number"`
	Data   json.RawMessage `json:"data"`
}

// ParseFrame decodes and validates a client message. Errors are *domain.Error
// with a code the client can act on.
func ParseFrame(body []byte) (Frame, error) {
	if len(body) > MaxMessageBytes {
		return Frame{}, domain.Errorf(http.StatusRequestEntityTooLarge, domain.CodeTooLarge,
			"message is %d bytes; the limit is %d", len(body), MaxMessageBytes)
	}
	// encoding/json lets invalid UTF-8 through in raw values, and a relay
	// copies data byte for byte: one such frame would make every browser
	// in the room drop its socket (a text frame must be UTF-8).
	if !utf8.Valid(body) {
		return Frame{}, domain.Errorf(http.StatusBadRequest, domain.CodeInvalidJSON, "message is not valid UTF-8")
	}
	// Unmarshal, unlike a Decoder, rejects anything after the value; the
	// '{' check rejects null, which would decode into an empty struct.
	var r raw
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(body, &r) != nil {
		return Frame{}, domain.Errorf(http.StatusBadRequest, domain.CodeInvalidJSON, "message is not a JSON object")
	}
	var f Frame
	var err error
	if f.Action, err = str("action", r.Action, true); err != nil {
		return Frame{}, err
	}
	switch f.Action {
	case ActionPing, ActionWhoami:
	case ActionSubscribe, ActionUnsubscribe:
		if f.Room, err = str("room", r.Room, true); err != nil {
			return Frame{}, err
		}
		if err := CheckRoom(f.Room); err != nil {
			return Frame{}, err
		}
	case ActionUpdate, ActionDelete:
		if f.Target, err = str("target", r.Target, true); err != nil {
			return Frame{}, err
		}
		if f.Target == "" {
			return Frame{}, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest, `"target" must be "*" or a connection id`)
		}
		if len(r.Number) > 0 && !isNull(r.Number) {
			// json.Number also accepts a string holding a number, which
			// would then be relayed as a string.
			var n json.Number
			if err := json.Unmarshal(r.Number, &n); err != nil || r.Number[0] == '"' {
				return Frame{}, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest, `"number" must be a number`)
			}
			f.Number = r.Number
		}
		f.Data = r.Data
	default:
		return Frame{}, domain.Errorf(http.StatusBadRequest, domain.CodeUnknownAction,
			"unknown action %s; expected ping, whoami, subscribe, unsubscribe, update or delete", Echo(f.Action))
	}
	return f, nil
}

func isNull(b json.RawMessage) bool { return string(b) == "null" }

func str(field string, b json.RawMessage, required bool) (string, error) {
	if len(b) == 0 || isNull(b) {
		if required {
			return "", domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest, "%q is required", field)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest, "%q must be a string", field)
	}
	return s, nil
}

// Pong answers a ping.
func Pong(now time.Time) []byte {
	return mustJSON(struct {
		Action string `json:"action"`
		Time   int64  `json:"time"`
	}{ActionPong, now.UnixMilli()})
}

// Ack confirms a subscribe or unsubscribe.
func Ack(of, room string) []byte {
	return mustJSON(struct {
		Action string `json:"action"`
		Of     string `json:"of"`
		Room   string `json:"room"`
	}{ActionAck, of, room})
}

// Whoami tells a connection its own id, the user its token names and its
// rooms.
func Whoami(connectionID, user string, rooms []string) []byte {
	if rooms == nil {
		rooms = []string{}
	}
	return mustJSON(struct {
		Action       string   `json:"action"`
		ConnectionID string   `json:"connectionId"`
		User         string   `json:"user,omitempty"`
		Rooms        []string `json:"rooms"`
	}{ActionWhoami, connectionID, user, rooms})
}

// ErrorFrame reports a rejected message to its sender.
func ErrorFrame(code, message string) []byte {
	return mustJSON(struct {
		Action  string `json:"action"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{ActionError, code, message})
}

// Relay is what the other clients receive for an update or delete: the
// sender's id, and number and data byte for byte as the sender wrote them
// (encoding/json would compact them and escape HTML characters).
func Relay(from string, f Frame) []byte {
	b := make([]byte, 0, 64+len(from)+len(f.Number)+len(f.Data))
	b = append(b, `{"from":`...)
	b = append(b, mustJSON(from)...)
	b = append(b, `,"action":`...)
	b = append(b, mustJSON(f.Action)...)
	b = appendRaw(b, "number", f.Number)
	b = appendRaw(b, "data", f.Data)
	return append(b, '}')
}

// EventFrame is what a room's clients receive for a published event: the
// event itself, data unchanged, marked with action "event".
func EventFrame(e domain.Event) []byte {
	body, err := e.MarshalJSON() // not json.Marshal, which re-escapes data
	if err != nil {
		panic(fmt.Sprintf("wire: encode event: %v", err))
	}
	b := make([]byte, 0, len(body)+20)
	b = append(b, `{"action":"event",`...)
	return append(b, body[1:]...)
}

func appendRaw(b []byte, key string, v json.RawMessage) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return append(b, v...)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable with invalid json.RawMessage, which ParseFrame and
		// the HTTP API never let through.
		panic(fmt.Sprintf("wire: encode %T: %v", v, err))
	}
	return b
}
