package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
)

func (h *Handler) put(ctx context.Context, req *request) events.APIGatewayV2HTTPResponse {
	if err := checkContentType(req.APIGatewayV2HTTPRequest); err != nil {
		return errorResponse(req, err)
	}
	pre, err := preconditions(req.APIGatewayV2HTTPRequest, true)
	if err != nil {
		return errorResponse(req, err)
	}
	data, err := itemBody(req.APIGatewayV2HTTPRequest)
	if err != nil {
		return errorResponse(req, err)
	}
	put, err := h.store.PutItem(ctx, domain.Item{Room: req.room, ID: req.id, Data: data}, pre, h.change())
	if err != nil {
		return errorResponse(req, err)
	}
	it := put.Item
	req.version, req.seq = it.Version, put.Event.Seq
	status := http.StatusOK
	if put.Created {
		status = http.StatusCreated
	}
	return h.publish(ctx, req, status, it, put.Event)
}

// change is what the store records the write's event with.
func (h *Handler) change() domain.Change {
	return domain.Change{Now: h.now(), EventID: h.newEventID(), HistoryTTL: h.historyTTL}
}

func (h *Handler) delete(ctx context.Context, req *request) events.APIGatewayV2HTTPResponse {
	pre, err := preconditions(req.APIGatewayV2HTTPRequest, false)
	if err != nil {
		return errorResponse(req, err)
	}
	d, err := h.store.DeleteItem(ctx, req.room, req.id, pre, h.change())
	if err != nil {
		return errorResponse(req, err)
	}
	it := d.Item
	it.Room, it.ID, it.Data = req.room, req.id, nil
	req.version, req.seq = it.Version, d.Event.Seq
	req.repeated = d.Repeated
	// A repeated delete publishes its event again (same id, same seq):
	// that is how a delete whose event was lost is retried.
	return h.publish(ctx, req, http.StatusOK, it, d.Event)
}

// publish sends the stored change's event and takes it off the outbox.
// When the publish fails the write still succeeds: its event stays on the
// outbox, which the outbox sweeper publishes, and in the room's history,
// where clients that see the next seq find it sooner.
func (h *Handler) publish(ctx context.Context, req *request, status int, it domain.Item, ev domain.Event) events.APIGatewayV2HTTPResponse {
	if err := h.pub.Publish(ctx, ev); err != nil {
		req.err = fmt.Errorf("publish %s %s of %s/%s seq %d (left on the outbox): %w", ev.Type, ev.EventID, it.Room, it.ID, ev.Seq, err)
		req.outbox = true
	} else if err := h.store.MarkPublished(ctx, ev.Room, ev.Seq); err != nil {
		// The sweeper will publish it again: a duplicate, which clients
		// drop by its seq.
		req.err = fmt.Errorf("published %s but: %w", ev.EventID, err)
		req.outbox = true
	}
	return itemResponse(status, it, ev.Type == domain.EventItemPut)
}

func checkContentType(ev events.APIGatewayV2HTTPRequest) error {
	unsupported := domain.Errorf(http.StatusUnsupportedMediaType, domain.CodeUnsupportedType,
		"Content-Type must be application/json")
	v, ok := header(ev, "content-type")
	if !ok {
		return unsupported
	}
	mediaType, params, err := mime.ParseMediaType(v)
	if err != nil || mediaType != "application/json" {
		return unsupported
	}
	// JSON exchanged between systems is UTF-8 (RFC 8259), and the data is
	// stored and pushed as it arrives, never transcoded.
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return domain.Errorf(http.StatusUnsupportedMediaType, domain.CodeUnsupportedType,
			"the body must be UTF-8 (charset=utf-8)")
	}
	return nil
}

// preconditions reads If-Match (a version, bare or as the quoted ETag) and,
// on PUT, If-None-Match: *.
func preconditions(ev events.APIGatewayV2HTTPRequest, put bool) (domain.Precondition, error) {
	var pre domain.Precondition
	if v, ok := header(ev, "if-match"); ok {
		n, ok := parseVersion(v)
		if !ok {
			return pre, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest,
				`If-Match must be one item version, as 3 or "3"`)
		}
		pre.IfMatch = n
	}
	if v, ok := header(ev, "if-none-match"); ok {
		if !put {
			return pre, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest,
				"If-None-Match is only supported on PUT")
		}
		if strings.TrimSpace(v) != "*" {
			return pre, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest,
				"If-None-Match must be *")
		}
		pre.IfNoneMatch = true
	}
	if pre.IfMatch > 0 && pre.IfNoneMatch {
		return pre, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest,
			"send If-Match or If-None-Match, not both")
	}
	return pre, nil
}

// parseVersion accepts 3 and "3". Weak tags, lists and * are refused: the
// store compares one exact version.
func parseVersion(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// itemBody returns the PUT body, base64-decoded if API Gateway encoded it,
// checked to be one JSON object of at most MaxItemBytes. JSON whitespace
// around the object is dropped; the object itself is kept byte for byte.
func itemBody(ev events.APIGatewayV2HTTPRequest) ([]byte, error) {
	tooLarge := domain.Errorf(http.StatusRequestEntityTooLarge, domain.CodeTooLarge,
		"the body must be at most %d bytes", MaxItemBytes)
	var body []byte
	if ev.IsBase64Encoded {
		// Refuse before decoding what cannot fit anyway; API Gateway's
		// encoding has padding and no line breaks.
		if len(ev.Body) > base64.StdEncoding.EncodedLen(MaxItemBytes) {
			return nil, tooLarge
		}
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest, "the body is not valid base64")
		}
	} else {
		body = []byte(ev.Body)
	}
	if len(body) > MaxItemBytes {
		return nil, tooLarge
	}
	body = bytes.Trim(body, " \t\r\n")
	if len(body) == 0 || body[0] != '{' || !utf8.Valid(body) || !json.Valid(body) {
		return nil, domain.Errorf(http.StatusBadRequest, domain.CodeInvalidJSON, "the body must be one JSON object")
	}
	return body, nil
}
