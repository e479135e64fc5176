package lambdatest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/testkit/lambdafake"
	"github.com/pushgate/pushgate/internal/testkit/sink"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// Environment of BenchmarkBroadcast.
const (
	// EnvBenchDynamoDB is the DynamoDB stand-in to load the room into: a
	// dynalite (npx dynalite --port P --host 127.0.0.1) or a moto.
	EnvBenchDynamoDB = "PUSHGATE_BENCH_DYNAMODB"
	// EnvBenchSizes lists the room sizes, comma-separated (default 10000,30000).
	EnvBenchSizes = "PUSHGATE_BENCH_SIZES"
	// EnvBenchSink holds cmd/mgmtsink's flags (default -latency 20ms).
	EnvBenchSink = "PUSHGATE_BENCH_SINK"
	// EnvBenchShareSize overrides FANOUT_SHARE_SIZE (default the
	// template's 30000).
	EnvBenchShareSize = "PUSHGATE_BENCH_SHARE_SIZE"
	// EnvBenchTimeout is the function timeout in seconds (default the
	// template's 60): shorter shows shares handing on what they cannot
	// post in time.
	EnvBenchTimeout = "PUSHGATE_BENCH_TIMEOUT"
	// benchShareWorkers is how many emulators run shares at once, as
	// Lambda runs asynchronous invocations side by side.
	benchShareWorkers = 8
)

