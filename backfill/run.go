package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// reading is one source during a run.
type reading struct {
	src     Source
	mark    *sourceMark
	buf     []Item
	next    string
	fetched bool
	// frontier: the source has returned everything changed before it.
	frontier time.Time
}

// runner recovers one gap.
type runner struct {
	b     *Backfill
	r     *record
	t     Target
	pace  pacer
	reads []*reading
	probe *Page // the probe's page, while it may serve a source
	seen  map[string]time.Time
	dirty int // events since the last checkpoint write
}

func itemKey(it Item) string { return it.Entity + "/" + it.ID }

// less orders items by update time, then entity, then id.
func less(a, b Item) bool {
	if c := a.UpdateTime.Compare(b.UpdateTime); c != 0 {
		return c < 0
	}
	if a.Entity != b.Entity {
		return a.Entity < b.Entity
	}
	return a.ID < b.ID
}

// run recovers a gap from its checkpoint on. It returns an error only when
// the run should be tried again later (NATS, the store, a lost lead); any
// other end is recorded on the gap.
func (b *Backfill) run(ctx context.Context, r *record) error {
	t, err := b.companies.Target(ctx, r.CompanyID)
	if errors.Is(err, ErrNotConnected) {
		return b.finish(ctx, r, StateFailed, err.Error(), []Range{r.Window()})
	}
	if err != nil {
		return err
	}
	if r.State == StateOpen {
		r.State, r.Run = StateRunning, &checkpoint{}
		r.Seq++
		r.Updated = b.clock.Now()
		if err := b.store.put(ctx, r); err != nil {
			return err
		}
		b.log.Info("backfill started", "company_id", r.CompanyID, "gap_id", r.ID, "from", r.From, "until", r.Until)
		b.announce(ctx, r)
	}
	if r.Run == nil {
		r.Run = &checkpoint{}
	}
	x := &runner{b: b, r: r, t: t, seen: map[string]time.Time{}}
	err = x.do(ctx)
	var st *stop
	switch {
	case err == nil:
		return b.finish(ctx, r, StateRecovered, "", nil)
	case errors.As(err, &st):
		return b.finish(ctx, r, st.state, st.msg, x.uncovered())
	case ctx.Err() != nil || isRetryable(err):
		// Keep the checkpoint for the next try, on this leader or the next.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := x.save(sctx); serr != nil {
			b.log.Warn("cannot save the checkpoint", "gap_id", r.ID, "error", serr)
		}
		return err
	default:
		b.log.Error("backfill failed", "company_id", r.CompanyID, "gap_id", r.ID, "error", err)
		return b.finish(ctx, r, StateFailed, err.Error(), x.uncovered())
	}
}

// retryable errors leave the gap running, to resume later.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

func (x *runner) cp() *checkpoint { return x.r.Run }

func (x *runner) do(ctx context.Context) error {
	cp := x.cp()
	if !cp.Probed {
		if err := x.start(ctx); err != nil {
			return err
		}
	}
	for i := range cp.Sources {
		m := &cp.Sources[i]
		src := x.b.plan.source(m.Name)
		if src == nil {
			return fmt.Errorf("checkpoint names an unknown source %q", m.Name)
		}
		x.reads = append(x.reads, &reading{src: src, mark: m, frontier: maxTime(cp.Window.From, cp.Position)})
	}
	for {
		if err := x.fill(ctx); err != nil {
			return err
		}
		s := x.head(time.Time{})
		if s == nil {
			return nil // every source read to the end of the window
		}
		if err := x.publish(ctx, s); err != nil {
			return err
		}
	}
}

// start cuts the window at the horizon and reads the probe.
func (x *runner) start(ctx context.Context) error {
	cp, now := x.cp(), x.b.clock.Now()
	w := x.r.Window()
	horizon := now.Add(-x.b.opts.Horizon)
	if !w.Until.After(horizon) {
		cp.Window, cp.Cut = Range{From: w.Until, Until: w.Until}, &w
		return &stop{StateIncomplete, fmt.Sprintf("the window is older than the API's horizon of %s: nothing can be recovered", x.b.opts.Horizon)}
	}
	if w.From.Before(horizon) {
		cp.Cut = &Range{From: w.From, Until: horizon}
		w.From = horizon
	}
	cp.Window = w
	probe := x.b.plan.Probe
	if err := x.guard(probe.Cost()); err != nil {
		return err
	}
	page, err := x.fetch(ctx, probe, "")
	if err != nil {
		return err
	}
	cp.Probed, cp.Quiet = true, quiet(page, w)
	srcs := x.b.plan.Always
	if !cp.Quiet {
		srcs = x.b.plan.all()
		x.probe = &page
	}
	for _, s := range srcs {
		cp.Sources = append(cp.Sources, sourceMark{Name: s.Name()})
	}
	return x.save(ctx)
}

