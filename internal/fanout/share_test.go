package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testkit/sink"
)

// invocations stands in for Lambda's asynchronous invoke: each share runs
// at once on its own goroutine, with a deadline of its own as a new
// invocation has, through the same Fanout.
type invocations struct {
	f        *Fanout
	deadline time.Duration
	refuse   func(Share) bool

	wg      sync.WaitGroup
	mu      sync.Mutex
	shares  []Share
	results []Result
	errs    []error
}

func (in *invocations) Dispatch(_ context.Context, s Share) error {
	if in.refuse != nil && in.refuse(s) {
		return errors.New("invoke refused")
	}
	// The payload as Lambda would carry it.
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var got Share
	if err := json.Unmarshal(b, &got); err != nil {
		return err
	}
	in.mu.Lock()
	in.shares = append(in.shares, got)
	in.mu.Unlock()
	in.wg.Go(func() {
		ctx := context.Background()
		if in.deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, in.deadline)
			defer cancel()
		}
		res, err := in.f.DeliverShare(ctx, got)
		in.mu.Lock()
		defer in.mu.Unlock()
		in.results = append(in.results, res)
		if err != nil {
			in.errs = append(in.errs, err)
		}
	})
	return nil
}

// everyOther refuses every second share.
func everyOther() func(Share) bool {
	var mu sync.Mutex
	n := 0
	return func(Share) bool {
		mu.Lock()
		defer mu.Unlock()
		n++
		return n%2 == 0
	}
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("conn-%05d=", i)
	}
	return out
}

// pagesIn cuts ids into pages of size, repeating the first id on the last
// page, as a multi-room listing may.
func pagesIn(all []string, size int) [][]string {
	var pages [][]string
	for len(all) > 0 {
		n := min(size, len(all))
		pages = append(pages, all[:n])
		all = all[n:]
	}
	if len(pages) > 0 {
		last := len(pages) - 1
		pages[last] = append(pages[last][:len(pages[last]):len(pages[last])], pages[0][0])
	}
	return pages
}

// TestSharedDeliveryReachesEveryRecipientOnce: small pages, a low share
// threshold, shares refused now and then, shares that run out of time and
// hand on: every recipient gets exactly one copy, the sender none.
func TestSharedDeliveryReachesEveryRecipientOnce(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		opt        Options
		latency    time.Duration
		deadline   time.Duration
		refuse     func(Share) bool
		wantShares bool
		wantDepth  int
	}{
		{name: "below the threshold stays here", n: 40, opt: Options{OwnShare: 50, ShareSize: 50}},
		{name: "shares of the rest", n: 1000, opt: Options{OwnShare: 7, ShareSize: 64}, wantShares: true},
		{name: "refused shares are posted here", n: 600, opt: Options{OwnShare: 7, ShareSize: 50}, wantShares: true,
			refuse: everyOther()},
		{name: "late shares hand on", n: 1200, opt: Options{OwnShare: 100, ShareSize: 400, Workers: 4},
			latency: 2 * time.Millisecond, deadline: 150 * time.Millisecond, wantShares: true, wantDepth: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sink.New(sink.Options{Latency: tc.latency})
			f := New(s, &recordPruner{}, tc.opt)
			in := &invocations{deadline: tc.deadline, refuse: tc.refuse}
			f = f.WithDispatcher(in)
			in.f = f
			all := ids(tc.n)
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			sender := "sender=="
			pages := pagesIn(append(all[:len(all):len(all)], sender), 33)
			res, err := f.Deliver(ctx, Delivery{Frame: []byte(`{"x":1}`), Recipients: pagesOf(pages...), Exclude: sender, Origin: "e1"})
			if err != nil {
				t.Fatal(err)
			}
			in.wg.Wait()
			copies := s.Copies()
			for _, id := range all {
				if copies[id] != 1 {
					t.Fatalf("%s got %d copies", id, copies[id])
				}
			}
			if copies[sender] != 0 || len(copies) != tc.n {
				t.Fatalf("%d ids posted to, the sender %d times", len(copies), copies[sender])
			}
			if len(in.errs) > 0 {
				t.Fatalf("shares failed: %v", in.errs)
			}
			delivered, depth := res.Delivered, 0
			for _, r := range in.results {
				delivered += r.Delivered
			}
			for _, sh := range in.shares {
				depth = max(depth, sh.Depth)
				if sh.Origin != "e1" || string(sh.Frame) != `{"x":1}` || len(sh.IDs) > f.opt.ShareSize {
					t.Fatalf("share %q depth %d with %d ids", sh.Origin, sh.Depth, len(sh.IDs))
				}
			}
			if res.Recipients != tc.n || delivered != tc.n {
				t.Fatalf("recipients %d, delivered %d over every invocation; want %d (%+v)", res.Recipients, delivered, tc.n, res)
			}
			if got := len(in.shares) > 0; got != tc.wantShares {
				t.Fatalf("%d shares", len(in.shares))
			}
			if depth < tc.wantDepth {
				t.Fatalf("deepest share %d, want hand-ons to depth %d", depth, tc.wantDepth)
			}
			if tc.refuse != nil && (res.ShareFailed == 0 || res.ShareError == "") {
				t.Fatalf("refusals not reported: %+v", res)
			}
			t.Logf("result %+v; %d shares, deepest %d", res, len(in.shares), depth)
		})
	}
}

