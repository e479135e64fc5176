// Package signingkey reads pushgate's token signing key from AWS Secrets
// Manager: the current version, and the previous one while a rotation
// settles.
package signingkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/pushgate/pushgate/internal/auth"
)

// API is the part of the Secrets Manager client used.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Secrets Manager's staging labels: put-secret-value moves AWSCURRENT to
// the new value and AWSPREVIOUS to the one before.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
)

// Fetch returns the keys of secret (name or ARN): AWSCURRENT, then
// AWSPREVIOUS when there is one, so tokens signed just before a rotation
// still verify. The secret string (or binary) is the key itself.
func Fetch(api API, secret string) auth.FetchKeys {
	return func(ctx context.Context) ([][]byte, error) {
		var keys [][]byte
		for _, stage := range []string{StageCurrent, StagePrevious} {
			out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &secret, VersionStage: &stage})
			var nf *types.ResourceNotFoundException
			if stage == StagePrevious && errors.As(err, &nf) {
				break // never rotated
			}
			if err != nil {
				return nil, fmt.Errorf("secret %s (%s): %w", secret, stage, err)
			}
			key := out.SecretBinary
			if out.SecretString != nil {
				key = bytes.TrimSpace([]byte(*out.SecretString))
			}
			keys = append(keys, key)
		}
		return keys, nil
	}
}
