package local

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestInvokeCommand(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStatus float64
		wantErr    string
	}{
		{"put", []string{"invoke", "ItemsWriteFunction", "-e", "../../events/http-put.json"}, 201, ""},
		{"function after flags", []string{"invoke", "-e", "../../events/http-list.json", "-function", "ItemsReadFunction"}, 200, ""},
		{"ws frame", []string{"invoke", "ConnectionFunction", "-e", "../../events/ws-unknown-action.json"}, 200, ""},
		{"unknown function", []string{"invoke", "NoSuchFunction", "-e", "../../events/http-put.json"}, 0, "no function"},
		{"no event", []string{"invoke", "ItemsReadFunction"}, 0, "-e"},
		{"missing file", []string{"invoke", "ItemsReadFunction", "-e", "nope.json"}, 0, "no such file"},
		{"bad flag", []string{"-no-such-flag"}, 0, "not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			// No -template: it is found in a parent directory.
			err := Main(context.Background(), tc.args, strings.NewReader(""), &out, &errb, os.Getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			var resp struct {
				StatusCode float64 `json:"statusCode"`
			}
			if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.StatusCode != tc.wantStatus {
				t.Errorf("output %s (%v), want status %v", out.String(), err, tc.wantStatus)
			}
		})
	}
}
