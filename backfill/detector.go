package backfill

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// retryDelay is when Pipedrive sends attempt n after the first (+3 s,
// +30 s, +150 s), plus up to 10 s per failed attempt for its timeout.
func retryDelay(attempt int) time.Duration {
	offsets := [...]time.Duration{0, 0, 3 * time.Second, 33 * time.Second, 183 * time.Second}
	if attempt < 2 {
		return 0
	}
	if attempt >= len(offsets) {
		attempt = len(offsets) - 1
	}
	return offsets[attempt] + time.Duration(attempt-1)*10*time.Second
}

// evidenceBuf is one company's delivery evidence not yet written to the
// store: it is kept in memory because it piles up exactly while NATS (and
// so the store) may be down.
type evidenceBuf struct {
	// failFirst..failLast: first attempts answered non-2xx.
	failFirst, failLast time.Time
	// retryFirst..retryLast: when the first attempts of retried deliveries
	// were sent, as far as the attempt number tells.
	retryFirst, retryLast time.Time
	// okFirst: the earliest successful first attempt.
	okFirst time.Time
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// detector collects the gateway's evidence of lost events.
type detector struct {
	b *Backfill

	mu  sync.Mutex
	buf map[string]*evidenceBuf // by company id as in the URL
}

// Delivered records one authenticated webhook delivery: the company, the
// delivery attempt (1 = first), the status the gateway answered and when.
// It is the gateway's delivery observer and returns at once.
func (b *Backfill) Delivered(companyID string, attempt, status int, at time.Time) {
	d := &b.det
	ok := status >= 200 && status < 300
	if attempt == 1 && ok {
		// The common case: remember only the first success since the last
		// flush, which ends a possible ban after an outage.
		d.mu.Lock()
		if e := d.buf[companyID]; e == nil || e.okFirst.IsZero() {
			d.entry(companyID).okFirst = at
		}
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entry(companyID)
	if attempt <= 1 { // a failed first attempt counts towards a ban
		e.failFirst, e.failLast = minTime(e.failFirst, at), maxTime(e.failLast, at)
		return
	}
	sent := at.Add(-retryDelay(attempt))
	e.retryFirst, e.retryLast = minTime(e.retryFirst, sent), maxTime(e.retryLast, sent)
}

func (d *detector) entry(companyID string) *evidenceBuf {
	if d.buf == nil {
		d.buf = map[string]*evidenceBuf{}
	}
	e := d.buf[companyID]
	if e == nil {
		e = &evidenceBuf{}
		d.buf[companyID] = e
	}
	return e
}

// take removes and returns the buffered evidence.
func (d *detector) take() map[string]*evidenceBuf {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.buf
	d.buf = nil
	return out
}

// putBack returns evidence that could not be stored to the buffer.
func (d *detector) putBack(companyID string, old *evidenceBuf) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entry(companyID)
	e.failFirst, e.failLast = minTime(e.failFirst, old.failFirst), maxTime(e.failLast, old.failLast)
	e.retryFirst, e.retryLast = minTime(e.retryFirst, old.retryFirst), maxTime(e.retryLast, old.retryLast)
	e.okFirst = minTime(e.okFirst, old.okFirst)
}

// banEvidence is the window of a possible ban caused by failed first
// attempts between first and last: events may be dropped from the first
// failure until BanWindow after the last.
func (b *Backfill) banEvidence(company int64, first, last time.Time, reason string) Evidence {
	return Evidence{
		CompanyID: company, Reason: reason,
		Window: Range{From: first.Add(-b.opts.Margin), Until: last.Add(b.opts.BanWindow + b.opts.Margin)},
	}
}

// opTimeout bounds each store call of a flush: a call made while the
// connection comes back can hang, and the next flush retries anyway.
const opTimeout = 5 * time.Second

func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, opTimeout)
}

// idSet is a sorted list of company ids: a flush looks up every company
// with evidence among thousands of connected ones.
type idSet []int64

// sortedIDs returns ids as an idSet; CompanyIDs lists them ordered, so the
// copy and sort are only a fallback.
func sortedIDs(ids []int64) idSet {
	if !slices.IsSorted(ids) {
		ids = slices.Sorted(slices.Values(ids))
	}
	return idSet(ids)
}

func (s idSet) has(id int64) bool {
	_, ok := slices.BinarySearch(s, id)
	return ok
}

