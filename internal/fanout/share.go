package fanout

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Share is part of a delivery handed to another invocation: the frame and
// the recipients that invocation posts it to. It travels as JSON, the
// payload of an asynchronous Lambda invocation.
type Share struct {
	Frame []byte   `json:"frame"`
	IDs   []string `json:"ids"`
	// Rate is this share's part of the delivery's posts per second, in
	// proportion to its recipients, so every part ends at about the same
	// time; 0 is no limit but the window's.
	Rate float64 `json:"rate,omitempty"`
	// Depth counts the hand-offs that led here.
	Depth int `json:"depth"`
	// Origin names the delivery in every invocation's log (the event id).
	Origin string `json:"origin,omitempty"`
}

// Dispatcher starts another invocation on a share and returns once it is
// accepted, without waiting for its posts.
type Dispatcher interface {
	Dispatch(ctx context.Context, s Share) error
}

// Sharing defaults and limits.
const (
	// DefaultShareSize is the most recipients one invocation posts to:
	// at the account's 10,000 posts/s that is 3 s of posting, about one
	// CPU-second on a 512 MB function.
	DefaultShareSize = 30000
	// DefaultRate is API Gateway's default account throttle for the
	// Management API, shared by the parts of a delivery.
	DefaultRate = 10000
	// DefaultMaxShareBytes keeps a share's JSON, with its envelope,
	// within Lambda's 256 KB asynchronous payload.
	DefaultMaxShareBytes = 250 << 10
	// MaxDepth bounds the hand-offs of a delivery: Lambda stops a chain of
	// more than 16 invocations caused by one event.
	MaxDepth = 8
	// maxBatch bounds how many recipients go to the posting at a time,
	// so the deadline is looked at often.
	maxBatch = 512
	// dispatchers bound the shares being handed off at once.
	dispatchers = 16
)

// plan is one invocation's part of a delivery: what it posts itself, what
// it hands to others, and when it must stop taking on recipients so it
// ends well within its deadline.
type plan struct {
	f      *Fanout
	frame  []byte
	origin string
	depth  int
	// pc paces this invocation's own posts (no rate until it has a share
	// of one), counts them and holds the cutoff.
	pc *pacing

	deadline time.Time
	reserve  time.Duration
	// batch is how many recipients go to the posting at a time: a
	// sixteenth of a share, at most maxBatch.
	batch int
	// start and fed measure the posting: when it was first handed
	// recipients (not when the listing began) and how many it has been
	// handed (pc.done: those it has finished with).
	start time.Time
	fed   int

	mu      sync.Mutex
	shared  int
	shares  int
	failed  int
	lastErr error
	total   int
}

func (f *Fanout) newPlan(ctx context.Context, frame []byte, origin string, depth int) *plan {
	p := &plan{f: f, frame: frame, origin: origin, depth: depth, pc: &pacing{lim: rate.NewLimiter(rate.Inf, 1)},
		batch: min(maxBatch, max(16, f.opt.ShareSize/16))}
	if d, ok := ctx.Deadline(); ok && f.dispatch != nil && depth < MaxDepth {
		p.deadline = d
		// Time for the posts in flight to finish, their retries included,
		// and for the hand-off: a quarter of the time left, at least two
		// post timeouts, and at most a third for a function with little
		// time.
		left := time.Until(d)
		p.reserve = min(max(2*f.opt.PostTimeout, left/4), left/3)
		// No post starts, or is retried, unless it can end (PostTimeout)
		// with a little time to hand off what is left.
		p.pc.cutAt(d.Add(-min(f.opt.PostTimeout+2*time.Second, p.reserve)))
	}
	return p
}

