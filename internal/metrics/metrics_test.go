package metrics_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/metrics"
)

func TestEMF(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With(metrics.Dimension, "BroadcastFunction")
	at := time.UnixMilli(1_764_633_600_123)
	log.Info("broadcast", "delivered", 9, "duration_ms", 12,
		metrics.EMF(at, metrics.Metric{Name: "delivered", Unit: metrics.Count}, metrics.Metric{Name: "duration_ms", Unit: metrics.Milliseconds}))
	line := buf.Bytes()
	want := `"_aws":{"Timestamp":1764633600123,"CloudWatchMetrics":[{"Namespace":"pushgate","Dimensions":[["function"]],"Metrics":[{"Name":"delivered","Unit":"Count"},{"Name":"duration_ms","Unit":"Milliseconds"}]}]}`
	if !strings.Contains(string(line), want) {
		t.Fatalf("line %s lacks %s", line, want)
	}
	names, err := metrics.Check(line)
	if err != nil || !slices.Equal(names, []string{"delivered", "duration_ms"}) {
		t.Fatalf("Check = %v, %v", names, err)
	}
}

func TestCheckRefuses(t *testing.T) {
	ok := `"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushgate","Dimensions":[["function"]],"Metrics":[{"Name":"n","Unit":"Count"}]}]}`
	for name, line := range map[string]string{
		"not JSON":          `nope`,
		"no _aws":           `{"function":"F","n":1}`,
		"metric missing":    `{"function":"F",` + ok + `}`,
		"metric not number": `{"function":"F","n":"1",` + ok + `}`,
		"no dimension":      `{"n":1,` + ok + `}`,
		"no timestamp":      `{"function":"F","n":1,"_aws":{"CloudWatchMetrics":[]}}`,
	} {
		if _, err := metrics.Check([]byte(line)); err == nil {
			t.Errorf("%s: Check accepted %s", name, line)
		}
	}
	if _, err := metrics.Check([]byte(`{"function":"F","n":1,` + ok + `}`)); err != nil {
		t.Errorf("a good line: %v", err)
	}
}
