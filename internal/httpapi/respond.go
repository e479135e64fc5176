package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/wire"
)

func checkNames(req *request) error {
	if err := wire.CheckRoom(req.room); err != nil {
		return err
	}
	if req.route == routeItem && !wire.ValidName(req.id) {
		return domain.Errorf(http.StatusBadRequest, domain.CodeInvalidID, "id must be %s", wire.NameRule)
	}
	return nil
}

// header returns the named request header. Payload 2.0 lower-cases header
// names; the fallback keeps hand-built events (tests, local emulators) working.
func header(ev events.APIGatewayV2HTTPRequest, name string) (string, bool) {
	if v, ok := ev.Headers[name]; ok {
		return v, true
	}
	for k, v := range ev.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func jsonResponse(status int, body []byte) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(body),
	}
}

// errorResponse answers with err's status and code. A 5xx keeps its cause
// in req for the log and tells the client nothing about it.
func errorResponse(req *request, err error) events.APIGatewayV2HTTPResponse {
	e := domain.AsError(err)
	status, code, message := e.Status, e.Code, e.Message
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		req.err = err
		code, message = domain.CodeInternal, "internal error"
		if e.Code == domain.CodeUnavailable {
			code, message = domain.CodeUnavailable, domain.UnavailableMessage
		}
	}
	resp := jsonResponse(status, errorJSON(code, message))
	if code == domain.CodeUnavailable {
		resp.Headers["Retry-After"] = strconv.Itoa(domain.RetryAfterSeconds)
	}
	return resp
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorJSON(code, message string) []byte {
	return mustJSON(struct {
		Error errorBody `json:"error"`
	}{errorBody{code, message}})
}

// itemResponse answers with the item and its version as ETag.
func itemResponse(status int, it domain.Item, withData bool) events.APIGatewayV2HTTPResponse {
	resp := jsonResponse(status, appendItem(nil, it, withData))
	resp.Headers["ETag"] = etag(it.Version)
	return resp
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// appendItem writes the item's JSON with its data spliced in byte for byte:
// encoding/json would compact it and escape <, > and &.
func appendItem(b []byte, it domain.Item, withData bool) []byte {
	head := mustJSON(struct {
		Room      string `json:"room"`
		ID        string `json:"id"`
		Version   int64  `json:"version"`
		UpdatedAt string `json:"updatedAt"`
	}{it.Room, it.ID, it.Version, it.UpdatedAt.UTC().Format(time.RFC3339Nano)})
	b = append(b, head[:len(head)-1]...)
	if withData && len(it.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, it.Data...)
	}
	return append(b, '}')
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings and integers are marshalled here.
		panic(fmt.Sprintf("httpapi: encode %T: %v", v, err))
	}
	return b
}
