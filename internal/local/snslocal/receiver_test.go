package snslocal_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(t.Output(), nil))
}

func notificationBody(t *testing.T, typ string, extra map[string]any) string {
	t.Helper()
	m := map[string]any{
		"Type":      typ,
		"MessageId": "m-1",
		"TopicArn":  "arn:aws:sns:us-east-1:123456789012:events",
		"Message":   `{"eventId":"ev-1","type":"item.put","room":"lobby","id":"i","version":1,"time":"2030-01-01T00:00:00Z"}`,
		"Timestamp": "2030-01-01T00:00:00.000Z",
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReceiver(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		body       string
		deliverErr error
		wantStatus int
		wantEvents int
	}{
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed, 0},
		{"PUT", http.MethodPut, notificationBody(t, "Notification", nil), nil, http.StatusMethodNotAllowed, 0},
		{"junk", http.MethodPost, "not json at all", nil, http.StatusBadRequest, 0},
		{"empty body", http.MethodPost, "", nil, http.StatusBadRequest, 0},
		{"JSON of the wrong shape", http.MethodPost, `["Notification"]`, nil, http.StatusBadRequest, 0},
		{"unknown type", http.MethodPost, notificationBody(t, "Surprise", nil), nil, http.StatusBadRequest, 0},
		{"no type", http.MethodPost, `{"Message":"x"}`, nil, http.StatusBadRequest, 0},
		{"oversized", http.MethodPost, notificationBody(t, "Notification", map[string]any{"Subject": strings.Repeat("x", snslocal.MaxNotificationBytes)}), nil, http.StatusBadRequest, 0},
		{"subscription confirmation", http.MethodPost, notificationBody(t, "SubscriptionConfirmation", map[string]any{"SubscribeURL": "https://example.invalid/confirm"}), nil, http.StatusOK, 0},
		{"unsubscribe confirmation", http.MethodPost, notificationBody(t, "UnsubscribeConfirmation", nil), nil, http.StatusOK, 0},
		{"notification", http.MethodPost, notificationBody(t, "Notification", nil), nil, http.StatusOK, 1},
		{"notification, deliver fails", http.MethodPost, notificationBody(t, "Notification", nil), errors.New("boom"), http.StatusInternalServerError, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &testenv.SNSInbox{Err: tc.deliverErr}
			h := snslocal.Receiver("arn:sub", rec.Deliver, testLogger(t))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, "/sns", strings.NewReader(tc.body)))
			if w.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d (%s)", w.Code, tc.wantStatus, w.Body)
			}
			if got := rec.Events(); len(got) != tc.wantEvents {
				t.Errorf("delivered %d events, want %d", len(got), tc.wantEvents)
			}
		})
	}
}

func TestReceiverBuildsLambdaRecord(t *testing.T) {
	rec := &testenv.SNSInbox{}
	h := snslocal.Receiver("arn:sub", rec.Deliver, testLogger(t))
	body := notificationBody(t, "Notification", map[string]any{
		"Subject":          "hello",
		"SignatureVersion": "2",
		"Signature":        "c2ln",
		"SigningCertURL":   "https://sns.example.invalid/cert.pem",
		"UnsubscribeURL":   "https://sns.example.invalid/unsub",
		"MessageAttributes": map[string]any{
			"room": map[string]any{"Type": "String", "Value": "lobby"},
		},
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/sns", strings.NewReader(body)))
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d (%s)", w.Code, w.Body)
	}
	got := rec.Events()
	if len(got) != 1 || len(got[0].Records) != 1 {
		t.Fatalf("delivered %+v", got)
	}
	r := got[0].Records[0]
	want := events.SNSEventRecord{
		EventVersion:         "1.0",
		EventSubscriptionArn: "arn:sub",
		EventSource:          "aws:sns",
		SNS: events.SNSEntity{
			Signature:         "c2ln",
			MessageID:         "m-1",
			Type:              "Notification",
			TopicArn:          "arn:aws:sns:us-east-1:123456789012:events",
			MessageAttributes: map[string]any{"room": map[string]any{"Type": "String", "Value": "lobby"}},
			SignatureVersion:  "2",
			Timestamp:         time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			SigningCertURL:    "https://sns.example.invalid/cert.pem",
			Message:           `{"eventId":"ev-1","type":"item.put","room":"lobby","id":"i","version":1,"time":"2030-01-01T00:00:00Z"}`,
			UnsubscribeURL:    "https://sns.example.invalid/unsub",
			Subject:           "hello",
		},
	}
	if !r.SNS.Timestamp.Equal(want.SNS.Timestamp) {
		t.Errorf("timestamp = %v", r.SNS.Timestamp)
	}
	r.SNS.Timestamp = want.SNS.Timestamp
	if !reflect.DeepEqual(r, want) {
		t.Errorf("record =\n %+v\nwant\n %+v", r, want)
	}
}
