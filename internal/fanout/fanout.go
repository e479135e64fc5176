// Package fanout delivers one frame to many connections: posts at the rate
// the Management API allows (an AIMD window over posts in flight), retries
// with backoff for throttles and faults, pruning of gone connections. The
// broadcaster, the WebSocket relay and the local stack all deliver through
// it.
package fanout

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/internal/backoff"
	"github.com/pushgate/pushgate/internal/domain"
)

// Pruner removes a connection that the Management API reported gone.
type Pruner interface {
	Delete(ctx context.Context, id string) error
}

// Defaults of Options, sized for API Gateway's account throttle of 10,000
// posts per second at 20–50 ms a post (up to 500 in flight), within
// Lambda's 1,024 file descriptors.
const (
	DefaultWorkers          = 500
	DefaultInitialInFlight  = 32
	DefaultAttempts         = 3
	DefaultThrottleAttempts = 30
	DefaultPostTimeout      = 5 * time.Second
	DefaultBaseDelay        = 50 * time.Millisecond
	DefaultMaxDelay         = 2 * time.Second
)

// Options tune a Fanout; zero values take the defaults.
type Options struct {
	// Workers bounds the posts in flight at once, which the window never
	// passes (default 500).
	Workers int
	// InitialInFlight is where the window starts (default 32); it grows
	// while posts succeed and halves on a throttle.
	InitialInFlight int
	// Attempts bounds the tries of a post that fails with a server fault, a
	// timeout or a transport error (default 3).
	Attempts int
	// ThrottleAttempts bounds the tries of a post that is throttled (429):
	// a throttled post was not carried out, and the window slows down, so
	// it is tried far more often than a failing one (default 30).
	ThrottleAttempts int
	// PostTimeout bounds one post, so a hung call cannot hold its place
	// (default 5s).
	PostTimeout time.Duration
	// BaseDelay is the first backoff; each retry doubles it, with full jitter
	// (default 50ms).
	BaseDelay time.Duration
	// MaxDelay caps one backoff (default 2s).
	MaxDelay time.Duration
	// ShareSize is the most recipients a share handed to another
	// invocation holds (default 30,000).
	ShareSize int
	// OwnShare is the most recipients the invocation that lists a room
	// posts to itself; the rest go to shares (default ShareSize).
	OwnShare int
	// Rate is the posts per second of one delivery once it is shared, split
	// among its invocations (default 10,000). A delivery one invocation
	// makes alone is paced by the window only.
	Rate float64
	// MaxShareBytes bounds a share's JSON (default 250 KiB).
	MaxShareBytes int
}

