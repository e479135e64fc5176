package local

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
		ok   bool
	}{
		{"rate(1 minute)", time.Minute, true},
		{"rate(5 minutes)", 5 * time.Minute, true},
		{"rate(2 hours)", 2 * time.Hour, true},
		{"rate(1 day)", 24 * time.Hour, true},
		{"rate(0 minutes)", 0, false},
		{"rate(1 minutes)", 0, false},
		{"rate(2 minute)", 0, false},
		{"rate(10 days)", 240 * time.Hour, true},
		{"rate(1 second)", 0, false},
		{"cron(0 12 * * ? *)", 0, false},
		{"rate(1minute)", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseRate(tt.expr)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v (ok %v)", tt.expr, got, err, tt.want, tt.ok)
		}
	}
}
