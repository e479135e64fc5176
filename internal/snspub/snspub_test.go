package snspub_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(t.Output(), nil))
}

// statusLog keeps the status of every response the receiver wrote.
type statusLog struct {
	mu       sync.Mutex
	statuses []int
}

func (l *statusLog) add(code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses = append(l.statuses, code)
}

func (l *statusLog) all() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.statuses...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// subscription is a moto topic with a snspub.Receiver subscribed over HTTP.
type subscription struct {
	client   *sns.Client
	topicARN string
	subARN   string
	rec      *testenv.SNSInbox
	statuses *statusLog
	server   *httptest.Server
}

func subscribe(t *testing.T, deliverErr error) *subscription {
	t.Helper()
	ctx := t.Context()
	client := sns.NewFromConfig(testenv.AWSConfig(t, testenv.Moto(t)))
	topic, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(testenv.Unique(t, "events"))})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: topic.TopicArn}); err != nil {
			t.Errorf("DeleteTopic: %v", err)
		}
	})

	s := &subscription{client: client, topicARN: aws.ToString(topic.TopicArn), rec: &testenv.SNSInbox{Err: deliverErr}, statuses: &statusLog{}}
	// The Receiver needs the subscription ARN, which exists only once the
	// endpoint's URL has been subscribed.
	var receiver atomic.Pointer[http.Handler]
	s.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := receiver.Load()
		if h == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		(*h).ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.statuses.add(sw.status)
	}))
	t.Cleanup(s.server.Close)

	sub, err := client.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              topic.TopicArn,
		Protocol:              aws.String("http"),
		Endpoint:              aws.String(s.server.URL + "/sns"),
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	s.subARN = aws.ToString(sub.SubscriptionArn)
	h := snslocal.Receiver(s.subARN, s.rec.Deliver, testLogger(t))
	receiver.Store(&h)
	return s
}

