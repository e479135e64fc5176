package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// MinKeyBytes is the shortest HS256 key accepted: 256 bits, the hash's size
// (RFC 7518 §3.2).
const MinKeyBytes = 32

// FetchKeys returns the HS256 keys tokens may be signed with, the one new
// tokens are signed with first (during a rotation the previous one still
// verifies).
type FetchKeys func(ctx context.Context) ([][]byte, error)

// HMACKeys caches fetched HS256 keys per container, so a verification costs
// no call to the key store: fetched again after TTL, or after a token
// failed to verify but at most every MinRefresh.
type HMACKeys struct {
	fetch FetchKeys
	// TTL bounds how long a rotated-out key keeps verifying.
	TTL        time.Duration
	MinRefresh time.Duration
	now        func() time.Time

	mu        sync.Mutex
	keys      jwt.VerificationKeySet
	fetchedAt time.Time
}

// NewHMACKeys returns a cache over fetch with a 5 minute TTL and at most
// one refresh every 30 s.
func NewHMACKeys(fetch FetchKeys) *HMACKeys {
	return &HMACKeys{fetch: fetch, TTL: 5 * time.Minute, MinRefresh: 30 * time.Second, now: time.Now}
}

// StaticKeys is a key source that never changes (the local stack's
// development key, tests).
func StaticKeys(keys ...[]byte) *HMACKeys {
	return NewHMACKeys(func(context.Context) ([][]byte, error) { return keys, nil })
}

// Keyfunc returns the cached keys, fetching them when due.
func (k *HMACKeys) Keyfunc(ctx context.Context, refresh bool) (jwt.Keyfunc, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	age := k.now().Sub(k.fetchedAt)
	if k.keys.Keys == nil || age >= k.TTL || refresh && age >= k.MinRefresh {
		keys, err := k.load(ctx)
		switch {
		case err == nil:
			k.keys, k.fetchedAt = keys, k.now()
		case k.keys.Keys == nil:
			return nil, err
		default:
			// Keep verifying with the keys we have rather than refuse
			// every caller while the key store is unreachable; try again
			// after MinRefresh.
			k.fetchedAt = k.now().Add(-k.TTL + k.MinRefresh)
		}
	}
	keys := k.keys
	return func(*jwt.Token) (any, error) { return keys, nil }, nil
}

func (k *HMACKeys) load(ctx context.Context) (jwt.VerificationKeySet, error) {
	raw, err := k.fetch(ctx)
	if err != nil {
		return jwt.VerificationKeySet{}, fmt.Errorf("signing keys: %w", err)
	}
	if len(raw) == 0 {
		return jwt.VerificationKeySet{}, errors.New("signing keys: none")
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(raw))}
	for i, key := range raw {
		if len(key) < MinKeyBytes {
			return jwt.VerificationKeySet{}, fmt.Errorf("signing key %d has %d bytes; at least %d are needed", i, len(key), MinKeyBytes)
		}
		set.Keys = append(set.Keys, key)
	}
	return set, nil
}

// JWKS is the key source of ModeOIDC: the provider's published keys, cached
// and refreshed by keyfunc (hourly, and when a token names a key id it has
// not seen, at most every 5 minutes).
type JWKS struct {
	kf keyfunc.Keyfunc
}

// NewJWKS starts caching the key set at url; ctx ends its refreshes. A
// provider that cannot be reached now is tried again on use.
func NewJWKS(ctx context.Context, url string) (*JWKS, error) {
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{url})
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS %s: %w", url, err)
	}
	return &JWKS{kf: kf}, nil
}

// Keyfunc returns the key set's keyfunc; keyfunc refreshes on its own.
func (j *JWKS) Keyfunc(ctx context.Context, _ bool) (jwt.Keyfunc, error) {
	return j.kf.KeyfuncCtx(ctx), nil
}

// ModeConfig chooses the key source and algorithms of a mode's Verifier.
type ModeConfig struct {
	Mode     Mode
	Issuer   string
	Audience string
	// JWKSURL is the provider's key set (ModeOIDC).
	JWKSURL string
	// Fetch gives pushgate's own keys (ModeKey).
	Fetch FetchKeys
	Now   func() time.Time
}

// oidcAlgorithms are the asymmetric algorithms identity providers sign
// with; HMAC is refused in ModeOIDC, so a token cannot be "signed" with a
// public key as a shared secret.
var oidcAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// ForMode returns the Verifier of cfg.Mode; ctx ends a JWKS cache's
// refreshes.
func ForMode(ctx context.Context, cfg ModeConfig) (*Verifier, error) {
	vc := VerifierConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, Now: cfg.Now}
	switch cfg.Mode {
	case ModeKey:
		if cfg.Fetch == nil {
			return nil, errors.New("auth: mode key needs its signing keys")
		}
		vc.Keys, vc.Algorithms = NewHMACKeys(cfg.Fetch), []string{"HS256"}
	case ModeOIDC:
		jwks, err := NewJWKS(ctx, cfg.JWKSURL)
		if err != nil {
			return nil, err
		}
		vc.Keys, vc.Algorithms = jwks, oidcAlgorithms
	default:
		return nil, fmt.Errorf("auth: mode %q verifies no tokens", cfg.Mode)
	}
	return NewVerifier(vc)
}
