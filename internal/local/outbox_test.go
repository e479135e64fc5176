package local_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/faultproxy"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

// TestAPublishThatFailsAfterTheWriteStillReachesEveryClient: SNS (moto,
// behind a proxy that answers Publish with AWS's 500 InternalError or
// throttling) fails every publish of the write, which still answers
// success; the outbox sweeper publishes the event once SNS is back, and
// every client gets it, once.
func TestAPublishThatFailsAfterTheWriteStillReachesEveryClient(t *testing.T) {
	for _, fault := range []struct {
		name string
		f    *faultproxy.Fault
	}{{"5xx", faultproxy.SNSDown}, {"throttled", faultproxy.SNSThrottled}} {
		t.Run(fault.name, func(t *testing.T) {
			ep := testenv.StartMoto(t)
			sns := faultproxy.Start(t, ep)
			s, logs := start(t, mode{"moto", func(t testing.TB, o *local.Options) { o.DynamoDBEndpoint, o.SNSEndpoint = ep, sns.URL }},
				func(o *local.Options) {
					o.Parameters = map[string]string{"OutboxGrace": "1s"}
					o.SchedulePeriod = 300 * time.Millisecond
				})
			clients := []*wsclient.Client{dial(t, s, "outbox"), dial(t, s, "outbox"), dial(t, s, "outbox")}

			sns.Fail("sns:Publish", fault.f)
			if code := put(t, s, "outbox", "a", `{"n":1}`); code != http.StatusCreated {
				t.Fatalf("PUT while SNS fails = %d, want 201: the write is done", code)
			}
			if sns.Faulted("sns:Publish") == 0 {
				t.Fatal("the write's publish never reached SNS")
			}
			// Sweeps while SNS still fails leave the event on the outbox.
			time.Sleep(1500 * time.Millisecond)
			for _, c := range clients {
				c.Quiet()
			}
			sns.SetRule(nil)
			for i, c := range clients {
				f := c.Next()
				if f["action"] != "event" || f["type"] != domain.EventItemPut || f["seq"] != float64(1) || f["id"] != "a" {
					t.Errorf("client %d got %v, want the put with seq 1", i, f)
				}
			}
			// Published once, and marked: later sweeps send nothing again.
			time.Sleep(1500 * time.Millisecond)
			for _, c := range clients {
				c.Quiet()
			}
			out := logs.String()
			if !strings.Contains(out, `"outbox":true`) || !strings.Contains(out, `"found":1,"claimed":1,"published":1,"failed":0`) {
				t.Errorf("no write left on the outbox and swept in the logs:\n%s", out)
			}
		})
	}
}