// flush writes the buffered delivery evidence as gaps and advances the
// watermark. It runs every WatermarkInterval on every replica. In steady
// state it costs two KV operations (one read of the gateway-wide watermark,
// at most one write), plus those of the companies with new evidence; the
// connected companies are listed only when there is something to record.
func (b *Backfill) flush(ctx context.Context) {
	now := b.clock.Now()
	hctx, cancel := bounded(ctx)
	healthy := b.healthy(hctx) == nil
	cancel()
	evidence := b.det.take()
	connected := sync.OnceValues(func() (idSet, error) {
		lctx, cancel := bounded(ctx)
		defer cancel()
		ids, err := b.companies.CompanyIDs(lctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list the connected companies: %w", err)
		}
		return sortedIDs(ids), nil
	})
	delivered := map[int64]time.Time{}
	var listErr error
	for companyID, e := range evidence {
		id, err := strconv.ParseInt(companyID, 10, 64)
		if err != nil {
			continue
		}
		if !e.okFirst.IsZero() {
			delivered[id] = e.okFirst // of connected companies, if stored
		}
		if e.failFirst.IsZero() && e.retryFirst.IsZero() {
			continue
		}
		ids, err := connected()
		if err != nil {
			listErr = err
			b.det.putBack(companyID, e) // try again at the next flush
			continue
		}
		// Only connected companies: the others (hand-made webhooks with the
		// static credentials) cannot be read from the API.
		if !ids.has(id) {
			continue
		}
		var evs []Evidence
		if !e.failFirst.IsZero() {
			evs = append(evs, b.banEvidence(id, e.failFirst, e.failLast, ReasonFailedAttempt))
		}
		if !e.retryFirst.IsZero() {
			evs = append(evs, b.banEvidence(id, e.retryFirst, e.retryLast, ReasonRetried))
		}
		for _, ev := range evs {
			rctx, cancel := bounded(ctx)
			err := b.record(rctx, ev)
			cancel()
			if err != nil {
				b.det.putBack(companyID, e) // try again at the next flush
				break
			}
		}
	}
	if listErr != nil && ctx.Err() == nil {
		b.log.Warn("cannot record the delivery evidence", "error", listErr)
	}
	if healthy {
		b.advance(ctx, now, connected, delivered)
	}
}

// WebhookReport is what the reconciler found about a company's webhook.
type WebhookReport struct {
	// Present: our correct webhook was listed.
	Present bool
	// Created is set when the reconciler created our webhook in this run
	// (its add_time, or the time of the call).
	Created time.Time
	// LastHTTPStatus and LastDeliveryTime are Pipedrive's view of our
	// webhook's latest delivery, when known.
	LastHTTPStatus   *int
	LastDeliveryTime *time.Time
	// Seen is when an earlier reconcile last found our webhook in place,
	// as the company's record keeps it (zero: never).
	Seen time.Time
}

// Webhook takes the reconciler's findings on one company: our webhook
// missing or created again opens a gap from when it was last seen in place;
// a failed last delivery reported by Pipedrive opens a possible-ban gap
// around it. The reconciler calls it after every reconcile; it writes only
// the gaps it finds (when the webhook was seen is kept with the company's
// record, which the reconcile writes anyway).
func (b *Backfill) Webhook(ctx context.Context, company int64, rep WebhookReport) error {
	now := b.clock.Now()
	var evs []Evidence
	if seen := rep.Seen; !seen.IsZero() {
		switch {
		case !rep.Created.IsZero():
			evs = append(evs, Evidence{CompanyID: company, Reason: ReasonWebhookRecreated,
				Window: Range{From: seen.Add(-b.opts.Margin), Until: rep.Created.Add(b.opts.Margin)}})
		case !rep.Present:
			evs = append(evs, Evidence{CompanyID: company, Reason: ReasonWebhookMissing,
				Window: Range{From: seen.Add(-b.opts.Margin), Until: now.Add(b.opts.Margin)}})
		}
	}
	// An old failure (Pipedrive keeps the last status until the next
	// delivery) was seen by earlier reconciles already.
	if s := rep.LastHTTPStatus; s != nil && (*s < 200 || *s >= 300) && rep.LastDeliveryTime != nil && now.Sub(*rep.LastDeliveryTime) < 24*time.Hour {
		// The failed delivery may have been a retry of a first attempt up
		// to a few minutes earlier.
		t := *rep.LastDeliveryTime
		evs = append(evs, b.banEvidence(company, t.Add(-retryDelay(4)), t, ReasonWebhookStatus))
	}
	var err error
	for _, ev := range evs {
		if rerr := b.record(ctx, ev); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
