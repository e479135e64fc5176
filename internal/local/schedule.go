package local

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
)

// rateExpr is EventBridge's rate expression; cron expressions are not
// emulated.
var rateExpr = regexp.MustCompile(`^rate\((1) (minute|hour|day)\)$|^rate\(([2-9]|[1-9][0-9]+) (minutes|hours|days)\)$`)

// parseRate returns the period of a rate expression.
func parseRate(expr string) (time.Duration, error) {
	m := rateExpr.FindStringSubmatch(expr)
	if m == nil {
		return 0, fmt.Errorf("schedule %q: only rate(1 minute|hour|day) and rate(N minutes|hours|days) are emulated", expr)
	}
	count, unitName := m[1]+m[3], m[2]+m[4] // one alternative matched
	n, err := strconv.Atoi(count)
	if err != nil {
		return 0, fmt.Errorf("schedule %q: %w", expr, err)
	}
	var unit time.Duration
	switch unitName {
	case "minute", "minutes":
		unit = time.Minute
	case "hour", "hours":
		unit = time.Hour
	case "day", "days":
		unit = 24 * time.Hour
	}
	return time.Duration(n) * unit, nil
}

// scheduler runs the functions with Schedule events as EventBridge
// would: once per period, each invocation within the function's timeout.
// Runs of one function do not overlap (EventBridge's can, which the
// handlers allow for).
type scheduler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startSchedules starts a loop per scheduled function; every overrides
// the template's rates when positive.
func (s *Stack) startSchedules(every time.Duration) error {
	ctx, cancel := context.WithCancel(s.ctx)
	sch := &scheduler{cancel: cancel}
	for _, fn := range s.functions {
		for _, expr := range fn.schedules {
			period, err := parseRate(expr)
			if err != nil && every <= 0 {
				cancel()
				return fmt.Errorf("local: %s: %w", fn.name, err)
			}
			if every > 0 {
				period = every
			}
			if fn.schedule == nil {
				cancel()
				return fmt.Errorf("local: %s has a schedule but takes no scheduled events", fn.name)
			}
			sch.wg.Go(func() { s.runSchedule(ctx, fn, period) })
		}
	}
	s.schedules = sch
	return nil
}

func (s *Stack) runSchedule(ctx context.Context, fn *function, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-t.C:
			ev := events.EventBridgeEvent{
				Version: "0", ID: domain.NewID(), DetailType: "Scheduled Event", Source: "aws.events",
				AccountID: Account, Time: at.UTC(), Region: Region, Detail: []byte("{}"),
			}
			run, cancel := context.WithTimeout(ctx, fn.timeout())
			if err := fn.schedule(run, ev); err != nil {
				fn.log.Warn("scheduled invocation failed", "error", err.Error())
			}
			cancel()
		}
	}
}

// stop cancels the loops and waits for a run in progress.
func (sch *scheduler) stop() {
	if sch == nil {
		return
	}
	sch.cancel()
	sch.wg.Wait()
}