// TestSharesSplitTheRate: each part gets the delivery's rate in proportion
// to its recipients, so they all end together, and the parts add up.
func TestSharesSplitTheRate(t *testing.T) {
	s := sink.New(sink.Options{})
	f := New(s, &recordPruner{}, Options{OwnShare: 300, ShareSize: 400, Rate: 2000})
	in := &invocations{}
	f = f.WithDispatcher(in)
	in.f = f
	p := f.newPlan(context.Background(), []byte("x"), "", 0)
	rest := ids(1000)
	if orphans := p.spread(context.Background(), 300, rest, f.opt.Rate); orphans != nil {
		t.Fatalf("orphans %v", orphans)
	}
	in.wg.Wait()
	sum := float64(p.pc.lim.Limit())
	if want := 2000.0 * 300 / 1300; math.Abs(sum-want) > 1e-6 {
		t.Fatalf("own rate %v, want %v", sum, want)
	}
	for _, sh := range in.shares {
		want := 2000.0 * float64(len(sh.IDs)) / 1300
		if math.Abs(sh.Rate-want) > 1e-6 {
			t.Errorf("share of %d at %v/s, want %v", len(sh.IDs), sh.Rate, want)
		}
		sum += sh.Rate
	}
	if len(in.shares) != 3 || math.Abs(sum-2000) > 1e-6 {
		t.Fatalf("%d shares, rates add to %v", len(in.shares), sum)
	}
}

// TestSharesFitThePayloadLimit: a big frame makes smaller shares, each
// within MaxShareBytes as JSON.
func TestSharesFitThePayloadLimit(t *testing.T) {
	f := New(nil, nil, Options{ShareSize: 100000, MaxShareBytes: 64 << 10})
	for _, frameSize := range []int{10, 20 << 10, 40 << 10} {
		frame := []byte(strings.Repeat("f", frameSize))
		p := f.newPlan(context.Background(), frame, "origin", 0)
		all := ids(20000)
		n := 0
		for _, c := range p.chunks(all) {
			b, err := json.Marshal(Share{Frame: frame, IDs: c, Rate: 1234.5678, Depth: 3, Origin: "origin"})
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > f.opt.MaxShareBytes {
				t.Fatalf("frame %d: share of %d ids is %d bytes, over %d", frameSize, len(c), len(b), f.opt.MaxShareBytes)
			}
			n += len(c)
		}
		if n != len(all) {
			t.Fatalf("frame %d: chunks hold %d ids, want %d", frameSize, n, len(all))
		}
	}
}

