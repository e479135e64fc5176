// Package testenv gives tests the services they run against: a moto_server
// standing in for AWS, an aws.Config pointed at it, unique resource names and
// free local ports.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/dynamo"
)

// EnvCI marks a CI run, where a missing tool or service fails a test
// instead of skipping it.
const EnvCI = "CI"

// InCI reports whether the run is a CI run (CI=true).
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv(EnvCI))
	return ci
}

// Unavailable ends a test whose tool or service is missing: a failure under
// CI, where the environment is supposed to be complete, a skip elsewhere.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Required returns the path of tool, ending the test (see Unavailable) when
// it is not on PATH.
func Required(t testing.TB, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		Unavailable(t, "testenv: %s is required: %v", tool, err)
	}
	return path
}

// AWSConfig returns a configuration for a local AWS stand-in at endpoint:
// fixed region and dummy credentials, so nothing in the developer's
// environment or shared config files leaks into tests.
func AWSConfig(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		// A fresh connection per request: a kept-alive one that moto's
		// development server drops makes the SDK retry a request moto may
		// already have carried out, and tests assert exact versions.
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DisableKeepAlives = true
		}),
	}
}

// maxNamePart keeps generated names well inside DynamoDB's and SNS's limits
// (255 and 256 characters).
const maxNamePart = 80

var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Unique returns a name for a table, topic or queue that no other test (in
// this or a concurrent test binary sharing the same moto) uses:
// prefix-<test name>-<random>. Only A-Z a-z 0-9 _ - are kept, which every
// AWS resource name we create accepts.
func Unique(t testing.TB, prefix string) string {
	t.Helper()
	name := unsafeNameChars.ReplaceAllString(t.Name(), "-")
	if len(name) > maxNamePart {
		name = name[len(name)-maxNamePart:]
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random name suffix: %v", err)
	}
	parts := unsafeNameChars.ReplaceAllString(prefix, "-")
	if parts != "" {
		parts += "-"
	}
	return parts + name + "-" + hex.EncodeToString(b[:])
}

// FreeAddr returns a 127.0.0.1:port address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := LoopbackAddr()
	if err != nil {
		t.Fatalf("testenv: free address: %v", err)
	}
	return addr
}

// FreePort returns a 127.0.0.1 port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return n
}

// LoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago, for servers a test starts that take an address rather than a
// listener.
func LoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// Tables creates a fresh connections/items table pair through client and
// deletes it when the test ends.
func Tables(t testing.TB, client *dynamodb.Client) (connections, items string) {
	t.Helper()
	connections, items = Unique(t, "conns"), Unique(t, "items")
	if err := dynamo.CreateTables(context.Background(), client, connections, items); err != nil {
		t.Fatalf("create tables: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, name := range []string{connections, items} {
			_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
			// moto's development server drops kept-alive connections now
			// and then; the SDK then retries a delete that had succeeded.
			var nf *types.ResourceNotFoundException
			if err != nil && !errors.As(err, &nf) {
				t.Errorf("delete table %s: %v", name, err)
			}
		}
	})
	return connections, items
}
