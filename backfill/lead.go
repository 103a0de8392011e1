package backfill

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leader is the state of the leader's work: which companies are being
// recovered, and when a company whose run was interrupted may try again.
type leader struct {
	mu      sync.Mutex
	running map[int64]bool
	backoff map[int64]retryState
	wake    chan struct{}
}

type retryState struct {
	at    time.Time
	delay time.Duration
}

func (l *leader) init() {
	l.running = map[int64]bool{}
	l.backoff = map[int64]retryState{}
	l.wake = make(chan struct{}, 1)
}

func (l *leader) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Lead recovers gaps until ctx ends: every gap whose window has ended, one
// run per company at a time, up to Concurrency companies at once, resuming
// runs another leader left. Only the leader runs it; it returns once its
// runs have stopped (each leaves a checkpoint).
func (b *Backfill) Lead(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, b.opts.Concurrency)
	t := time.NewTicker(b.opts.Poll)
	defer t.Stop()
	for {
		b.sweep(ctx, &wg, sem)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-b.lead.wake:
		}
	}
}

// Poke makes the leader look for due gaps now (tests move a fake clock).
func (b *Backfill) Poke() { b.lead.poke() }

// sweep starts the runs that are due.
func (b *Backfill) sweep(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	entries, err := b.store.scan(sctx, "gap.>")
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("cannot list gaps", "error", err)
		}
		return
	}
	now := b.clock.Now()
	byCompany := map[int64][]*record{}
	for _, e := range entries {
		r, err := decodeRecord(e)
		if err != nil {
			b.log.Warn("ignoring a gap record", "key", e.Key(), "error", err)
			continue
		}
		byCompany[r.CompanyID] = append(byCompany[r.CompanyID], r)
	}
	// Every open second pass compares with the gateway's last outage:
	// read it once a sweep, and only if one is open.
	gw := sync.OnceValues(func() (*health, error) { return b.store.health(sctx) })
	open := map[int64]int{}
	for company, rs := range byCompany {
		for _, r := range rs {
			if !r.Ended() {
				open[company]++
			}
		}
		b.prune(ctx, rs, now)
		if r := b.due(ctx, rs, now, gw); r != nil && b.claim(company, now) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					b.release(company, nil)
					return
				}
				defer func() { <-sem }()
				err := b.runFresh(ctx, r)
				if errors.Is(err, errConflict) {
					err = nil // changed meanwhile: the next sweep sees it as it is now
				}
				if err != nil && ctx.Err() == nil {
					b.log.Warn("backfill interrupted, will resume", "company_id", company, "gap_id", r.ID, "error", err)
				}
				b.release(company, err)
				b.lead.poke() // the company may have another gap due
			}()
		}
	}
	b.metrics.OpenGaps(open)
}

// runFresh runs a gap as it is stored now: the sweep's copy may be older
// than a run that ended meanwhile.
func (b *Backfill) runFresh(ctx context.Context, stale *record) error {
	r, err := b.store.get(ctx, stale.CompanyID, stale.ID)
	if errors.Is(err, jetstream.ErrKeyNotFound) || (err == nil && (r.Ended() || r.revision != stale.revision)) {
		return nil
	}
	if err != nil {
		return err
	}
	return b.run(ctx, r)
}

// due picks a company's next run: one left running first, then the oldest
// open gap whose window has ended. gw reads the gateway-wide watermark.
func (b *Backfill) due(ctx context.Context, rs []*record, now time.Time, gw func() (*health, error)) *record {
	for _, r := range rs {
		if r.State == StateRunning {
			return r
		}
	}
	for _, r := range rs {
		if r.State != StateOpen {
			continue
		}
		if r.Reason == ReasonSecondPass && b.shrink(ctx, r, gw) && r.Window().Empty() {
			// No ban outlived the outage: nothing to read.
			if err := b.finish(ctx, r, StateRecovered, "", nil); err != nil {
				b.log.Warn("cannot close a second pass", "gap_id", r.ID, "error", err)
			}
			continue
		}
		if !now.Before(r.Until) {
			return r
		}
	}
	return nil
}

// shrink ends a second pass at the first successful delivery after the
// outage: Pipedrive was delivering again, so no ban was in force and none
// can begin without new failures (which are evidence of their own). Only
// for the gateway's last outage (gw): the company's first delivery is
// stored for that one alone. The gap's Recovery is that outage's Recovered,
// or later when replicas recorded the outage at once (the merged gap keeps
// the latest, the watermark the first written) but not past the watermark
// written since; earlier is an earlier outage, later one whose watermark
// is not written yet.
func (b *Backfill) shrink(ctx context.Context, r *record, gw func() (*health, error)) bool {
	h, err := gw()
	if err != nil || h.Recovered.IsZero() || r.Recovery.Before(h.Recovered) || h.HealthyThrough.Before(r.Recovery) {
		return false
	}
	w, err := b.store.watermark(ctx, r.CompanyID)
	if err != nil || w.FirstDelivery.IsZero() || !w.Recovered.Equal(h.Recovered) || !w.FirstDelivery.After(h.DownSince) {
		return false
	}
	until := maxTime(r.From, w.FirstDelivery.Add(b.opts.Margin))
	if !until.Before(r.Until) {
		return false
	}
	r.Until = until
	r.Updated = b.clock.Now()
	if err := b.store.put(ctx, r); err != nil {
		return false
	}
	b.log.Info("second pass shortened: deliveries resumed", "company_id", r.CompanyID, "gap_id", r.ID, "until", r.Until)
	return true
}

func (b *Backfill) claim(company int64, now time.Time) bool {
	l := &b.lead
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[company] || now.Before(l.backoff[company].at) {
		return false
	}
	l.running[company] = true
	return true
}

// release frees the company; an interrupted run waits before it resumes,
// longer each time (up to 10 minutes).
func (b *Backfill) release(company int64, err error) {
	l := &b.lead
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.running, company)
	if err == nil {
		delete(l.backoff, company)
		return
	}
	st := l.backoff[company]
	st.delay = min(max(2*st.delay, 30*time.Second), 10*time.Minute)
	st.at = b.clock.Now().Add(st.delay)
	l.backoff[company] = st
}

// prune forgets ended gaps older than Keep.
func (b *Backfill) prune(ctx context.Context, rs []*record, now time.Time) {
	for _, r := range rs {
		if r.Ended() && now.Sub(r.Updated) > b.opts.Keep {
			if err := b.store.remove(ctx, r); err != nil && ctx.Err() == nil {
				b.log.Debug("cannot prune a gap", "gap_id", r.ID, "error", err)
			}
		}
	}
}
