package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Gaps returns a company's gaps, newest first; ErrNotConnected for a
// company that is not connected.
func (b *Backfill) Gaps(ctx context.Context, company int64) ([]Gap, error) {
	ids, err := b.companies.CompanyIDs(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(ids, company) {
		return nil, ErrNotConnected
	}
	return b.store.Gaps(ctx, company)
}

// Request asks for a window to be recovered now (the admin API): it records
// a manual gap, which the leader runs even where the window was recovered
// before. A dry run instead reads the probe here, publishes nothing and
// answers what a run would publish and spend.
func (b *Backfill) Request(ctx context.Context, company int64, w Range, dryRun bool) (Gap, error) {
	if w.Empty() {
		return Gap{}, fmt.Errorf("%w: from must be before until", ErrInvalidWindow)
	}
	if w.Until.After(b.clock.Now().Add(b.opts.Margin)) {
		return Gap{}, fmt.Errorf("%w: until is in the future", ErrInvalidWindow)
	}
	if dryRun {
		return b.dryRun(ctx, company, w)
	}
	if _, err := b.companies.Target(ctx, company); err != nil {
		return Gap{}, err
	}
	now := b.clock.Now()
	r := &record{Gap: Gap{
		ID: newGapID(company, now), CompanyID: company, From: w.From, Until: w.Until, Reason: ReasonManual,
		State: StateOpen, Uncovered: []Range{}, Created: now, Updated: now,
	}, Manual: true}
	if err := b.store.put(ctx, r); err != nil {
		return Gap{}, err
	}
	b.metrics.GapOpened(company, ReasonManual)
	b.announce(ctx, r)
	b.lead.poke()
	return r.Gap, nil
}

// ErrInvalidWindow is a backfill request whose window is empty.
var ErrInvalidWindow = errors.New("invalid window")

// Summary is the gap fields of the admin API's company view.
type Summary struct {
	// OpenGaps counts the gaps not ended (open or running).
	OpenGaps int `json:"open_gaps"`
	// LastGap is the newest gap, nil when there was none.
	LastGap *Gap `json:"last_gap"`
}

// Summaries returns the gap fields of every company that had gaps.
func (b *Backfill) Summaries(ctx context.Context) (map[int64]Summary, error) {
	entries, err := b.store.scan(ctx, "gap.>")
	if err != nil {
		return nil, fmt.Errorf("failed to list gaps: %w", err)
	}
	out := map[int64]Summary{}
	for _, e := range entries {
		r, err := decodeRecord(e)
		if err != nil {
			continue
		}
		s := out[r.CompanyID]
		if !r.Ended() {
			s.OpenGaps++
		}
		if s.LastGap == nil || r.Created.After(s.LastGap.Created) {
			g := r.Gap
			s.LastGap = &g
		}
		out[r.CompanyID] = s
	}
	return out, nil
}
