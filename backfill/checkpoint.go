package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// checkpoint is how far a run got; it lives in the gap's record, so that
// the next leader resumes instead of starting over.
type checkpoint struct {
	// Window is what the run reads: the gap's window without the part
	// beyond the API's horizon.
	Window Range `json:"window"`
	// Cut is the part of the gap beyond the horizon, never read.
	Cut    *Range `json:"cut,omitempty"`
	Probed bool   `json:"probed,omitempty"`
	Quiet  bool   `json:"quiet,omitempty"`
	// Position: every object changed before it has been published (those
	// changed at it may be published again, and dedupe absorbs them).
	Position time.Time    `json:"position,omitzero"`
	Sources  []sourceMark `json:"sources,omitempty"`
}

// sourceMark is where a source's reading stands: Cursor is the page being
// consumed (read again on resume).
type sourceMark struct {
	Name   string `json:"name"`
	Cursor string `json:"cursor,omitempty"`
	Done   bool   `json:"done,omitempty"`
}

// stop ends a run early without an error of its own: the cap, the daily
// budget, the horizon.
type stop struct {
	state string
	msg   string
}

func (s *stop) Error() string { return s.msg }

// save writes the checkpoint.
func (x *runner) save(ctx context.Context) error {
	for _, s := range x.reads {
		// A page fully published: resume at the next one.
		if s.fetched && len(s.buf) == 0 && !s.mark.Done {
			s.mark.Cursor = s.next
			s.mark.Done = s.next == ""
		}
	}
	x.dirty = 0
	x.r.Updated = x.b.clock.Now()
	if err := x.b.store.put(ctx, x.r); err != nil {
		if errors.Is(err, errConflict) {
			return fmt.Errorf("gap %s changed by someone else (another leader?): %w", x.r.ID, err)
		}
		return retryable{err}
	}
	return nil
}

// guard stops the run before a call that would pass the token cap or eat
// into the share of the daily budget left to others.
func (x *runner) guard(cost int) error {
	opts := x.b.opts
	if x.r.TokensSpent+cost > opts.MaxTokens {
		return &stop{StateIncomplete, fmt.Sprintf("stopped at the cap of %d tokens (BACKFILL_MAX_TOKENS)", opts.MaxTokens)}
	}
	if rl := x.pace.rl; rl.DailyLimit > 0 && rl.DailyRemaining >= 0 &&
		float64(rl.DailyRemaining-cost) < opts.BudgetFloor*float64(rl.DailyLimit) {
		return &stop{StateIncomplete, fmt.Sprintf("stopped: the company's daily API budget is low (%d of %d tokens left)", rl.DailyRemaining, rl.DailyLimit)}
	}
	return nil
}

// finish records the end of a run, announces it and, after an outage,
// schedules the second pass.
func (b *Backfill) finish(ctx context.Context, r *record, state, msg string, uncovered []Range) error {
	for _, u := range uncovered {
		if !u.Empty() {
			r.Uncovered = append(r.Uncovered, u)
		}
	}
	if len(r.Uncovered) > 0 && state == StateRecovered {
		state = StateIncomplete
	}
	r.State = state
	if msg != "" {
		r.Error = strings.TrimPrefix(strings.Join([]string{r.Error, msg}, "; "), "; ")
	}
	r.Seq++
	r.Updated = b.clock.Now()
	r.Run = nil
	if err := b.store.put(ctx, r); err != nil {
		return err
	}
	b.log.Info("backfill ended", "company_id", r.CompanyID, "gap_id", r.ID, "state", state,
		"events", r.Events, "tokens", r.TokensSpent, "uncovered", r.Uncovered, "error", r.Error)
	b.metrics.RunEnded(r.CompanyID, state)
	b.announce(ctx, r)
	for _, a := range r.Absorbed {
		b.announce(ctx, r.absorbedEnd(a))
	}
	if r.hasReason(ReasonOutage) && !r.Recovery.IsZero() && state != StateFailed {
		ev := Evidence{
			CompanyID: r.CompanyID, Reason: ReasonSecondPass, Recovery: r.Recovery,
			Window: Range{From: r.Recovery.Add(-b.opts.Margin), Until: r.Recovery.Add(b.opts.SecondPass)},
		}
		_ = b.record(ctx, ev)
	}
	return nil
}

// uncovered is the part of the window not recovered when a run stops
// early: the part beyond the horizon, and everything from the oldest
// frontier of the sources that still had to be read. What is buffered
// before that frontier is published first.
func (x *runner) uncovered() []Range {
	cp := x.cp()
	var out []Range
	if cp.Cut != nil {
		out = append(out, *cp.Cut)
	}
	if cp.Window.Empty() && cp.Cut != nil {
		return out
	}
	if cp.Window.Empty() {
		if cp.Cut == nil { // stopped before the window was known
			out = append(out, x.r.Window())
		}
		return out
	}
	c := cp.Window.Until
	if !cp.Probed {
		c = maxTime(cp.Window.From, cp.Position)
	}
	for _, s := range x.reads {
		if !s.mark.Done && len(s.buf) == 0 {
			c = minTime(c, s.frontier)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for s := x.head(c); s != nil; s = x.head(c) {
		t := s.buf[0].UpdateTime
		if err := x.publish(ctx, s); err != nil {
			c = t
			break
		}
	}
	return append(out, Range{From: c, Until: cp.Window.Until})
}
