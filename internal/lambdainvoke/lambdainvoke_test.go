package lambdainvoke_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/pushgate/pushgate/internal/lambdainvoke"
	"github.com/pushgate/pushgate/internal/testkit/lambdafake"
)

func client(endpoint string) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// TestInvoke drives the real SDK client against the fake Invoke API: an
// accepted invocation runs with the payload sent, signed and of type
// Event; refusals and unknown functions are errors; an oversized payload
// is refused before it is sent.
func TestInvoke(t *testing.T) {
	var mu sync.Mutex
	var got []string
	fake := lambdafake.Start(t, 1, map[string]lambdafake.Run{
		"fn": func(_ context.Context, payload []byte) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, string(payload))
			return nil
		},
	})
	c := client(fake.URL)
	ctx := context.Background()

	if err := lambdainvoke.New(c, "fn").Invoke(ctx, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	fake.Wait()
	if len(got) != 1 || got[0] != `{"a":1}` {
		t.Fatalf("ran %q", got)
	}

	tests := []struct {
		name     string
		function string
		payload  []byte
		refuse   int
		want     string
	}{
		{"unknown function", "nope", []byte(`{}`), 0, "ResourceNotFoundException"},
		{"refused, every retry too", "fn", []byte(`{}`), 5, "ServiceException"},
		{"too large", "fn", []byte(`"` + strings.Repeat("x", lambdainvoke.MaxPayloadBytes) + `"`), 0, "the limit is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake.Refuse(tc.refuse)
			err := lambdainvoke.New(c, tc.function).Invoke(ctx, tc.payload)
			fake.Refuse(0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	var notFound *types.ResourceNotFoundException
	if err := lambdainvoke.New(c, "nope").Invoke(ctx, []byte(`{}`)); !errors.As(err, &notFound) {
		t.Fatalf("err = %v, want it to match *types.ResourceNotFoundException", err)
	}
	if p := fake.Problems(); len(p) > 0 {
		t.Fatalf("the fake saw: %v", p)
	}
	if s := fake.Stats(); s.Accepted != 1 || s.Ran != 1 {
		t.Fatalf("stats %+v, want the one invocation", s)
	}
}
