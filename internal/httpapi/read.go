package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
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
	b = append(b, '}')
	return jsonResponse(http.StatusOK, b)
}

func listParams(ev events.APIGatewayV2HTTPRequest) (limit int, cursor string, err error) {
	q := ev.QueryStringParameters
	if q == nil && ev.RawQueryString != "" {
		// Hand-built events may carry only the raw query.
		if v, perr := url.ParseQuery(ev.RawQueryString); perr == nil {
			q = make(map[string]string, len(v))
			for k := range v {
				q[k] = v.Get(k)
			}
		}
	}
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
