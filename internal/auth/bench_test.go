package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushgate/pushgate/internal/auth"
)

// BenchmarkVerify is the authorizer's CPU per token: HS256 with pushgate's
// key (cached), and RS256 from a provider's JWKS (cached by keyfunc).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	b.Run("HS256", func(b *testing.B) {
		v, _ := auth.NewVerifier(auth.VerifierConfig{Keys: auth.StaticKeys(key), Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}})
		tok, _ := auth.Mint(key, auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "ann", Join: []string{"game-*"}, Write: []string{"game-1"}, TTL: time.Hour})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RS256", func(b *testing.B) {
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		url := jwksServer(b, &priv.PublicKey)
		v, err := auth.ForMode(ctx, auth.ModeConfig{Mode: auth.ModeOIDC, Issuer: "https://idp.example", Audience: "c", JWKSURL: url})
		if err != nil {
			b.Fatal(err)
		}
		t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://idp.example", "aud": "c", "sub": "ann", "exp": time.Now().Add(time.Hour).Unix(), "join": "game-*"})
		t.Header["kid"] = "k1"
		tok, _ := t.SignedString(priv)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
