package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Why a token was refused; the authorizer logs it, the caller sees 401.
const (
	ReasonMissing     = "missing"
	ReasonTooLarge    = "too_large"
	ReasonMalformed   = "malformed"
	ReasonSignature   = "bad_signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonIssuer      = "wrong_issuer"
	ReasonAudience    = "wrong_audience"
	ReasonClaims      = "bad_claims"
	ReasonKeys        = "keys_unavailable"
)

// TokenError is a refused token. Match it with errors.As.
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return "token refused (" + e.Reason + "): " + e.Err.Error()
	}
	return "token refused (" + e.Reason + ")"
}

func (e *TokenError) Unwrap() error { return e.Err }

// Patterns is a claim listing room patterns: a JSON array of strings, or
// one string of space-separated patterns as OAuth writes a scope.
type Patterns []string

// UnmarshalJSON accepts either form.
func (p *Patterns) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return fmt.Errorf("room patterns: want an array of strings or a space-separated string")
		}
		list = strings.Fields(s)
	}
	*p = list
	return nil
}

// Claims is what a pushgate token carries besides the registered claims:
// the rooms its subject may join and write.
type Claims struct {
	jwt.RegisteredClaims
	Join  Patterns `json:"join,omitempty"`
	Write Patterns `json:"write,omitempty"`
}

// principal checks the claims a verified token holds and turns them into
// a Principal.
func (c *Claims) principal() (Principal, error) {
	if c.Subject == "" || len(c.Subject) > MaxUserBytes || !utf8.ValidString(c.Subject) {
		return Principal{}, errors.New(`"sub" must be 1 to 256 bytes of UTF-8`)
	}
	for name, list := range map[string]Patterns{"join": c.Join, "write": c.Write} {
		if len(list) > MaxPatterns {
			return Principal{}, fmt.Errorf("%q holds %d patterns; the limit is %d", name, len(list), MaxPatterns)
		}
		for _, p := range list {
			if err := CheckPattern(p); err != nil {
				return Principal{}, fmt.Errorf("%q: %w", name, err)
			}
		}
	}
	p := Principal{User: c.Subject, Join: []string(c.Join), Write: []string(c.Write)}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	return p, nil
}

// Keys gives the keys a token may be signed with.
type Keys interface {
	// Keyfunc returns the verification key (or a jwt.VerificationKeySet)
	// for token; refresh asks a cached source to fetch again, once a
	// token failed with the keys it had (a key may just have rotated).
	Keyfunc(ctx context.Context, refresh bool) (jwt.Keyfunc, error)
}

// Verifier checks tokens: signature, algorithm, exp/nbf, issuer, audience
// and pushgate's claims.
type Verifier struct {
	keys   Keys
	parser *jwt.Parser
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Keys Keys
	// Issuer is the required "iss"; Audience must be one of "aud".
	Issuer   string
	Audience string
	// Algorithms are the signing algorithms accepted (HS256 for pushgate's
	// own key, the provider's for OIDC). "none" is never accepted.
	Algorithms []string
	// Now is the clock, time.Now when nil.
	Now func() time.Time
}

// Leeway is the clock skew tolerated on exp and nbf.
const Leeway = 30 * time.Second

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Keys == nil || cfg.Issuer == "" || cfg.Audience == "" || len(cfg.Algorithms) == 0 {
		return nil, errors.New("auth: a verifier needs keys, an issuer, an audience and algorithms")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithJSONNumber(),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	return &Verifier{keys: cfg.Keys, parser: jwt.NewParser(opts...)}, nil
}

// Verify checks token and returns its Principal. A refused token is a
// *TokenError; a failure to obtain keys is one with ReasonKeys, which the
// authorizer answers as an error (500) rather than a refusal.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	switch {
	case token == "":
		return Principal{}, &TokenError{Reason: ReasonMissing}
	case len(token) > MaxTokenBytes:
		return Principal{}, &TokenError{Reason: ReasonTooLarge, Err: fmt.Errorf("%d bytes; the limit is %d", len(token), MaxTokenBytes)}
	}
	p, err := v.verify(ctx, token, false)
	var te *TokenError
	if errors.As(err, &te) && te.Reason == ReasonSignature {
		// Signed with a key this container has not seen yet: fetch the
		// keys again (the source limits how often) and try once more.
		p, err = v.verify(ctx, token, true)
	}
	return p, err
}

func (v *Verifier) verify(ctx context.Context, token string, refresh bool) (Principal, error) {
	keyfunc, err := v.keys.Keyfunc(ctx, refresh)
	if err != nil {
		return Principal{}, &TokenError{Reason: ReasonKeys, Err: err}
	}
	var c Claims
	if _, err := v.parser.ParseWithClaims(token, &c, keyfunc); err != nil {
		return Principal{}, &TokenError{Reason: reason(err), Err: err}
	}
	p, err := c.principal()
	if err != nil {
		return Principal{}, &TokenError{Reason: ReasonClaims, Err: err}
	}
	return p, nil
}

func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	// Unverifiable: no key for its "kid", or an algorithm refused.
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonAudience
	}
	return ReasonClaims
}

// Token describes a token to mint with pushgate's own key.
type Token struct {
	Issuer   string
	Audience string
	User     string
	Join     []string
	Write    []string
	// TTL is how long the token is valid from now.
	TTL time.Duration
	Now time.Time
}

// Mint signs t with key (HS256), as a backend does for its users; the
// Verifier of ModeKey accepts the result.
func Mint(key []byte, t Token) (string, error) {
	if len(key) < MinKeyBytes {
		return "", fmt.Errorf("auth: signing key has %d bytes; at least %d are needed", len(key), MinKeyBytes)
	}
	now := t.Now
	if now.IsZero() {
		now = time.Now()
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.Issuer,
			Subject:   t.User,
			Audience:  jwt.ClaimStrings{t.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.TTL)),
		},
		Join:  t.Join,
		Write: t.Write,
	}
	if _, err := c.principal(); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
}
