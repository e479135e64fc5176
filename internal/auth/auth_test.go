package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushgate/pushgate/internal/auth"
)

var (
	now   = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	key   = []byte("0123456789abcdef0123456789abcdef")
	other = []byte("fedcba9876543210fedcba9876543210")
)

func clock() time.Time { return now }

func keyVerifier(t *testing.T, keys ...[]byte) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Keys: auth.StaticKeys(keys...), Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims are a good token's, each case changes what it tests.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "pushgate", "aud": "pushgate", "sub": "ann",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"join": []string{"game-*", "lobby"}, "write": "lobby game-1",
	}
}

func sign(t *testing.T, method jwt.SigningMethod, k any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := claims()
	edit(c)
	return c
}

// unsigned builds a token with "alg": "none".
func unsigned(c jwt.MapClaims) string {
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	body, _ := json.Marshal(c)
	return head + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func TestVerifyOwnKey(t *testing.T) {
	v := keyVerifier(t, key)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name   string
		token  string
		reason string // "" accepts
	}{
		{"good", sign(t, jwt.SigningMethodHS256, key, claims()), ""},
		{"aud as a list holding ours", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["aud"] = []string{"x", "pushgate"} })), ""},
		{"within the clock skew after exp", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), ""},
		{"missing", "", auth.ReasonMissing},
		{"oversized", strings.Repeat("a", auth.MaxTokenBytes+1), auth.ReasonTooLarge},
		{"not a JWT", "hello", auth.ReasonMalformed},
		{"three dots of garbage", "a.b.c", auth.ReasonMalformed},
		{"expired", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), auth.ReasonExpired},
		{"no exp", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "exp") })), auth.ReasonClaims},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), auth.ReasonNotYetValid},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), auth.ReasonNotYetValid},
		{"forged: another key", sign(t, jwt.SigningMethodHS256, other, claims()), auth.ReasonSignature},
		{"forged: body swapped", swapBody(sign(t, jwt.SigningMethodHS256, key, claims()), with(func(c jwt.MapClaims) { c["write"] = "*" })), auth.ReasonSignature},
		{"alg none", unsigned(claims()), auth.ReasonSignature},
		{"HS512 where HS256 is expected", sign(t, jwt.SigningMethodHS512, key, claims()), auth.ReasonSignature},
		{"RS256 where HS256 is expected", sign(t, jwt.SigningMethodRS256, rsaKey, claims()), auth.ReasonSignature},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["iss"] = "evil" })), auth.ReasonIssuer},
		{"no issuer", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "iss") })), auth.ReasonClaims},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["aud"] = "other-app" })), auth.ReasonAudience},
		{"no subject", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "sub") })), auth.ReasonClaims},
		{"a subject too long", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("u", 300) })), auth.ReasonClaims},
		{"a pattern with a space inside", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["join"] = []string{"a b"} })), auth.ReasonClaims},
		{"a pattern with a star inside", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["write"] = []string{"a*b"} })), auth.ReasonClaims},
		{"a pattern that is a dot segment", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["join"] = []string{".."} })), auth.ReasonClaims},
		{"grants of the wrong type", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["join"] = 7 })), auth.ReasonMalformed},
		{"too many patterns", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) {
			many := make([]string, auth.MaxPatterns+1)
			for i := range many {
				many[i] = "r"
			}
			c["join"] = many
		})), auth.ReasonClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantVerdict(t, v, tc.token, tc.reason) })
	}
}

// wantVerdict verifies token with v: accepted when reason is "", else
// refused with a TokenError of that reason.
func wantVerdict(t *testing.T, v *auth.Verifier, token, reason string) {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	if reason == "" {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return
	}
	var te *auth.TokenError
	if !errors.As(err, &te) || te.Reason != reason {
		t.Fatalf("Verify = %+v, %v; want a TokenError %s", p, err, reason)
	}
}

func swapBody(token string, c jwt.MapClaims) string {
	parts := strings.Split(token, ".")
	body, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(body)
	return strings.Join(parts, ".")
}

