package auth_test

import (
	"fmt"
	"time"

	"github.com/pushgate/pushgate/internal/auth"
)

// A Go backend mints a token for a user with the stack's signing key (the
// SigningKeySecretId secret); the values are the template's defaults.
func ExampleMint() {
	key := []byte("the stack's signing key, 64 characters from Secrets Manager....")
	token, err := auth.Mint(key, auth.Token{
		Issuer: "pushgate", Audience: "pushgate", // AuthIssuer, AuthAudience
		User: "ann", Join: []string{"game-*", "lobby"}, Write: []string{"game-*"},
		TTL: 15 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(token) > 100)
	// Output: true
}