// run posts what local yields, handing on what it cannot post in time,
// and counts it all.
func (p *plan) run(ctx context.Context, local <-chan listed) (Result, error) {
	pages := func(yield func([]string, error) bool) { p.feed(ctx, local, yield) }
	res, err := p.f.deliver(ctx, p.frame, pages, "", p.f.opt.Workers, p.pc)
	if late := p.pc.handOff; len(late) > 0 {
		// Posts that would have started, or been retried, too close to
		// the deadline: hand them on; post what cannot be handed on.
		for _, ids := range p.spread(ctx, 0, late, p.currentRate()) {
			more, _ := p.f.deliver(ctx, p.frame, func(yield func([]string, error) bool) { yield(ids, nil) }, "", p.f.opt.Workers, &pacing{lim: p.pc.lim})
			res.merge(more)
		}
	}
	p.result(&res)
	return res, err
}

// currentRate is this invocation's rate now; 0 when it has none.
func (p *plan) currentRate() float64 {
	if l := p.pc.lim.Limit(); l != rate.Inf {
		return float64(l)
	}
	return 0
}

// late reports that this invocation should hand what it has not yet
// posted to another, so as to end before its deadline.
func (p *plan) late() bool {
	if p.deadline.IsZero() {
		return false
	}
	// What is queued for the posting still has to be posted, at the
	// pace the posting has kept so far: once it has kept one for half a
	// second, or, if nothing is done yet, for as long as a post may take.
	need := p.reserve
	done := p.pc.done.Load()
	elapsed := time.Since(p.start)
	if p.fed > 0 && (done > 0 && elapsed > 500*time.Millisecond || elapsed > p.f.opt.PostTimeout) {
		perSecond := max(float64(done)/elapsed.Seconds(), 1)
		backlog := float64(int64(p.fed) - done)
		need += time.Duration(min(backlog/perSecond, 3600) * float64(time.Second))
	}
	return time.Until(p.deadline) < need
}

// pace sets this invocation's own rate.
func (p *plan) pace(perSecond float64) {
	if perSecond <= 0 {
		return
	}
	// A tenth of a second's posts may go at once.
	p.pc.lim.SetBurst(max(1, int(perSecond/10)))
	p.pc.lim.SetLimit(rate.Limit(perSecond))
}

// chunks cuts ids into shares of at most ShareSize recipients and
// MaxShareBytes of JSON each.
func (p *plan) chunks(ids []string) [][]string {
	frameBytes := base64.StdEncoding.EncodedLen(len(p.frame)) + len(p.origin) + 128
	budget := p.f.opt.MaxShareBytes - frameBytes
	var out [][]string
	for len(ids) > 0 {
		n, size := 0, 0
		for n < len(ids) && n < p.f.opt.ShareSize {
			// Quotes and a comma; ids are URL-safe, JSON escapes none.
			size += len(ids[n]) + 3
			if size > budget && n > 0 {
				break
			}
			n++
		}
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// spread hands ids to other invocations, in shares, and gives this
// invocation and each share a part of the rate in proportion to its
// recipients. It returns the recipients whose share could not be handed
// off: this invocation posts to them itself.
func (p *plan) spread(ctx context.Context, own int, ids []string, perSecond float64) [][]string {
	if len(ids) == 0 {
		return nil
	}
	total := float64(own + len(ids))
	if perSecond > 0 {
		p.pace(perSecond * float64(own) / total)
	}
	var (
		wg       sync.WaitGroup
		orphaned [][]string // under p.mu
	)
	slots := make(chan struct{}, dispatchers)
	for _, part := range p.chunks(ids) {
		s := Share{Frame: p.frame, IDs: part, Depth: p.depth + 1, Origin: p.origin}
		if perSecond > 0 {
			s.Rate = perSecond * float64(len(part)) / total
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := p.f.dispatch.Dispatch(ctx, s)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.failed += len(part)
				p.lastErr = err
				orphaned = append(orphaned, part)
				return
			}
			p.shared += len(part)
			p.shares++
		})
	}
	wg.Wait()
	if len(orphaned) > 0 && perSecond > 0 {
		// This invocation posts the orphans too: give it their rate.
		n := own
		for _, o := range orphaned {
			n += len(o)
		}
		p.pace(perSecond * float64(n) / total)
	}
	return orphaned
}

