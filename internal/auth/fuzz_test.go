package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushgate/pushgate/internal/auth"
)

// FuzzVerify: no input makes the verifier panic, every refusal is a
// *TokenError, and whatever it accepts names a user and holds only valid
// room patterns. Seeds include a good token, so the fuzzer mutates real
// ones.
func FuzzVerify(f *testing.F) {
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims()).SignedString(key)
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + ".", good[:len(good)-2]} {
		f.Add(s)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: auth.StaticKeys(key), Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"},
		Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if err != nil {
			var te *auth.TokenError
			if !errors.As(err, &te) || te.Reason == "" {
				t.Fatalf("Verify(%q) = %v, not a TokenError", token, err)
			}
			return
		}
		if p.User == "" || !utf8.ValidString(p.User) || len(p.User) > auth.MaxUserBytes {
			t.Fatalf("accepted user %q", p.User)
		}
		for _, pat := range append(append([]string{}, p.Join...), p.Write...) {
			if auth.CheckPattern(pat) != nil {
				t.Fatalf("accepted pattern %q", pat)
			}
		}
	})
}

// FuzzFromContext: an authorizer context of any shape gives a Principal or
// an error, never a panic, and a Principal's Context reads back as itself.
func FuzzFromContext(f *testing.F) {
	f.Add("u", "a b*", "*", "4102444800")
	f.Add("", "", "", "")
	f.Add("u", "  ", "x", "-1")
	f.Fuzz(func(t *testing.T, user, join, write, exp string) {
		p, err := auth.FromContext(map[string]any{"user": user, "join": join, "write": write, "exp": exp})
		if err != nil {
			return
		}
		back, err := auth.FromContext(p.Context())
		if err != nil || back.User != p.User || len(back.Join) != len(p.Join) || !back.ExpiresAt.Equal(p.ExpiresAt) {
			t.Fatalf("Context round trip: %+v → %+v, %v", p, back, err)
		}
	})
}
