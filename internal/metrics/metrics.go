// Package metrics turns a function's summary log line into CloudWatch
// metrics: the Embedded Metric Format's _aws block names which of the
// line's fields CloudWatch Logs extracts, so the one line per invocation
// is both the log and the metrics.
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Namespace holds every pushgate metric.
const Namespace = "pushgate"

// Dimension is the summary line's field the metrics are split by: the
// function's logical id, which config.Setup puts on every line.
const Dimension = "function"

// Units CloudWatch knows.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
	PerSecond    = "Count/Second"
)

// Metric names one numeric field of the line and its unit.
type Metric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// EMF is the _aws attribute declaring ms as metrics of the line it is
// logged with; each metric's value is the line's field of that name.
func EMF(now time.Time, ms ...Metric) slog.Attr {
	type directive struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []Metric   `json:"Metrics"`
	}
	return slog.Any("_aws", struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}{now.UnixMilli(), []directive{{Namespace, [][]string{{Dimension}}, ms}}})
}

// Check reports why a JSON log line would not give CloudWatch its metrics:
// no _aws block, a malformed one, or a declared metric or dimension whose
// field is missing or not a number (dimensions: not a string). It returns
// the metric names declared.
func Check(line []byte) ([]string, error) {
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		return nil, fmt.Errorf("metrics: the line is not JSON: %w", err)
	}
	raw, ok := doc["_aws"].(map[string]any)
	if !ok {
		return nil, errors.New("metrics: no _aws object")
	}
	if _, ok := raw["Timestamp"].(float64); !ok {
		return nil, errors.New("metrics: _aws.Timestamp is not a number")
	}
	directives, ok := raw["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return nil, errors.New("metrics: _aws.CloudWatchMetrics is not a non-empty list")
	}
	var names []string
	for _, d := range directives {
		dir, _ := d.(map[string]any)
		if ns, _ := dir["Namespace"].(string); ns == "" {
			return nil, errors.New("metrics: a directive has no Namespace")
		}
		dims, _ := dir["Dimensions"].([]any)
		for _, set := range dims {
			keys, _ := set.([]any)
			for _, k := range keys {
				name, _ := k.(string)
				if _, ok := doc[name].(string); !ok {
					return nil, fmt.Errorf("metrics: dimension %q is not a string field of the line", name)
				}
			}
		}
		ms, _ := dir["Metrics"].([]any)
		if len(ms) == 0 {
			return nil, errors.New("metrics: a directive declares no metrics")
		}
		for _, m := range ms {
			def, _ := m.(map[string]any)
			name, _ := def["Name"].(string)
			if _, ok := doc[name].(float64); !ok {
				return nil, fmt.Errorf("metrics: metric %q is not a number field of the line", name)
			}
			names = append(names, name)
		}
	}
	return names, nil
}
