package testenv

import (
	"context"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(MotoMain(m)) }

func TestMotoAnswers(t *testing.T) {
	url := Moto(t)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("Moto() = %q, want a 127.0.0.1 URL", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ping(ctx, url); err != nil {
		t.Fatalf("ping %s: %v", url, err)
	}
}

func TestStartMotoStopsWithTest(t *testing.T) {
	var url string
	t.Run("own", func(t *testing.T) {
		url = StartMoto(t)
		if url == os.Getenv(EnvMotoEndpoint) {
			t.Fatalf("StartMoto reused the shared moto %s", url)
		}
	})
	if url == "" {
		t.Skip("moto unavailable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := ping(ctx, url); err == nil {
		t.Fatalf("moto at %s still answers after its test ended", url)
	}
}

func TestUnique(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	tests := []struct {
		name, prefix, wantPrefix string
	}{
		{"plain", "conns", "conns-TestUnique-plain-"},
		{"with spaces/and#odd.chars", "items", "items-TestUnique-with_spaces-and-odd-chars-"},
		{strings.Repeat("x", 300), "t", "t-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := Unique(t, tc.prefix), Unique(t, tc.prefix)
			if a == b {
				t.Fatalf("Unique returned %q twice", a)
			}
			if !valid.MatchString(a) || len(a) > 255 {
				t.Fatalf("Unique = %q: not a valid table/topic name", a)
			}
			if !strings.HasPrefix(a, tc.wantPrefix) {
				t.Fatalf("Unique = %q, want prefix %q", a, tc.wantPrefix)
			}
		})
	}
}

func TestFreeAddrIsBindable(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

func TestAWSConfig(t *testing.T) {
	cfg := AWSConfig(t, "http://127.0.0.1:1")
	if cfg.Region != "us-east-1" || cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != "http://127.0.0.1:1" {
		t.Fatalf("AWSConfig = region %q endpoint %v", cfg.Region, cfg.BaseEndpoint)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "test" || creds.SecretAccessKey != "test" {
		t.Fatalf("credentials = %+v, %v", creds, err)
	}
}
