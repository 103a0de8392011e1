package backfill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// advance moves the gateway's healthy_through to now, and stores the first
// deliveries after the last outage. delivered holds the first successful
// first attempt per company since the last flush; connected lists the
// connected companies.
func (b *Backfill) advance(ctx context.Context, now time.Time, connected func() (idSet, error), delivered map[int64]time.Time) {
	h, err := b.moveHealth(ctx, now, connected)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("cannot advance the watermark", "error", err)
		}
		for id, at := range delivered { // they may follow the outage not stored yet
			b.det.putBack(companyToken(id), &evidenceBuf{okFirst: at})
		}
		return
	}
	b.firstDeliveries(ctx, now, h, connected, delivered)
}

// moveHealth advances the gateway-wide watermark to now, unless a replica
// wrote it less than half a WatermarkInterval ago: with several replicas it
// is written about once an interval, not once per replica. Every write is a
// compare-and-set, so it never moves backwards. Found stale, no replica
// served for a while: that is an outage of every connected company.
func (b *Backfill) moveHealth(ctx context.Context, now time.Time, connected func() (idSet, error)) (*health, error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := bounded(ctx)
		h, err := b.store.health(rctx)
		cancel()
		if err != nil {
			return nil, err
		}
		stale := !h.HealthyThrough.IsZero() && now.Sub(h.HealthyThrough) > b.opts.StaleAfter
		if !stale && h.revision != 0 && now.Sub(h.HealthyThrough) <= b.opts.WatermarkInterval/2 {
			return h, nil // another replica just wrote it
		}
		next, through := *h, now
		if stale {
			// The gaps are stored before the watermark moves on: if one
			// cannot be, it stays stale for the next flush, which records
			// them again (merged into the ones stored).
			ids, err := connected()
			if err != nil {
				return nil, err
			}
			if err := b.recordOutage(ctx, h.HealthyThrough, now, ids); err != nil {
				return nil, err
			}
			next.Recovered, next.DownSince = now, h.HealthyThrough
			// Storing thousands of gaps takes a while, served and acked
			// all along: the watermark is not stale again once written.
			through = maxTime(now, b.clock.Now())
		}
		next.HealthyThrough = maxTime(h.HealthyThrough, through)
		wctx, cancel := bounded(ctx)
		err = b.store.putHealth(wctx, &next)
		cancel()
		if err == nil {
			return &next, nil
		}
		if !errors.Is(err, errConflict) || attempt == 10 {
			return nil, err
		}
		// Another replica wrote it meanwhile: decide again on what it wrote.
	}
}

// recordOutage stores an outage gap from the stale watermark since to now
// for every connected company; for one connected after since, from its
// connect on (what came before was never its stream's). Two replicas
// finding the same stale watermark both record them: the second merges
// into the first's.
func (b *Backfill) recordOutage(ctx context.Context, since, now time.Time, ids idSet) error {
	b.log.Warn("watermark stale: events may have been lost", "healthy_through", since, "now", now, "companies", len(ids))
	for _, id := range ids {
		if err := b.recordCompanyOutage(ctx, id, since, now); err != nil {
			return fmt.Errorf("failed to record the outage of company %d: %w", id, err)
		}
	}
	return nil
}

func (b *Backfill) recordCompanyOutage(ctx context.Context, id int64, since, now time.Time) error {
	rctx, cancel := bounded(ctx)
	defer cancel()
	from := since
	switch at, err := b.companies.ConnectedAt(rctx, id); {
	case errors.Is(err, ErrNotConnected):
		return nil // disconnected since it was listed
	case err != nil:
		return err
	case at.After(since):
		from = at
	}
	return b.record(rctx, Evidence{
		CompanyID: id, Reason: ReasonOutage, Recovery: now,
		Window: Range{From: from.Add(-b.opts.Margin), Until: now.Add(b.opts.Margin)},
	})
}

// firstSeen remembers which companies' first delivery after the outage that
// ended at outage is stored, so that each is written once per outage (per
// replica), not at every flush.
type firstSeen struct {
	mu     sync.Mutex
	outage time.Time
	done   map[int64]bool
}

// firstDeliveries stores each company's first successful first attempt
// after the outage h tells of, the earliest one if replicas race: it
// proves that no ban is in force, which ends the outage's second pass. Only
// deliveries within SecondPass of the outage's end can shorten it, and
// only those of connected companies are stored.
func (b *Backfill) firstDeliveries(ctx context.Context, now time.Time, h *health, connected func() (idSet, error), delivered map[int64]time.Time) {
	if h.Recovered.IsZero() || len(delivered) == 0 {
		return
	}
	fs := &b.first
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.done == nil || !fs.outage.Equal(h.Recovered) {
		fs.outage, fs.done = h.Recovered, map[int64]bool{}
	}
	end := h.Recovered.Add(b.opts.SecondPass)
	if !now.Before(end) {
		defer func() { fs.done = nil }() // nothing more to store for this outage
	}
	due := map[int64]time.Time{}
	for id, at := range delivered {
		if !fs.done[id] && at.After(h.DownSince) && at.Before(end) {
			due[id] = at
		}
	}
	if len(due) == 0 {
		return
	}
	ids, err := connected()
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("cannot store the first deliveries after the outage", "error", err)
		}
		for id, at := range due {
			b.det.putBack(companyToken(id), &evidenceBuf{okFirst: at}) // the next flush tries again
		}
		return
	}
	for id, at := range due {
		if !ids.has(id) {
			fs.done[id] = true // not connected: nothing to shorten
			continue
		}
		wctx, cancel := bounded(ctx)
		err := b.store.modifyWatermark(wctx, id, func(w *watermark) (bool, error) {
			if w.Recovered.After(h.Recovered) ||
				(w.Recovered.Equal(h.Recovered) && !w.FirstDelivery.IsZero() && !at.Before(w.FirstDelivery)) {
				return false, nil // a later outage, or an earlier delivery stored already
			}
			w.Recovered, w.FirstDelivery = h.Recovered, at
			w.dropOld()
			return true, nil
		})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("cannot store the first delivery after the outage", "company_id", id, "error", err)
			}
			b.det.putBack(companyToken(id), &evidenceBuf{okFirst: at}) // the next flush tries again
			continue
		}
		fs.done[id] = true
	}
}
