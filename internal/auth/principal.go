// Package auth verifies pushgate's tokens and decides which rooms a caller
// may join and write.
package auth

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/internal/wire"
)

// Mode says who vouches for callers.
type Mode string

// The modes the template's AuthMode parameter takes.
const (
	// ModeKey verifies HS256 tokens signed with pushgate's own key, which a
	// backend holding the same key mints.
	ModeKey Mode = "key"
	// ModeOIDC verifies tokens of the user's identity provider with the
	// keys its JWKS URL publishes.
	ModeOIDC Mode = "oidc"
	// ModeNone lets everyone do everything: for demos only.
	ModeNone Mode = "none"
)

// ParseMode reads a Mode from its name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeKey, ModeOIDC, ModeNone:
		return m, nil
	}
	return "", fmt.Errorf("auth mode %q: want key, oidc or none", s)
}

// Limits on what a token may carry, so a grant list stays cheap to check
// and fits API Gateway's authorizer context.
const (
	MaxPatterns      = 64
	MaxTokenBytes    = 8192
	MaxUserBytes     = 256
	anonymousUser    = "anonymous"
	contextUser      = "user"
	contextJoin      = "join"
	contextWrite     = "write"
	contextExpiresAt = "exp"
)

// Principal is an authenticated caller and the rooms it may use.
type Principal struct {
	// User is the token's subject.
	User string
	// Join and Write are room patterns: an exact room name, a prefix
	// ending in "*" ("game-*"), or "*" for every room.
	Join  []string
	Write []string
	// ExpiresAt is the token's expiry; zero for Anonymous.
	ExpiresAt time.Time
}

// Anonymous is the caller when auth is off (ModeNone): everyone may join and
// write every room.
func Anonymous() Principal {
	return Principal{User: anonymousUser, Join: []string{"*"}, Write: []string{"*"}}
}

// CanJoin reports whether p may connect to, or subscribe to, room.
func (p Principal) CanJoin(room string) bool { return matchAny(p.Join, room) }

// CanWrite reports whether p may write items of room over HTTP, or relay
// frames into it.
func (p Principal) CanWrite(room string) bool { return matchAny(p.Write, room) }

// Expired reports whether p's token has expired at now; an API Gateway
// authorizer cache can outlive a token by its TTL, so handlers check too.
func (p Principal) Expired(now time.Time) bool {
	return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}

func matchAny(patterns []string, room string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return Match(p, room) })
}

// Match reports whether room matches pattern: equal to it, or starting with
// what precedes a trailing "*".
func Match(pattern, room string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(room, prefix)
	}
	return pattern == room
}

// CheckPattern reports whether p is a room pattern a grant may hold.
func CheckPattern(p string) error {
	name, wild := strings.CutSuffix(p, "*")
	if wild && name == "" {
		return nil
	}
	// A prefix need not be a whole name ("game-" is fine), but it may only
	// hold the characters a name may.
	if wild && wire.ValidName(name+"x") || !wild && wire.ValidName(name) {
		return nil
	}
	return fmt.Errorf("room pattern %q: want a room name, a prefix followed by *, or *", wire.Echo(p))
}

// Context is p as an API Gateway authorizer context, which holds only
// strings, numbers and booleans: patterns are joined by spaces (room names
// have none).
func (p Principal) Context() map[string]any {
	m := map[string]any{
		contextUser:  p.User,
		contextJoin:  strings.Join(p.Join, " "),
		contextWrite: strings.Join(p.Write, " "),
	}
	if !p.ExpiresAt.IsZero() {
		m[contextExpiresAt] = p.ExpiresAt.Unix()
	}
	return m
}

// FromContext reads the Principal an authorizer's Context put into an
// event. A REST-style (WebSocket) authorizer context arrives with every
// value turned into a string, an HTTP API one with JSON types, so both are
// read.
func FromContext(m map[string]any) (Principal, error) {
	user, _ := m[contextUser].(string)
	if user == "" {
		return Principal{}, fmt.Errorf("authorizer context has no %q", contextUser)
	}
	p := Principal{User: user}
	for key, dst := range map[string]*[]string{contextJoin: &p.Join, contextWrite: &p.Write} {
		s, _ := m[key].(string)
		*dst = strings.Fields(s)
	}
	switch exp := m[contextExpiresAt].(type) {
	case nil:
	case float64:
		p.ExpiresAt = time.Unix(int64(exp), 0)
	case int64:
		p.ExpiresAt = time.Unix(exp, 0)
	case string:
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return Principal{}, fmt.Errorf("authorizer context: %q is %q, not a Unix time", contextExpiresAt, exp)
		}
		p.ExpiresAt = time.Unix(n, 0)
	default:
		return Principal{}, fmt.Errorf("authorizer context: %q is a %T", contextExpiresAt, exp)
	}
	return p, nil
}