// Fanout posts frames to connections.
type Fanout struct {
	poster domain.Poster
	pruner Pruner
	opt    Options
	// dispatch hands shares of a big delivery to other invocations; nil
	// keeps every delivery in this one.
	dispatch Dispatcher
	// closer closes a connection whose post failed every attempt; nil
	// leaves it open.
	closer Closer
	// sleep waits between retries; tests replace it to run without delays.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Fanout that posts with p and deletes gone connections with pr.
func New(p domain.Poster, pr Pruner, opt Options) *Fanout {
	defaults := []struct {
		v   *int
		def int
	}{
		{&opt.Workers, DefaultWorkers},
		{&opt.InitialInFlight, DefaultInitialInFlight},
		{&opt.Attempts, DefaultAttempts},
		{&opt.ThrottleAttempts, DefaultThrottleAttempts},
		{&opt.ShareSize, DefaultShareSize},
		{&opt.OwnShare, opt.ShareSize},
		{&opt.MaxShareBytes, DefaultMaxShareBytes},
	}
	for _, d := range defaults {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if opt.PostTimeout <= 0 {
		opt.PostTimeout = DefaultPostTimeout
	}
	if opt.BaseDelay <= 0 {
		opt.BaseDelay = DefaultBaseDelay
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = DefaultMaxDelay
	}
	if opt.Rate <= 0 {
		opt.Rate = DefaultRate
	}
	return &Fanout{poster: p, pruner: pr, opt: opt, sleep: backoff.Sleep}
}

// WithDispatcher returns a copy of f that hands the recipients of a big
// delivery, past OwnShare, to other invocations through d.
func (f *Fanout) WithDispatcher(d Dispatcher) *Fanout {
	c := *f
	c.dispatch = d
	return &c
}

// Closer closes a connection (the Management API's DeleteConnection).
type Closer interface {
	Delete(ctx context.Context, connectionID string) error
}

// WithCloser returns a copy of f that closes each connection whose post
// failed every attempt. The client then reconnects and reads what it
// missed from the room's history, rather than waiting for the next event
// to show it a gap; nothing has to keep the failed post for later.
func (f *Fanout) WithCloser(c Closer) *Fanout {
	cp := *f
	cp.closer = c
	return &cp
}

// Result counts what happened to each recipient of one delivery.
type Result struct {
	Recipients int `json:"recipients"`
	Delivered  int `json:"delivered"`
	Gone       int `json:"gone"`
	// Retried counts retry attempts, not connections.
	Retried int `json:"retried"`
	// Throttled counts the posts answered 429; each was tried again.
	Throttled int `json:"throttled"`
	Failed    int `json:"failed"`
	// Closed counts the failed connections closed so their clients
	// reconnect and recover.
	Closed int `json:"closed"`
	// Shared counts the recipients handed to other invocations, in Shares
	// shares; they count there, not here.
	Shared int `json:"shared"`
	Shares int `json:"shares"`
	// ShareFailed counts recipients whose share could not be handed off
	// (ShareError says why): this invocation posted to them itself.
	ShareFailed int    `json:"shareFailed"`
	ShareError  string `json:"shareError,omitempty"`
}

func (r *Result) add(o outcome) {
	r.Retried += o.retries
	r.Throttled += o.throttled
	switch {
	case o.handOff: // settled by another invocation
	case o.gone:
		r.Gone++
	case o.err != nil:
		r.Failed++
		if o.closed {
			r.Closed++
		}
	default:
		r.Delivered++
	}
}

// LogAttrs are r's counts as log attributes, the summary lines' names;
// share_failed and share_error only when a hand-off failed.
func (r Result) LogAttrs() []any {
	attrs := []any{
		"recipients", r.Recipients, "delivered", r.Delivered, "gone", r.Gone,
		"retried", r.Retried, "throttled", r.Throttled, "failed", r.Failed, "closed", r.Closed,
		"shared", r.Shared, "shares", r.Shares,
	}
	if r.ShareFailed > 0 {
		attrs = append(attrs, "share_failed", r.ShareFailed, "share_error", r.ShareError)
	}
	return attrs
}

// merge adds o's posting counts to r.
func (r *Result) merge(o Result) {
	r.Delivered += o.Delivered
	r.Gone += o.Gone
	r.Retried += o.Retried
	r.Throttled += o.Throttled
	r.Failed += o.Failed
	r.Closed += o.Closed
}

type outcome struct {
	retries   int
	throttled int
	gone      bool
	err       error
	// closed: the post failed for good and the connection was closed.
	closed bool
	// handOff: past the cutoff, the post is left to another invocation.
	handOff bool
}

// Deliver posts d.Frame to every connection id d.Recipients yields,
// skipping d.Exclude and duplicates. One connection's failure never stops
// the others; the error returned is the listing's, when it fails, so the
// caller can have the whole delivery retried rather than lose recipients
// silently. The next page is read while the current one is posted. With a
// dispatcher, recipients past OwnShare are handed to other invocations
// once the listing is done, and whatever this invocation could not post
// before its context's deadline is handed on too.
func (f *Fanout) Deliver(ctx context.Context, d Delivery) (Result, error) {
	if f.dispatch == nil {
		return f.deliver(ctx, d.Frame, d.Recipients, d.Exclude, f.opt.Workers, nil)
	}
	p := f.newPlan(ctx, d.Frame, d.Origin, 0)
	local := p.coordinate(ctx, d)
	return p.run(ctx, local)
}

// To delivers frame to the given connections.
func (f *Fanout) To(ctx context.Context, frame []byte, ids ...string) (Result, error) {
	pages := func(yield func([]string, error) bool) { yield(ids, nil) }
	return f.deliver(ctx, frame, pages, "", min(f.opt.Workers, max(len(ids), 1)), nil)
}

// Delivery is one frame for the recipients a listing yields.
type Delivery struct {
	Frame      []byte
	Recipients iter.Seq2[[]string, error]
	// Exclude is never posted to (the sender of a relayed frame).
	Exclude string
	// Origin names the delivery in the log of each invocation that shares it.
	Origin string
}

// listed is one page of recipients, or the listing's failure.
type listed struct {
	ids []string
	err error
}

// pacing is what a shared delivery adds to the posting: its rate, a count
// of the recipients settled, and a cutoff past which a post is neither
// started nor retried but handed off, since it might not end before the
// invocation does.
type pacing struct {
	lim  *rate.Limiter
	done atomic.Int64
	// cutoff is in Unix nanoseconds, 0 for none; it moves earlier once
	// the invocation is late.
	cutoff atomic.Int64

	mu      sync.Mutex
	handOff []string
}

// past reports that a post starting after wait would start past the
// cutoff.
func (pc *pacing) past(wait time.Duration) bool {
	c := pc.cutoff.Load()
	return c != 0 && time.Now().Add(wait).UnixNano() > c
}

// cutAt moves the cutoff to t, if that is earlier.
func (pc *pacing) cutAt(t time.Time) {
	for {
		c := pc.cutoff.Load()
		if c != 0 && c <= t.UnixNano() || pc.cutoff.CompareAndSwap(c, t.UnixNano()) {
			return
		}
	}
}

func (pc *pacing) hand(id string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.handOff = append(pc.handOff, id)
}

// deliver posts frame to what pages yields, at most workers at once and,
// with pc, at its pace. Without pc it skips exclude and duplicates; with
// pc, the plan that made the pages has (coordinate), so they are not
// looked for twice.
func (f *Fanout) deliver(ctx context.Context, frame []byte, pages iter.Seq2[[]string, error], exclude string, workers int, pc *pacing) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	win := newWindow(f.opt.InitialInFlight, workers)
	stop := context.AfterFunc(ctx, win.close)
	defer stop()

	// The lister runs a page ahead of the posting, so a store round trip
	// overlaps the posts of the page before.
	ahead := make(chan listed, 1)
	go func() {
		defer close(ahead)
		for page, err := range pages {
			select {
			case ahead <- listed{page, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	ids := make(chan string, 2*workers)
	var (
		mu      sync.Mutex
		res     Result
		wg      sync.WaitGroup
		started int
	)
	// Workers start when more recipients wait than twice the workers there
	// are and the window has room for more posts, so a room of three, or a
	// fast Management API, costs a few goroutines, not Workers.
	work := func() {
		var mine Result
		pt := newPostTimer(ctx, f.opt.PostTimeout)
		defer pt.stop()
		for id := range ids {
			o := f.deliverOne(ctx, pt, win, pc, id, frame)
			if o.err != nil && !o.gone && f.closer != nil && ctx.Err() == nil {
				// One try: a close that fails too leaves the client to see
				// the gap at the room's next event.
				o.closed = f.closer.Delete(ctx, id) == nil
			}
			mine.add(o)
			switch {
			case pc == nil:
			case o.handOff:
				pc.hand(id)
			default:
				pc.done.Add(1)
			}
		}
		mu.Lock()
		res.merge(mine)
		mu.Unlock()
	}

	var listErr error
	recipients := 0
	var seen map[string]struct{}
list:
	for page := range ahead {
		if page.err != nil {
			listErr = page.err
			break
		}
		if seen == nil && pc == nil {
			seen = make(map[string]struct{}, len(page.ids))
		}
		for _, id := range page.ids {
			if pc == nil {
				if id == exclude {
					continue
				}
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
			}
			recipients++
			if started == 0 || (started < workers && len(ids) > 2*started && float64(started) < win.size()) {
				started++
				wg.Go(work)
			}
			select {
			case ids <- id:
			case <-ctx.Done():
				listErr = ctx.Err()
				break list
			}
		}
	}
	close(ids)
	wg.Wait()
	cancel()
	for range ahead { // let the lister finish
	}
	res.Recipients = recipients
	return res, listErr
}

func (f *Fanout) deliverOne(ctx context.Context, pt *postTimer, win *window, pc *pacing, id string, frame []byte) outcome {
	var o outcome
	failures, throttles := 0, 0
	for {
		if pc != nil {
			if pc.past(0) {
				o.handOff = true
				return o
			}
			if pc.lim.Limit() != rate.Inf {
				// A reservation past the cutoff is spent, not cancelled:
				// this invocation is about to stop posting anyway.
				wait := pc.lim.Reserve().Delay()
				if pc.past(wait) {
					o.handOff = true
					return o
				}
				if wait > 0 {
					if err := f.sleep(ctx, wait); err != nil {
						o.err = err
						return o
					}
				}
			}
		}
		started, err := win.acquire(ctx)
		if err != nil {
			o.err = err
			return o
		}
		if pc != nil && pc.past(0) {
			// The wait for room in the window ran past the cutoff.
			win.giveBack()
			o.handOff = true
			return o
		}
		err = pt.post(f.poster, id, frame)
		if err == nil {
			win.release(false, started)
			return o
		}
		var pe *domain.PostError
		isPost := errors.As(err, &pe)
		throttled := isPost && pe.Status == http.StatusTooManyRequests
		win.release(throttled, started)
		if isPost && pe.Gone() {
			o.gone = true
			if perr := f.pruner.Delete(ctx, id); perr != nil {
				// The TTL removes it later; the delivery itself is settled.
				o.err = perr
			}
			return o
		}
		var tries int
		if throttled {
			o.throttled++
			throttles++
			tries = throttles
		} else {
			failures++
			tries = failures
		}
		if !isPost || !pe.Retryable() || ctx.Err() != nil ||
			(throttled && throttles >= f.opt.ThrottleAttempts) || (!throttled && failures >= f.opt.Attempts) {
			o.err = err
			return o
		}
		wait := f.backoff(tries)
		if pc != nil && pc.past(wait) {
			o.handOff = true
			return o
		}
		if err := f.sleep(ctx, wait); err != nil {
			o.err = err
			return o
		}
		o.retries++
	}
}

// postTimer bounds each post of one worker by PostTimeout with one timer
// and one context, made again only after a post timed out: a context per
// post would cost five allocations a recipient.
type postTimer struct {
	parent  context.Context
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	timer   *time.Timer
}

func newPostTimer(parent context.Context, timeout time.Duration) *postTimer {
	pt := &postTimer{parent: parent, timeout: timeout}
	pt.renew()
	return pt
}

func (pt *postTimer) renew() {
	pt.ctx, pt.cancel = context.WithCancel(pt.parent)
	pt.timer = time.AfterFunc(time.Hour, pt.cancel)
	pt.timer.Stop()
}

// post is one attempt. One that outlives PostTimeout is a transport
// failure (status 0): retryable.
func (pt *postTimer) post(p domain.Poster, id string, frame []byte) error {
	pt.timer.Reset(pt.timeout)
	err := p.Post(pt.ctx, id, frame)
	if !pt.timer.Stop() {
		// It fired: this post's context is done; the next gets a fresh one.
		pt.renew()
		if err != nil && pt.parent.Err() == nil && !errors.As(err, new(*domain.PostError)) {
			err = &domain.PostError{ConnectionID: id, Err: err}
		}
	}
	return err
}

func (pt *postTimer) stop() {
	pt.timer.Stop()
	pt.cancel()
}

// backoff is the wait before retry number attempt.
func (f *Fanout) backoff(attempt int) time.Duration {
	return backoff.FullJitter(attempt, f.opt.BaseDelay, f.opt.MaxDelay)
}