// TestHandOnsStopAtMaxDepth: a share that runs late hands its rest on,
// one level deeper; at MaxDepth it is never late, since Lambda would stop
// a longer chain, and posts everything. One past MaxDepth is refused.
func TestHandOnsStopAtMaxDepth(t *testing.T) {
	s := sink.New(sink.Options{Latency: time.Millisecond})
	in := &invocations{}
	f := New(s, &recordPruner{}, Options{ShareSize: 64, Workers: 1}).WithDispatcher(in)
	in.f = New(s, &recordPruner{}, Options{}) // what it hands on is posted at once
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, err := f.DeliverShare(ctx, Share{Frame: []byte("x"), IDs: ids(300), Depth: MaxDepth - 1})
	in.wg.Wait()
	if err != nil || res.Failed != 0 || len(in.shares) == 0 || res.Delivered+res.Shared != 300 || len(s.Copies()) != 300 {
		t.Fatalf("%+v, %v, %d shares: want the rest handed on", res, err, len(in.shares))
	}
	for _, sh := range in.shares {
		if sh.Depth != MaxDepth {
			t.Fatalf("handed on at depth %d", sh.Depth)
		}
	}

	for _, tc := range []struct {
		depth    int
		wantLate bool
	}{{0, true}, {MaxDepth - 1, true}, {MaxDepth, false}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		p := f.newPlan(ctx, []byte("x"), "", tc.depth)
		time.Sleep(25 * time.Millisecond)
		if got := p.late(); got != tc.wantLate {
			t.Errorf("depth %d, 5 ms before the deadline: late = %v", tc.depth, got)
		}
		cancel()
	}
	if _, err := f.DeliverShare(context.Background(), Share{Frame: []byte("x"), IDs: ids(1), Depth: MaxDepth + 1}); err == nil {
		t.Fatal("a share past MaxDepth was accepted")
	}
}

// TestPostsPastTheCutoffAreHandedOn: a share against a sink that throttles
// hard neither starts nor retries a post it could not finish before its
// deadline; it hands those recipients on, and nothing fails.
func TestPostsPastTheCutoffAreHandedOn(t *testing.T) {
	throttled := sink.New(sink.Options{Rate: 100, Burst: 1})
	open := sink.New(sink.Options{})
	in := &invocations{f: New(open, &recordPruner{}, Options{})}
	f := New(throttled, &recordPruner{}, Options{ShareSize: 1000, BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}).WithDispatcher(in)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	res, err := f.DeliverShare(ctx, Share{Frame: []byte("x"), IDs: ids(400), Depth: 1})
	in.wg.Wait()
	if err != nil || res.Failed != 0 || res.Shared == 0 || res.Delivered+res.Shared != 400 {
		t.Fatalf("%+v, %v: want some delivered here, the rest handed on, none failed", res, err)
	}
	here, there := throttled.Copies(), open.Copies()
	for _, id := range ids(400) {
		if here[id]+there[id] != 1 {
			t.Fatalf("%s got %d copies here and %d after the hand-on", id, here[id], there[id])
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the share ran past its deadline")
	}
}

// TestASlowListingIsNotLateness: a store that takes its time over the
// first page (moto, a big table) must not make the invocation think its
// posting is too slow and hand the room off.
func TestASlowListingIsNotLateness(t *testing.T) {
	s := sink.New(sink.Options{Latency: time.Millisecond})
	in := &invocations{}
	f := New(s, &recordPruner{}, Options{ShareSize: 5000}).WithDispatcher(in)
	in.f = f
	all := ids(3000)
	slow := func(yield func([]string, error) bool) {
		time.Sleep(1200 * time.Millisecond)
		yield(all, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := f.Deliver(ctx, Delivery{Frame: []byte("x"), Recipients: slow})
	in.wg.Wait()
	if err != nil || res.Delivered != 3000 || res.Shared != 0 || len(in.shares) != 0 {
		t.Fatalf("%+v, %v, %d shares: want all 3000 posted here", res, err, len(in.shares))
	}
}