// feed passes the batches of local to yield until they run out or this
// invocation is late; then it hands the rest on, one level deeper, at its
// own pace, and posts only what it could not hand on.
func (p *plan) feed(ctx context.Context, local <-chan listed, yield func([]string, error) bool) {
	defer func() {
		for range local { // let the producer finish
		}
	}()
	for b := range local {
		if b.err != nil {
			yield(nil, b.err)
			return
		}
		if !p.late() {
			if p.fed == 0 {
				p.start = time.Now()
			}
			if !yield(b.ids, nil) {
				return
			}
			p.fed += len(b.ids)
			continue
		}
		// What is queued already may be posted until the reserve begins;
		// what is not by then is handed on too (run).
		p.pc.cutAt(p.deadline.Add(-p.reserve))
		rest := b.ids
		for more := range local {
			if more.err != nil {
				yield(nil, more.err)
				return
			}
			rest = append(rest, more.ids...)
		}
		for _, ids := range p.spread(ctx, 0, rest, p.currentRate()) {
			if !yield(ids, nil) {
				return
			}
		}
		return
	}
}

// result adds what the plan handed off to res.
func (p *plan) result(res *Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res.Shared = p.shared
	res.Shares = p.shares
	res.ShareFailed = p.failed
	if p.lastErr != nil {
		res.ShareError = p.lastErr.Error()
	}
	if p.total > 0 {
		res.Recipients = p.total
	}
}

// send passes ids to ch in batches.
func (p *plan) send(ch chan<- listed, ids []string) {
	for len(ids) > 0 {
		n := min(p.batch, len(ids))
		ch <- listed{ids: ids[:n:n]}
		ids = ids[n:]
	}
}

// shareOf lists a received share's recipients in batches.
func (p *plan) shareOf(ids []string) <-chan listed {
	ch := make(chan listed, len(ids)/p.batch+1)
	p.send(ch, ids)
	close(ch)
	return ch
}

// coordinate lists every recipient of d at once, keeping OwnShare for
// this invocation and handing the rest to shares when the listing ends.
func (p *plan) coordinate(ctx context.Context, d Delivery) <-chan listed {
	own := p.f.opt.OwnShare
	local := make(chan listed, own/p.batch+16)
	go func() {
		defer close(local)
		seen := map[string]struct{}{}
		kept := 0
		var rest, cur []string
		flush := func() {
			if len(cur) > 0 {
				local <- listed{ids: cur}
				cur = nil
			}
		}
		for page, err := range d.Recipients {
			if err != nil {
				flush()
				local <- listed{err: err}
				return
			}
			for _, id := range page {
				if id == d.Exclude {
					continue
				}
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				if kept >= own {
					rest = append(rest, id)
					continue
				}
				kept++
				cur = append(cur, id)
				if len(cur) == p.batch {
					flush()
				}
			}
			// The posting starts on the first page, not the first batch.
			flush()
		}
		clear(seen)
		p.mu.Lock()
		p.total = kept + len(rest)
		p.mu.Unlock()
		for _, ids := range p.spread(ctx, kept, rest, p.f.opt.Rate) {
			p.send(local, ids)
		}
	}()
	return local
}

// DeliverShare posts a share another invocation handed to this one,
// handing what it cannot post in time on again.
func (f *Fanout) DeliverShare(ctx context.Context, s Share) (Result, error) {
	if s.Depth > MaxDepth {
		return Result{}, fmt.Errorf("fanout: share at depth %d, past the limit of %d", s.Depth, MaxDepth)
	}
	p := f.newPlan(ctx, s.Frame, s.Origin, s.Depth)
	p.pace(s.Rate)
	res, err := p.run(ctx, p.shareOf(s.IDs))
	res.Recipients = len(s.IDs)
	return res, err
}