// BenchmarkBroadcast runs the built BroadcastFunction bootstrap under
// aws-lambda-rie, with the template's defaults, against a room of N
// members in a DynamoDB stand-in and cmd/mgmtsink as the Management API,
// and times one broadcast: from the invocation until it and every share it
// handed off (to a fake Lambda Invoke API running them in 8 more emulators
// of the bootstrap) are done. It reports those seconds, the posts
// delivered, throttled and gone, the shares, and the highest peak RSS of
// any one bootstrap.
//
//	PUSHGATE_BENCH_DYNAMODB=http://127.0.0.1:PORT go test -run '^$' -bench Broadcast -benchtime 1x -timeout 60m ./internal/testkit/lambdatest/
func BenchmarkBroadcast(b *testing.B) {
	store := os.Getenv(EnvBenchDynamoDB)
	if store == "" {
		b.Skipf("set %s to a DynamoDB stand-in (dynalite or moto)", EnvBenchDynamoDB)
	}
	if runtime.GOOS != "linux" {
		b.Skip("the functions are linux binaries")
	}
	sizes := []int{10_000, 30_000}
	if v := os.Getenv(EnvBenchSizes); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("%s: %v", EnvBenchSizes, err)
			}
			sizes = append(sizes, n)
		}
	}
	sinkArgs := strings.Fields(os.Getenv(EnvBenchSink))
	if len(sinkArgs) == 0 {
		sinkArgs = []string{"-latency", "20ms"}
	}
	root := benchRoot(b)
	dir := b.TempDir()
	bootstrap := limitFiles(b, Build(b, root, dir, runtime.GOARCH, Functions()[1])[config.BroadcastFunction], lambdaFileLimit)
	rie := BuildRIE(b, root, dir)
	sinkURL := startSink(b, root, dir, sinkArgs...)
	cfg := testenv.AWSConfig(b, store)
	client := dynamodb.NewFromConfig(cfg)

	shareSize := "30000" // the template's default
	if v := os.Getenv(EnvBenchShareSize); v != "" {
		shareSize = v
	}
	timeout := "60"
	if v := os.Getenv(EnvBenchTimeout); v != "" {
		timeout = v
	}
	const target = "bench-BroadcastFunction"

	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			table := fmt.Sprintf("bench-conns-%d-%d", n, time.Now().UnixNano())
			createTable(b, client, table)
			room := "bench"
			loadRoom(b, client, table, room, n)
			workers := make(chan *RIE, benchShareWorkers)
			fake := lambdafake.Start(b, benchShareWorkers, map[string]lambdafake.Run{
				target: func(ctx context.Context, payload []byte) error {
					w := <-workers
					defer func() { workers <- w }()
					status, body, err := w.Call(ctx, payload)
					if err == nil && (status != http.StatusOK || strings.TrimSpace(string(body)) != "null") {
						err = fmt.Errorf("share answered %d %s", status, body)
					}
					return err
				},
			})
			env := BaseEnv(store, b.TempDir())
			env["AWS_LAMBDA_FUNCTION_NAME"] = target
			env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = timeout
			env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "512"
			env["AWS_ENDPOINT_URL_LAMBDA"] = fake.URL
			env[config.EnvConnectionsTable] = table
			env[config.EnvManagementEndpoint] = sinkURL + "/prod"
			// The template's defaults.
			env[config.EnvFanoutWorkers] = "500"
			env[config.EnvFanoutAttempts] = "3"
			env[config.EnvFanoutFunction] = target
			env[config.EnvFanoutShareSize] = shareSize
			env[config.EnvFanoutRate] = "10000"
			env[config.EnvTopicARN] = benchTopic
			r := StartRIE(b, rie, bootstrap, env)
			all := []*RIE{r}
			for range benchShareWorkers {
				w := StartRIE(b, rie, bootstrap, env)
				all = append(all, w)
				workers <- w
			}
			before := sinkStats(b, sinkURL)
			for b.Loop() {
				// A new message each time: the broadcaster drops a replay.
				event := snsEvent(b, room)
				start := time.Now()
				status, body := r.Invoke(b, event)
				listed := time.Since(start)
				if status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
					b.Fatalf("invocation: %d %s\n%s", status, body, r.Output())
				}
				fake.Wait()
				elapsed := time.Since(start)
				after := sinkStats(b, sinkURL)
				b.ReportMetric(elapsed.Seconds(), "s/broadcast")
				b.ReportMetric(listed.Seconds(), "s/first-invocation")
				b.ReportMetric(float64(after.Delivered-before.Delivered), "delivered")
				b.ReportMetric(float64(after.Throttled-before.Throttled), "throttled")
				b.ReportMetric(float64(after.Gone-before.Gone), "gone")
				b.ReportMetric(float64(fake.Stats().Ran), "shares")
				var peak int64
				for _, x := range all {
					peak = max(peak, peakRSSKB(x))
				}
				b.ReportMetric(float64(peak)/1024, "peak-rss-MB")
				b.ReportMetric(longestInvocation(all).Seconds(), "s/longest-invocation")
				before = after
			}
			if p := fake.Problems(); len(p) > 0 {
				b.Errorf("shares: %v", p)
			}
			b.Logf("table %s; function log: %s", table, lastLine(r.Output(), `"msg":"broadcast"`))
			for _, w := range all[1:] {
				for line := range strings.Lines(w.Output()) {
					if strings.Contains(line, `"msg":"broadcast share"`) {
						b.Logf("share: %s", strings.TrimSpace(line))
					}
				}
			}
		})
	}
}

// lambdaFileLimit is Lambda's limit on a function's open files.
const lambdaFileLimit = 1024

// limitFiles returns a script that runs bootstrap with at most n open
// files, as Lambda does, soft and hard (Go raises a soft limit to the
// hard one). The Management API stand-in and the rest of the benchmark
// keep the machine's limit: API Gateway has no such limit.
func limitFiles(b *testing.B, bootstrap string, n int) string {
	b.Helper()
	wrapper := bootstrap + "-limited"
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 1\nexec %q \"$@\"\n", n, bootstrap)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return wrapper
}

func benchRoot(b *testing.B) string {
	b.Helper()
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "..", "..", "..")
}

