package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/wire"
)

func (h *Handler) get(ctx context.Context, req *request) events.APIGatewayV2HTTPResponse {
	it, err := h.reader.GetItem(ctx, req.room, req.id)
	if err != nil {
		return errorResponse(req, err)
	}
	req.version = it.Version
	return itemResponse(http.StatusOK, it, true)
}

func (h *Handler) list(ctx context.Context, req *request) events.APIGatewayV2HTTPResponse {
	limit, cursor, err := listParams(req.APIGatewayV2HTTPRequest)
	if err != nil {
		return errorResponse(req, err)
	}
	// Read before the items: a client that follows the events after it
	// misses none of the writes the listing does not show.
	last, err := h.reader.LastSeq(ctx, req.room)
	if err != nil {
		return errorResponse(req, err)
	}
	page, err := h.reader.ListItems(ctx, req.room, cursor, limit)
	if err != nil {
		return errorResponse(req, err)
	}
	b := []byte(`{"items":[`)
	for i, it := range page.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, it, true)
	}
	b = append(b, ']')
	if page.Next != "" {
		b = append(b, `,"next":`...)
		b = append(b, mustJSON(page.Next)...)
	}
	b = append(b, `,"last":`+strconv.FormatInt(last, 10)+`}`...)
	return jsonResponse(http.StatusOK, b)
}

// events answers the room's history after ?after= (default 0): the events
// as they were pushed, in seq order, {"events":[…],"last":n,"next":"s"}
// with next, the after of the following page, while there is more; 410
// history_expired when the history no longer reaches back that far.
func (h *Handler) events(ctx context.Context, req *request) events.APIGatewayV2HTTPResponse {
	limit, _, err := listParams(req.APIGatewayV2HTTPRequest)
	if err != nil {
		return errorResponse(req, err)
	}
	after := int64(0)
	if v := query(req.APIGatewayV2HTTPRequest)["after"]; v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return errorResponse(req, domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest, "after must be a sequence number, 0 or more"))
		}
	}
	page, err := h.reader.ListEvents(ctx, req.room, after, limit)
	if err != nil {
		return errorResponse(req, err)
	}
	last := strconv.FormatInt(page.Last, 10)
	if page.Expired {
		head := errorJSON(domain.CodeHistoryExpired, fmt.Sprintf(
			"the room's history does not hold the events after seq %d (expired, or the room's store was reset); read the room's items again, then follow events after seq %d", after, page.Last))
		return jsonResponse(http.StatusGone, append(append(head[:len(head)-1], `,"last":`+last...), '}'))
	}
	b := []byte(`{"events":[`)
	for i, e := range page.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, wire.EventFrame(e)...)
	}
	b = append(b, `],"last":`+last...)
	if page.More && len(page.Events) > 0 {
		b = append(b, `,"next":`...)
		b = append(b, mustJSON(strconv.FormatInt(page.Events[len(page.Events)-1].Seq, 10))...)
	}
	return jsonResponse(http.StatusOK, append(b, '}'))
}

// query is the request's query parameters; hand-built events may carry only
// the raw query.
func query(ev events.APIGatewayV2HTTPRequest) map[string]string {
	q := ev.QueryStringParameters
	if q == nil && ev.RawQueryString != "" {
		if v, perr := url.ParseQuery(ev.RawQueryString); perr == nil {
			q = make(map[string]string, len(v))
			for k := range v {
				q[k] = v.Get(k)
			}
		}
	}
	return q
}

func listParams(ev events.APIGatewayV2HTTPRequest) (limit int, cursor string, err error) {
	q := query(ev)
	limit = domain.DefaultListLimit
	if s, ok := q["limit"]; ok {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > domain.MaxListLimit {
			return 0, "", domain.Errorf(http.StatusBadRequest, domain.CodeBadRequest,
				"limit must be an integer from 1 to %d", domain.MaxListLimit)
		}
		limit = n
	}
	return limit, q["cursor"], nil
}
