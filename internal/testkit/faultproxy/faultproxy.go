// Package faultproxy is an HTTP proxy for tests that stands in front of an
// AWS stand-in (moto) and answers chosen DynamoDB and SNS operations with
// the errors AWS sends under throttling or failure, so the SDK clients see
// faults exactly as they would from AWS.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is an answer in place of the stand-in's.
type Fault struct {
	Status      int
	ContentType string
	Body        string
}

// DynamoDB errors, as the JSON protocol carries them.
var (
	Throttled = dynamoFault(http.StatusBadRequest, "ProvisionedThroughputExceededException",
		"The level of configured provisioned throughput for the table was exceeded.")
	DynamoDown = dynamoFault(http.StatusInternalServerError, "InternalServerError", "Internal server error")
)

// SNS errors, as the query protocol carries them.
var (
	SNSThrottled = snsFault(http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded")
	SNSDown      = snsFault(http.StatusInternalServerError, "Receiver", "InternalError", "Internal error")
)

// Management API errors, as API Gateway answers PostToConnection.
var (
	ManagementThrottled = &Fault{Status: http.StatusTooManyRequests, ContentType: "application/json",
		Body: `{"message":"LimitExceededException"}`}
	ManagementDown = &Fault{Status: http.StatusInternalServerError, ContentType: "application/json",
		Body: `{"message":"Internal server error"}`}
)

func dynamoFault(status int, typ, msg string) *Fault {
	return &Fault{Status: status, ContentType: "application/x-amz-json-1.0",
		Body: fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, typ, msg)}
}

func snsFault(status int, typ, code, msg string) *Fault {
	return &Fault{Status: status, ContentType: "text/xml",
		Body: fmt.Sprintf(`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>faultproxy</RequestId></ErrorResponse>`, typ, code, msg)}
}

// Rule chooses the fault for an operation ("dynamodb:TransactWriteItems",
// "sns:Publish"); nil passes the request on.
type Rule func(op string) *Fault

// Proxy forwards to its target unless its rule says otherwise.
type Proxy struct {
	// URL is the endpoint to give the SDK clients.
	URL string

	mu      sync.Mutex
	rule    Rule
	seen    map[string]int
	faulted map[string]int
}

// Start runs a proxy to target on a free 127.0.0.1 port until the test
// ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("faultproxy: target %q: %v", target, err)
	}
	p := &Proxy{seen: map[string]int{}, faulted: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		op := Operation(r, body)
		if f := p.decide(op); f != nil {
			w.Header().Set("Content-Type", f.ContentType)
			w.Header().Set("X-Amzn-Requestid", "faultproxy")
			w.WriteHeader(f.Status)
			io.WriteString(w, f.Body)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p.URL = "http://" + ln.Addr().String()
	return p
}

// Operation names the AWS operation a request calls: the JSON protocol's
// X-Amz-Target, the query protocol's Action, or the Management API's
// connection operations ("execute-api:PostToConnection", …).
func Operation(r *http.Request, body []byte) string {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		service, action, _ := strings.Cut(target, ".")
		if strings.HasPrefix(service, "DynamoDB") {
			return "dynamodb:" + action
		}
		return strings.ToLower(service) + ":" + action
	}
	if strings.Contains(r.URL.Path, "/@connections/") {
		switch r.Method {
		case http.MethodPost:
			return "execute-api:PostToConnection"
		case http.MethodDelete:
			return "execute-api:DeleteConnection"
		case http.MethodGet:
			return "execute-api:GetConnection"
		}
	}
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		return "sns:" + form.Get("Action")
	}
	return r.Method + " " + r.URL.Path
}

func (p *Proxy) decide(op string) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[op]++
	if p.rule == nil {
		return nil
	}
	f := p.rule(op)
	if f != nil {
		p.faulted[op]++
	}
	return f
}

// SetRule replaces the rule; nil passes everything.
func (p *Proxy) SetRule(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = r
}

// Fail answers every call of op with f until the rule is replaced.
func (p *Proxy) Fail(op string, f *Fault) {
	p.SetRule(func(o string) *Fault {
		if o == op {
			return f
		}
		return nil
	})
}

// Seen and Faulted count the calls of op and those answered with a fault.
func (p *Proxy) Seen(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[op]
}

func (p *Proxy) Faulted(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faulted[op]
}