// startSink runs cmd/mgmtsink and returns its base URL.
func startSink(b *testing.B, root, dir string, args ...string) string {
	b.Helper()
	bin := filepath.Join(dir, "mgmtsink")
	run(b, root, testenv.Required(b, "go"), []string{"build", "-o", bin, "./cmd/mgmtsink"})
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	_, rest, ok := strings.Cut(line, "listening on ")
	if err != nil || !ok {
		b.Fatalf("mgmtsink said %q: %v", line, err)
	}
	return strings.Fields(rest)[0]
}

func sinkStats(b *testing.B, base string) sink.Stats {
	b.Helper()
	resp, err := http.Get(base + sink.StatsPath)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var st sink.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.Fatal(err)
	}
	return st
}

// createTable makes a connections table without TTL (dynalite has none).
func createTable(b *testing.B, client *dynamodb.Client, table string) {
	b.Helper()
	in := dynamo.TableInputs(table, "unused")[0]
	if _, err := client.CreateTable(b.Context(), in); err != nil {
		b.Fatal(err)
	}
	for {
		out, err := client.DescribeTable(b.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadRoom writes n memberships of room, 25 to a batch, 8 batches at once.
func loadRoom(b *testing.B, client *dynamodb.Client, table, room string, n int) {
	b.Helper()
	expires := time.Now().Add(time.Hour)
	batches := make(chan []types.WriteRequest)
	var wg sync.WaitGroup
	var failed error
	var once sync.Once
	for range 8 {
		wg.Go(func() {
			for batch := range batches {
				for len(batch) > 0 {
					out, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
						RequestItems: map[string][]types.WriteRequest{table: batch}})
					if err != nil {
						once.Do(func() { failed = err })
						break
					}
					batch = out.UnprocessedItems[table]
				}
			}
		})
	}
	var batch []types.WriteRequest
	for i := range n {
		id := fmt.Sprintf("bench%010d=", i)
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamo.MembershipItem(room, id, expires)}})
		if len(batch) == 25 || i == n-1 {
			batches <- slices.Clone(batch)
			batch = batch[:0]
		}
	}
	close(batches)
	wg.Wait()
	if failed != nil {
		b.Fatalf("loading the room: %v", failed)
	}
}

// benchTopic is the topic of the benchmark's records, and the broadcaster's.
const benchTopic = "arn:aws:sns:us-east-1:123456789012:bench"

func snsEvent(b *testing.B, room string) []byte {
	b.Helper()
	e := domain.Event{EventID: domain.NewID(), Type: domain.EventItemPut, Room: room, ID: "note-1", Version: 1,
		Data: json.RawMessage(`{"title":"Buy milk","done":false}`), Time: time.Now()}
	body, err := e.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	rec := snslocal.Record(benchTopic, domain.NewID(), string(body), time.Now(), map[string]any{
		snspub.AttrRoom: map[string]any{"Type": "String", "Value": room},
	})
	raw, err := json.Marshal(events.SNSEvent{Records: []events.SNSEventRecord{rec}})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// peakRSSKB is the highest resident set of the emulator's bootstrap child.
func peakRSSKB(r *RIE) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", r.cmd.Process.Pid))
	var pids []string
	for _, t := range tasks {
		children, _ := os.ReadFile(t)
		pids = append(pids, strings.Fields(string(children))...)
	}
	for _, pid := range pids {
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if !strings.HasPrefix(strings.TrimSpace(string(comm)), "bootstrap") {
			continue
		}
		status, _ := os.ReadFile("/proc/" + pid + "/status")
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// longestInvocation is the longest duration_ms of any summary line.
func longestInvocation(rs []*RIE) time.Duration {
	var longest time.Duration
	for _, r := range rs {
		for line := range strings.Lines(r.Output()) {
			var l struct {
				Msg        string `json:"msg"`
				DurationMS int64  `json:"duration_ms"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Msg, "broadcast") {
				longest = max(longest, time.Duration(l.DurationMS)*time.Millisecond)
			}
		}
	}
	return longest
}

func lastLine(out, containing string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], containing) {
			return lines[i]
		}
	}
	return ""
}