func sampleEvent() domain.Event {
	return domain.Event{
		EventID: "ev-1",
		Type:    domain.EventItemPut,
		Room:    "lobby",
		ID:      "item-1",
		Version: 3,
		Data:    json.RawMessage(`{ "title" : "<b>caf\u00e9 & more</b>", "n" : [1, 2.5], "nested": {"ok": true} }`),
		Time:    time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC),
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestPublishReachesHTTPSubscriber(t *testing.T) {
	s := subscribe(t, nil)
	want := sampleEvent()
	before := time.Now()
	if err := snspub.New(s.client, s.topicARN).Publish(t.Context(), want); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	// moto delivers to HTTP subscribers inside Publish.
	delivered := s.rec.Events()
	if len(delivered) != 1 || len(delivered[0].Records) != 1 {
		t.Fatalf("delivered %+v, want one event of one record", delivered)
	}
	if got := s.statuses.all(); len(got) != 1 || got[0] != http.StatusOK {
		t.Fatalf("receiver answered %v, want [200]", got)
	}
	r := delivered[0].Records[0]
	if r.EventSource != "aws:sns" || r.EventVersion != "1.0" || r.EventSubscriptionArn != s.subARN {
		t.Errorf("record source %q version %q subscription %q, want aws:sns 1.0 %s",
			r.EventSource, r.EventVersion, r.EventSubscriptionArn, s.subARN)
	}
	if r.SNS.TopicArn != s.topicARN || r.SNS.Type != "Notification" || r.SNS.MessageID == "" {
		t.Errorf("record SNS topic %q type %q id %q, want %s Notification and an id",
			r.SNS.TopicArn, r.SNS.Type, r.SNS.MessageID, s.topicARN)
	}
	if r.SNS.Timestamp.IsZero() || r.SNS.Timestamp.Before(before.Add(-time.Hour)) || r.SNS.Timestamp.After(time.Now().Add(time.Hour)) {
		t.Errorf("record timestamp %v is not about now", r.SNS.Timestamp)
	}

	got, err := snspub.Decode(r)
	if err != nil {
		t.Fatalf("Decode(%q): %v", r.SNS.Message, err)
	}
	if got.EventID != want.EventID || got.Type != want.Type || got.Room != want.Room || got.ID != want.ID ||
		got.Version != want.Version || !got.Time.Equal(want.Time) {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
	if !sameJSON(t, got.Data, want.Data) {
		t.Errorf("data = %s, want JSON equal to %s", got.Data, want.Data)
	}
}

func TestPublishWhenDeliveryFails(t *testing.T) {
	boom := errors.New("broadcast failed")
	s := subscribe(t, boom)
	err := snspub.New(s.client, s.topicARN).Publish(t.Context(), sampleEvent())

	if got := s.rec.Events(); len(got) == 0 {
		t.Fatal("deliver was not called")
	}
	statuses := s.statuses.all()
	if len(statuses) == 0 || statuses[0] != http.StatusInternalServerError {
		t.Fatalf("receiver answered %v, want 500 so SNS retries", statuses)
	}
	// moto posts to HTTP subscribers without looking at the answer (real SNS
	// retries later), so the publisher may not be told; only a subscriber
	// moto cannot reach surely fails the Publish
	// (TestPublishToUnreachableSubscriber). If it is told, it says where.
	var respErr *awshttp.ResponseError
	if err != nil && (!strings.Contains(err.Error(), s.topicARN) || !errors.As(err, &respErr)) {
		t.Fatalf("Publish error %v does not name the topic and wrap SNS's response", err)
	}
}

func TestPublishToUnreachableSubscriber(t *testing.T) {
	s := subscribe(t, nil)
	s.server.Close()
	e := sampleEvent()
	err := snspub.New(s.client, s.topicARN).Publish(t.Context(), e)
	if err == nil {
		t.Fatal("Publish succeeded although moto could not reach the subscriber")
	}
	if !strings.Contains(err.Error(), e.EventID) || !strings.Contains(err.Error(), s.topicARN) {
		t.Errorf("error %q does not name the event and the topic", err)
	}
	// moto answers the failed delivery with a 500 of its own.
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != http.StatusInternalServerError {
		t.Errorf("error %q does not wrap SNS's 500 response", err)
	}
}

func TestPublishToMissingTopic(t *testing.T) {
	client := sns.NewFromConfig(testenv.AWSConfig(t, testenv.Moto(t)))
	topic := "arn:aws:sns:us-east-1:123456789012:" + testenv.Unique(t, "missing")
	err := snspub.New(client, topic).Publish(t.Context(), sampleEvent())
	if err == nil {
		t.Fatal("Publish to a missing topic succeeded")
	}
	if !strings.Contains(err.Error(), topic) {
		t.Errorf("error %q does not name the topic", err)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NotFound" {
		t.Errorf("error %v does not wrap SNS's NotFound", err)
	}
}

// fakeAPI records the PublishInput instead of calling SNS.
type fakeAPI struct {
	in  *sns.PublishInput
	err error
}

func (f *fakeAPI) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	return &sns.PublishOutput{MessageId: aws.String("m-1")}, nil
}

func TestPublishInput(t *testing.T) {
	api := &fakeAPI{}
	e := sampleEvent()
	if err := snspub.New(api, "arn:topic").Publish(t.Context(), e); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if aws.ToString(api.in.TopicArn) != "arn:topic" {
		t.Errorf("TopicArn = %q", aws.ToString(api.in.TopicArn))
	}
	var body domain.Event
	if err := json.Unmarshal([]byte(aws.ToString(api.in.Message)), &body); err != nil {
		t.Fatalf("Message %q: %v", aws.ToString(api.in.Message), err)
	}
	if body.EventID != e.EventID || body.Room != e.Room || !sameJSON(t, body.Data, e.Data) {
		t.Errorf("Message decodes to %+v", body)
	}
	for name, want := range map[string]string{snspub.AttrRoom: e.Room, snspub.AttrType: e.Type} {
		a, ok := api.in.MessageAttributes[name]
		if !ok || aws.ToString(a.DataType) != "String" || aws.ToString(a.StringValue) != want {
			t.Errorf("attribute %s = %+v, want String %q", name, a, want)
		}
	}

	cause := errors.New("throttled")
	api.err = cause
	err := snspub.New(api, "arn:topic").Publish(t.Context(), e)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "arn:topic") {
		t.Errorf("Publish error = %v, want it to wrap %v and name the topic", err, cause)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		message string
		wantErr bool
	}{
		{"event", `{"eventId":"e","type":"item.deleted","room":"r","id":"i","version":2,"time":"2030-01-01T00:00:00Z"}`, false},
		{"not JSON", `hello`, true},
		{"empty", ``, true},
		{"JSON array", `[]`, true},
		{"missing room", `{"eventId":"e","type":"item.put","id":"i","version":2}`, true},
		{"empty room", `{"eventId":"e","type":"item.put","room":"","id":"i"}`, true},
		{"missing type", `{"eventId":"e","room":"r","id":"i","version":2}`, true},
		{"wrong field type", `{"eventId":"e","type":"item.put","room":"r","version":"two"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := events.SNSEventRecord{SNS: events.SNSEntity{MessageID: "msg-42", Message: tc.message}}
			e, err := snspub.Decode(r)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Decode accepted %q as %+v", tc.message, e)
				}
				if !strings.Contains(err.Error(), "msg-42") {
					t.Fatalf("error %q does not name the message", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e.EventID != "e" || e.Type != domain.EventItemDeleted || e.Room != "r" || e.ID != "i" || e.Version != 2 {
				t.Fatalf("Decode = %+v", e)
			}
		})
	}
}
