package signingkey_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pushgate/pushgate/internal/signingkey"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }

// TestFetchAcrossARotation runs against Secrets Manager on moto: the
// current key alone, then after put-secret-value the new one first and
// the previous one still.
func TestFetchAcrossARotation(t *testing.T) {
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(testenv.AWSConfig(t, testenv.Moto(t)))
	name := testenv.Unique(t, "key")
	first, second := "first key, thirty-two bytes long", "second key, thirty-two bytes lon"
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(first + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{name, aws.ToString(created.ARN)} {
		keys, err := signingkey.Fetch(sm, id)(ctx)
		if err != nil || !slices.EqualFunc(keys, [][]byte{[]byte(first)}, slices.Equal) {
			t.Fatalf("Fetch(%s) before a rotation = %q, %v; want the key, trimmed", id, keys, err)
		}
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(second)}); err != nil {
		t.Fatal(err)
	}
	keys, err := signingkey.Fetch(sm, name)(ctx)
	if err != nil || !slices.EqualFunc(keys, [][]byte{[]byte(second), []byte(first)}, slices.Equal) {
		t.Fatalf("Fetch after a rotation = %q, %v; want the new key, then the previous", keys, err)
	}
	if _, err := signingkey.Fetch(sm, "no-such-secret")(ctx); err == nil {
		t.Fatal("Fetch of a missing secret succeeded")
	}
}

// failing is a Secrets Manager that cannot be reached.
type failing struct{}

func (failing) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return nil, errors.New("dial tcp: i/o timeout")
}

func TestFetchReportsTheStore(t *testing.T) {
	if _, err := signingkey.Fetch(failing{}, "k")(context.Background()); err == nil {
		t.Fatal("no error")
	}
}
