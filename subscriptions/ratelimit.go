package subscriptions

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// Each company has its own Pipedrive budgets (a 2 s burst window per
// token, a daily token budget), so a 429 is one company's business: its
// run ends at once with the wait Pipedrive named, the worker goes to the
// next company, and the scheduler runs this one again after the wait. No
// run ever sleeps in a worker.
//
// pauses remembers that wait, so that a run started meanwhile by a trigger
// (an admin request, a connect) does not call again before it is over:
// Pipedrive blocks integrations that keep calling after a 429. Only
// companies told to wait are in it, and only until they run again.
type pauses struct {
	mu    sync.Mutex
	until map[int64]time.Time
}

func newPauses() *pauses { return &pauses{until: map[int64]time.Time{}} }

// errPaused is the error of a run that did not call Pipedrive because the
// company's wait is not over.
var errPaused = errors.New("pipedrive asked to wait before calling again for this company")

// check returns the error for a run that must not call Pipedrive yet, with
// the rest of the wait; nil when it may.
func (p *pauses) check(id int64, now time.Time) *result {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.until[id]
	if !ok {
		return nil
	}
	if !now.Before(until) {
		delete(p.until, id)
		return nil
	}
	left := until.Sub(now)
	return &result{err: fmt.Errorf("%w (%v left)", errPaused, left.Round(time.Second)), retryAfter: left}
}

// note records the wait of a rate-limited result.
func (p *pauses) note(id int64, now time.Time, res result) {
	if !errors.Is(res.err, pipedrive.ErrRateLimited) || res.retryAfter <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := now.Add(res.retryAfter); until.After(p.until[id]) {
		p.until[id] = until
	}
}