func TestVerifiedPrincipal(t *testing.T) {
	p, err := keyVerifier(t, key).Verify(context.Background(), sign(t, jwt.SigningMethodHS256, key, claims()))
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "ann" || strings.Join(p.Join, " ") != "game-* lobby" || strings.Join(p.Write, " ") != "lobby game-1" || !p.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("Principal = %+v", p)
	}
	for room, want := range map[string][2]bool{
		"lobby": {true, true}, "game-1": {true, true}, "game-2": {true, false}, "game-": {true, false},
		"games": {false, false}, "xgame-1": {false, false}, "lobby2": {false, false},
	} {
		if got := [2]bool{p.CanJoin(room), p.CanWrite(room)}; got != want {
			t.Errorf("%s: join, write = %v, want %v", room, got, want)
		}
	}
	back, err := auth.FromContext(p.Context())
	if err != nil || back.User != p.User || strings.Join(back.Join, " ") != strings.Join(p.Join, " ") || !back.ExpiresAt.Equal(p.ExpiresAt) {
		t.Fatalf("FromContext(Context()) = %+v, %v; want %+v", back, err, p)
	}
}

func TestMintIsVerified(t *testing.T) {
	tok, err := auth.Mint(key, auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "bob", Join: []string{"*"}, Write: []string{"demo"}, TTL: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := keyVerifier(t, key).Verify(context.Background(), tok)
	if err != nil || p.User != "bob" || !p.CanJoin("x") || !p.CanWrite("demo") || p.CanWrite("x") {
		t.Fatalf("Verify(Mint) = %+v, %v", p, err)
	}
	if _, err := auth.Mint([]byte("short"), auth.Token{User: "bob"}); err == nil {
		t.Fatal("minted with a 5-byte key")
	}
	if _, err := auth.Mint(key, auth.Token{User: "bob", Join: []string{"bad room"}}); err == nil {
		t.Fatal("minted a token with a bad pattern")
	}
}

// TestKeyRotation: the cache verifies with the current and previous keys,
// and fetches again when a token fails with the keys it has.
func TestKeyRotation(t *testing.T) {
	var current atomic.Value
	current.Store([][]byte{key})
	var fetches atomic.Int32
	keys := auth.NewHMACKeys(func(context.Context) ([][]byte, error) {
		fetches.Add(1)
		return current.Load().([][]byte), nil
	})
	keys.MinRefresh = 0
	v, _ := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}, Now: clock})
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, key, claims())); err != nil {
		t.Fatal(err)
	}
	// Rotated: the new key signs, the old one still verifies.
	current.Store([][]byte{other, key})
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, other, claims())); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, key, claims())); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	// Rotated again: once the cache turns over (TTL), the first key no
	// longer verifies.
	keys.TTL = 0
	current.Store([][]byte{[]byte("a third key, 32 bytes long......"), other})
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, key, claims())); err == nil {
		t.Fatal("a key two rotations old still verifies")
	}
	if n := fetches.Load(); n < 2 {
		t.Fatalf("%d fetches; a token of an unseen key should fetch again", n)
	}
}

func TestKeysUnavailable(t *testing.T) {
	fail := true
	keys := auth.NewHMACKeys(func(context.Context) ([][]byte, error) {
		if fail {
			return nil, errors.New("secrets manager is down")
		}
		return [][]byte{key}, nil
	})
	v, _ := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}, Now: clock})
	var te *auth.TokenError
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, key, claims())); !errors.As(err, &te) || te.Reason != auth.ReasonKeys {
		t.Fatalf("Verify with no keys = %v, want %s", err, auth.ReasonKeys)
	}
	fail = false
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, key, claims())); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
	short := auth.StaticKeys([]byte("too short"))
	v, _ = auth.NewVerifier(auth.VerifierConfig{Keys: short, Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}, Now: clock})
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, key, claims())); !errors.As(err, &te) || te.Reason != auth.ReasonKeys {
		t.Fatalf("Verify with a short key = %v, want %s", err, auth.ReasonKeys)
	}
}

