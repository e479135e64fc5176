package loadgen_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/loadgen"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
)

// runToken is what a run needs: its rooms (loadgen-*), to join and write.
func runToken(t *testing.T, s *local.Stack) string {
	t.Helper()
	tok, err := s.Token(local.TokenRequest{User: "loadgen", Join: []string{"loadgen-*"}, Write: []string{"loadgen-*"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLoadgenAgainstTheLocalStack: a short bounded run, 200 clients in 4
// rooms and 20 writes, every write reaching every client of its room once.
func TestLoadgenAgainstTheLocalStack(t *testing.T) {
	s, _ := localtest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := loadgen.Run(ctx, loadgen.Options{
		WebSocketURL: s.WebSocketURL(), APIURL: s.HTTPURL(), Token: runToken(t, s),
		Clients: 200, Rooms: 4, Writes: 20, WriteRate: 50, Wait: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete() || sum.Expected != 20*50 || len(sum.PerClient) != 200 || sum.Latency.Count != sum.Expected {
		t.Fatalf("summary %+v", trimmed(sum))
	}
	for _, c := range sum.PerClient {
		if c.Received != 5 || c.Missed != 0 || c.Latency.Max <= 0 {
			t.Fatalf("client %+v: want the 5 writes of its room", c)
		}
	}
	plot := filepath.Join(t.TempDir(), "latency.svg")
	if err := loadgen.Plot(sum, "test", plot); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(plot); err != nil || !strings.Contains(string(b), "<svg") {
		t.Fatalf("plot: %v", err)
	}
}

// TestLoadgenHoldsAndProbes: after the hold, one more write per room
// reaches every held client.
func TestLoadgenHoldsAndProbes(t *testing.T) {
	s, _ := localtest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := loadgen.Run(ctx, loadgen.Options{
		WebSocketURL: s.WebSocketURL(), APIURL: s.HTTPURL(), Token: runToken(t, s),
		Clients: 10, Rooms: 2, Writes: 2, WriteRate: 100, Hold: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete() || sum.Writes != 4 || sum.Expected != 20 {
		t.Fatalf("summary %+v: want 2 writes and 2 probes, each reaching the 5 clients of its room", trimmed(sum))
	}
}

// TestLoadgenReportsWhoMissed: writes that go to another stack than the
// clients' reach nobody, and the summary names every client each missed.
func TestLoadgenReportsWhoMissed(t *testing.T) {
	// One signing key for both, so one token serves either.
	sameKey := func(o *local.Options) { o.SigningKey = []byte("both stacks sign with this key...") }
	clients, _ := localtest.Start(t, sameKey)
	elsewhere, _ := localtest.Start(t, sameKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := loadgen.Run(ctx, loadgen.Options{
		WebSocketURL: clients.WebSocketURL(), APIURL: elsewhere.HTTPURL(), Token: runToken(t, clients),
		Clients: 6, Rooms: 2, Writes: 4, WriteRate: 100, Wait: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Complete() || sum.Expected != 12 || sum.Delivered != 0 || len(sum.Missed) != 4 {
		t.Fatalf("summary %+v", trimmed(sum))
	}
	for _, m := range sum.Missed {
		if len(m.Clients) != 3 || m.Room != fmt.Sprintf("loadgen-%d", m.Write%2) {
			t.Fatalf("missed %+v: want the 3 clients of its room", m)
		}
	}
}

func trimmed(s loadgen.Summary) loadgen.Summary {
	s.PerClient, s.Samples = nil, nil
	return s
}