// quiet reports whether the probe shows no change in w. An entry without a
// time (recents sometimes sends data null) counts as a change.
func quiet(p Page, w Range) bool {
	for _, it := range p.Items {
		if it.UpdateTime.IsZero() || (!it.UpdateTime.Before(w.From) && it.UpdateTime.Before(w.Until)) {
			return false
		}
		if p.Next != "" && it.UpdateTime.Before(w.Until) {
			return false
		}
	}
	return true
}

// fill reads pages until every unfinished source has an item buffered.
func (x *runner) fill(ctx context.Context) error {
	cp := x.cp()
	for _, s := range x.reads {
		for len(s.buf) == 0 && !s.mark.Done {
			if s.fetched && s.next == "" {
				s.mark.Done = true
				s.frontier = cp.Window.Until
				break
			}
			cursor := s.mark.Cursor
			if s.fetched {
				cursor = s.next
			}
			var page Page
			served := false
			if ps, ok := s.src.(ProbeServed); ok && x.probe != nil && !s.fetched {
				page, served = ps.FromProbe(*x.probe)
			}
			if !served {
				if err := x.guard(s.src.Cost()); err != nil {
					return err
				}
				var err error
				if page, err = x.fetch(ctx, s.src, cursor); err != nil {
					return err
				}
			}
			s.fetched, s.mark.Cursor, s.next = true, cursor, page.Next
			x.take(s, page)
			if err := x.save(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// take buffers a page's items that fall in the window and were not
// published yet.
func (x *runner) take(s *reading, page Page) {
	cp := x.cp()
	w := cp.Window
	for _, it := range page.Items {
		if !it.UpdateTime.Before(w.Until) {
			// Sources return oldest first: the rest is beyond the window
			// too (products and recents have no upper time filter).
			s.next = ""
			continue
		}
		s.frontier = maxTime(s.frontier, it.UpdateTime)
		if it.UpdateTime.Before(w.From) || it.UpdateTime.Before(cp.Position) {
			continue
		}
		s.buf = append(s.buf, it)
	}
	slices.SortStableFunc(s.buf, func(a, b Item) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
}

// head is the reading whose next item is the oldest, among those changed
// before limit (zero: no limit); nil when none is left.
func (x *runner) head(limit time.Time) *reading {
	var best *reading
	for _, s := range x.reads {
		if len(s.buf) == 0 || (!limit.IsZero() && !s.buf[0].UpdateTime.Before(limit)) {
			continue
		}
		if best == nil || less(s.buf[0], best.buf[0]) {
			best = s
		}
	}
	return best
}

// publish sends the oldest buffered item of s.
func (x *runner) publish(ctx context.Context, s *reading) error {
	it := s.buf[0]
	s.buf = s.buf[1:]
	cp := x.cp()
	if prev, ok := x.seen[itemKey(it)]; ok && !it.UpdateTime.After(prev) {
		return nil // also listed by another source, or twice by one
	}
	ev, err := recoveredEvent(x.r, x.t, it, s.src.Name())
	if err != nil {
		return err
	}
	ack, err := x.b.publishRetrying(ctx, ev)
	if err != nil {
		return retryable{fmt.Errorf("failed to publish a recovered event: %w", err)}
	}
	x.seen[itemKey(it)] = it.UpdateTime
	cp.Position = it.UpdateTime
	if !ack.Duplicate {
		x.r.Events++
	}
	x.b.metrics.Event(x.r.CompanyID, ev.Action, ev.Object, ack.Duplicate)
	if x.dirty++; x.dirty >= 100 {
		return x.save(ctx)
	}
	return nil
}