// jwksServer serves a provider's key set on 127.0.0.1.
func jwksServer(t testing.TB, keys ...any) string {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for i, k := range keys {
		kid := "k" + string(rune('1'+i))
		switch pub := k.(type) {
		case *rsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())})
		case *ecdsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
				"x": b64(pad32(pub.X.Bytes())), "y": b64(pad32(pub.Y.Bytes()))})
		}
	}
	body, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad32(b []byte) []byte {
	return append(make([]byte, 32-len(b)), b...)
}

func TestVerifyOIDC(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	url := jwksServer(t, &rsaKey.PublicKey, &ecKey.PublicKey)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.ForMode(ctx, auth.ModeConfig{Mode: auth.ModeOIDC, Issuer: "https://idp.example", Audience: "client-1", JWKSURL: url, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	oidc := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		return with(func(c jwt.MapClaims) {
			c["iss"], c["aud"] = "https://idp.example", "client-1"
			if edit != nil {
				edit(c)
			}
		})
	}
	withKid := func(m jwt.SigningMethod, k any, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"RS256 from the provider", withKid(jwt.SigningMethodRS256, rsaKey, "k1", oidc(nil)), ""},
		{"ES256 from the provider", withKid(jwt.SigningMethodES256, ecKey, "k2", oidc(nil)), ""},
		{"RS256 without a kid", sign(t, jwt.SigningMethodRS256, rsaKey, oidc(nil)), ""},
		{"signed by a stranger under the provider's kid", withKid(jwt.SigningMethodRS256, stranger, "k1", oidc(nil)), auth.ReasonSignature},
		{"an unknown kid", withKid(jwt.SigningMethodRS256, stranger, "k9", oidc(nil)), auth.ReasonSignature},
		{"HS256 keyed with the public modulus", withKid(jwt.SigningMethodHS256, rsaKey.PublicKey.N.Bytes(), "k1", oidc(nil)), auth.ReasonSignature},
		{"alg none", unsigned(oidc(nil)), auth.ReasonSignature},
		{"the provider's token for another app", withKid(jwt.SigningMethodRS256, rsaKey, "k1", oidc(func(c jwt.MapClaims) { c["aud"] = "client-2" })), auth.ReasonAudience},
		{"another issuer", withKid(jwt.SigningMethodRS256, rsaKey, "k1", oidc(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), auth.ReasonIssuer},
		{"expired", withKid(jwt.SigningMethodRS256, rsaKey, "k1", oidc(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), auth.ReasonExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantVerdict(t, v, tc.token, tc.reason) })
	}
}

func TestGate(t *testing.T) {
	p := auth.Principal{User: "u", Join: []string{"a"}, ExpiresAt: now.Add(time.Minute)}
	tests := []struct {
		name    string
		gate    auth.Gate
		context map[string]any
		at      time.Time
		ok      bool
	}{
		{"open gate, no context", auth.Gate{}, nil, now, true},
		{"required, no context", auth.Gate{Required: true}, nil, now, false},
		{"required, a context", auth.Gate{Required: true}, p.Context(), now, true},
		{"required, no user", auth.Gate{Required: true}, map[string]any{"join": "a"}, now, false},
		{"required, expired", auth.Gate{Required: true}, p.Context(), now.Add(time.Hour), false},
		{"required, exp not a number", auth.Gate{Required: true}, map[string]any{"user": "u", "exp": "x"}, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.gate.Fresh(tc.context, tc.at)
			if (err == nil) != tc.ok {
				t.Fatalf("Fresh = %v, want ok %v", err, tc.ok)
			}
		})
	}
	if got := auth.Anonymous(); !got.CanJoin("x") || !got.CanWrite("y") {
		t.Fatalf("Anonymous() = %+v", got)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"key", "oidc", "none"} {
		if m, err := auth.ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "KEY", "off", "jwt"} {
		if _, err := auth.ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) accepted", s)
		}
	}
}
