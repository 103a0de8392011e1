package backfill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// defaultBurst is the smallest documented burst limit (Lite, API token: 20
// requests per 2 s), assumed until a response tells the real one.
const defaultBurst = 20

// pacer keeps a run at half the company's burst limit, so that the
// company's other integrations (and our reconciler) keep the other half.
type pacer struct {
	last time.Time
	// until: the burst window is half used; wait for its reset.
	until time.Time
	rl    pipedrive.RateLimit
	seen  bool
}

func (p *pacer) wait(ctx context.Context, c Clock) error {
	limit := defaultBurst
	if p.seen && p.rl.Limit > 0 {
		limit = p.rl.Limit
	}
	// limit/2 requests per 2 s.
	interval := 4 * time.Second / time.Duration(max(limit, 2))
	now := c.Now()
	next := maxTime(p.until, p.last.Add(interval))
	if !p.last.IsZero() && next.After(now) {
		if err := c.Sleep(ctx, next.Sub(now)); err != nil {
			return err
		}
	}
	p.last = c.Now()
	return nil
}

func (p *pacer) observe(rl pipedrive.RateLimit, now time.Time) {
	p.rl, p.seen = rl, true
	if rl.Limit > 0 && rl.Remaining >= 0 && rl.Remaining < rl.Limit/2 && rl.Reset > 0 {
		p.until = now.Add(rl.Reset)
	}
}

// Retry limits of one API call.
const (
	maxRateLimited = 20 // 429s in a row: Pipedrive says when to come back
	maxTemporary   = 5  // 5xx and transport errors in a row
)

// fetch reads one page, paced, waiting out 429s as Pipedrive asks and
// backing off on 5xx and network errors. It counts the tokens spent.
func (x *runner) fetch(ctx context.Context, src Source, cursor string) (Page, error) {
	clock := x.b.clock
	limited, temporary := 0, 0
	for {
		if err := x.pace.wait(ctx, clock); err != nil {
			return Page{}, err
		}
		page, err := src.Fetch(ctx, x.t, x.cp().Window, cursor)
		if err == nil {
			x.pace.observe(page.RateLimit, clock.Now())
			x.r.TokensSpent += page.Cost
			x.b.metrics.Tokens(x.r.CompanyID, page.Cost)
			return page, nil
		}
		if ctx.Err() != nil {
			return Page{}, ctx.Err()
		}
		var apiErr *pipedrive.APIError
		errors.As(err, &apiErr)
		if apiErr != nil && apiErr.RateLimit.Limit >= 0 {
			x.pace.observe(apiErr.RateLimit, clock.Now())
		}
		var wait time.Duration
		switch {
		case apiErr != nil && apiErr.DailyBudgetExhausted:
			return Page{}, &stop{StateIncomplete, "stopped: the company's daily API budget is used up (429)"}
		case errors.Is(err, pipedrive.ErrRateLimited):
			if limited++; limited > maxRateLimited {
				return Page{}, retryable{fmt.Errorf("%s: still rate limited after %d tries: %w", src.Name(), limited, err)}
			}
			wait = max(pipedrive.RetryAfter(err), time.Second)
			x.b.log.Info("rate limited, waiting", "company_id", x.r.CompanyID, "source", src.Name(), "wait", wait)
		case apiErr != nil && apiErr.Blocked:
			// Calling on would prolong the block.
			return Page{}, fmt.Errorf("%s: %w", src.Name(), err)
		case pipedrive.Temporary(err):
			if temporary++; temporary > maxTemporary {
				return Page{}, retryable{fmt.Errorf("%s: %w", src.Name(), err)}
			}
			wait = max(pipedrive.RetryAfter(err), time.Duration(1<<(temporary-1))*time.Second)
		default:
			return Page{}, fmt.Errorf("%s: %w", src.Name(), err)
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return Page{}, err
		}
	}
}

// publishRetrying publishes, riding out a short NATS outage; a longer one
// leaves the run to be resumed.
func (b *Backfill) publishRetrying(ctx context.Context, ev *event.Event) (event.Ack, error) {
	var err error
	for attempt := range 4 {
		var ack event.Ack
		if ack, err = b.pub.Publish(ctx, ev); err == nil {
			return ack, nil
		}
		if ctx.Err() != nil {
			return event.Ack{}, ctx.Err()
		}
		if serr := b.clock.Sleep(ctx, time.Duration(1<<attempt)*time.Second); serr != nil {
			return event.Ack{}, serr
		}
	}
	return event.Ack{}, err
}
