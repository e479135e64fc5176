package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/internal/auth"
)

// tokenPath mints a development token (POST), a local-only endpoint: a
// deployed stack's tokens come from the app's backend.
const tokenPath = "/_local/token"

// DefaultTokenTTL is how long a development token is valid.
const DefaultTokenTTL = 12 * time.Hour

// tokenSpec is what tokens must carry for the stack's authorizer.
type tokenSpec struct {
	issuer, audience string
	mode             auth.Mode
}

// AuthMode is the mode the stack's template parameters chose.
func (s *Stack) AuthMode() auth.Mode {
	if s.tokens.mode == "" {
		return auth.ModeNone
	}
	return s.tokens.mode
}

// TokenRequest asks for a development token.
type TokenRequest struct {
	User  string   `json:"user"`
	Join  []string `json:"join"`
	Write []string `json:"write"`
	// TTL is a Go duration; empty for DefaultTokenTTL.
	TTL string `json:"ttl,omitempty"`
}

// ErrNoTokens: the stack mints no tokens unless AuthMode is key (with oidc
// they come from the identity provider, with none nothing checks them).
var ErrNoTokens = errors.New("local: this stack mints no tokens")

// Token mints a token the stack's authorizer accepts, signed with the
// development key.
func (s *Stack) Token(req TokenRequest) (string, error) {
	if s.AuthMode() != auth.ModeKey {
		return "", fmt.Errorf("%w: AuthMode is %s, not key", ErrNoTokens, s.AuthMode())
	}
	ttl := DefaultTokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("local: ttl %q is not a positive Go duration", req.TTL)
		}
		ttl = d
	}
	return auth.Mint(s.signingKey, auth.Token{
		Issuer: s.tokens.issuer, Audience: s.tokens.audience,
		User: req.User, Join: req.Join, Write: req.Write, TTL: ttl,
	})
}

func (s *Stack) serveToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	status, code := http.StatusOK, ""
	token, err := "", dec.Decode(&req)
	if err != nil {
		status, code = http.StatusBadRequest, "invalid_json"
	} else if token, err = s.Token(req); err != nil {
		status, code = http.StatusBadRequest, "bad_request"
		if errors.Is(err, ErrNoTokens) {
			status, code = http.StatusConflict, "no_tokens"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err != nil {
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": err.Error()}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
}
