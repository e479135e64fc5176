package auth

import (
	"net/http"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
)

// Gate gives a handler its caller from the authorizer context API Gateway
// put into the event.
type Gate struct {
	// Required is set for a route behind an authorizer. An event without
	// a context then means the route lost its authorizer, and the caller
	// is refused rather than let in.
	Required bool
}

// Principal returns the caller: Anonymous when no authorizer is required,
// else the context's Principal, refused (401 unauthorized) when it is
// missing or unreadable. A WebSocket keeps the grants it connected with
// for its life (API Gateway authorizes $connect only, and cuts every
// socket within 2 hours), so its messages use this.
func (g Gate) Principal(context map[string]any) (Principal, error) {
	if !g.Required {
		return Anonymous(), nil
	}
	if context == nil {
		return Principal{}, domain.Errorf(http.StatusUnauthorized, domain.CodeUnauthorized, "no token was verified for this request")
	}
	p, err := FromContext(context)
	if err != nil {
		return Principal{}, &domain.Error{Code: domain.CodeUnauthorized, Status: http.StatusUnauthorized,
			Message: "the authorizer's answer is unreadable", Err: err}
	}
	return p, nil
}

// Fresh is Principal for one HTTP request: it also refuses a token that
// expired since the authorizer's answer was cached (for up to 5 minutes).
func (g Gate) Fresh(context map[string]any, now time.Time) (Principal, error) {
	p, err := g.Principal(context)
	if err != nil {
		return Principal{}, err
	}
	if p.Expired(now) {
		return Principal{}, domain.Errorf(http.StatusUnauthorized, domain.CodeUnauthorized, "the token has expired; get a new one")
	}
	return p, nil
}

// Forbidden is the error for a room the caller has no grant for.
func Forbidden(what, room string) error {
	return domain.Errorf(http.StatusForbidden, domain.CodeForbidden, "your token does not allow you to %s room %s", what, room)
}
