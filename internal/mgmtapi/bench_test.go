package mgmtapi_test

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
)

// startSink runs cmd/mgmtsink in a process of its own, so the benchmark's
// CPU is the client's alone, and returns its base URL.
func startSink(b *testing.B, args ...string) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "mgmtsink")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mgmtsink").CombinedOutput(); err != nil {
		b.Fatalf("build mgmtsink: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	_, rest, ok := strings.Cut(line, "listening on ")
	if err != nil || !ok {
		b.Fatalf("mgmtsink said %q: %v", line, err)
	}
	return strings.Fields(rest)[0]
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPost measures one PostToConnection's CPU in this process (the
// sink runs in another): signing, the HTTP round trip on a kept-alive
// connection, the answer. 64 posts are in flight at a time, as in a
// broadcast; the frame is a 400-byte event.
//
//	go test -run '^$' -bench Post -benchtime 20000x ./internal/mgmtapi/
func BenchmarkPost(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("CPU is read with getrusage")
	}
	base := startSink(b)
	frame := []byte(`{"action":"event","eventId":"0e7c4a2b-5f13-4d8e-9a6b-3c2d1e0f9a8b","type":"item.put","room":"demo","id":"note-1","version":2,"time":"2026-05-01T12:00:05.123Z","data":{"title":"Buy milk","done":true,"tags":["a","b","c"],"note":"` + strings.Repeat("x", 180) + `"}}`)
	clients := []struct {
		name string
		new  func() domain.Poster
	}{
		{"thin", func() domain.Poster { return newClient(b, base+"/prod", 64) }},
		{"sdk", func() domain.Poster { return newSDKPost(testConfig(), base+"/prod") }},
	}
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			p := c.new()
			ids := make(chan string, 64)
			var wg sync.WaitGroup
			var failed error
			var once sync.Once
			for range 64 {
				wg.Go(func() {
					for id := range ids {
						if err := p.Post(context.Background(), id, frame); err != nil {
							once.Do(func() { failed = err })
						}
					}
				})
			}
			names := make([]string, b.N)
			for i := range names {
				names[i] = fmt.Sprintf("conn-%010d=", i)
			}
			cpu := processCPU()
			b.ResetTimer()
			for _, id := range names {
				ids <- id
			}
			close(ids)
			wg.Wait()
			b.StopTimer()
			if failed != nil {
				b.Fatal(failed)
			}
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/post")
		})
	}
}
