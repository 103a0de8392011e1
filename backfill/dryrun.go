package backfill

import (
	"context"
	"fmt"
)

// dryRun reads the probe only and answers what a run of w would publish
// (as far as the probe shows) and spend. Nothing is stored or published.
func (b *Backfill) dryRun(ctx context.Context, company int64, w Range) (Gap, error) {
	t, err := b.companies.Target(ctx, company)
	if err != nil {
		return Gap{}, err
	}
	now := b.clock.Now()
	r := &record{Gap: Gap{
		ID: "dry-run", CompanyID: company, From: w.From, Until: w.Until, Reason: ReasonManual,
		State: StateOpen, Uncovered: []Range{}, Created: now, Updated: now, DryRun: true,
	}, Run: &checkpoint{Window: w}}
	horizon := now.Add(-b.opts.Horizon)
	if !w.Until.After(horizon) {
		r.Uncovered = append(r.Uncovered, w)
		r.Error = "the window is older than the API's horizon: nothing can be recovered"
		return r.Gap, nil
	}
	if w.From.Before(horizon) {
		r.Uncovered = append(r.Uncovered, Range{From: w.From, Until: horizon})
		w.From = horizon
		r.Run.Window = w
	}
	x := &runner{b: b, r: r, t: t}
	page, err := x.fetch(ctx, b.plan.Probe, "")
	if err != nil {
		return Gap{}, fmt.Errorf("failed to read the probe: %w", err)
	}
	r.Events, r.EstimatedTokens = estimate(b.plan, page, w)
	r.EstimatedTokens += r.TokensSpent
	if page.Next != "" {
		r.Error = "the probe has more pages: events and tokens are lower bounds"
	}
	return r.Gap, nil
}

// estimate counts the probe's changes in w and the tokens the lists would
// cost: every list at least one page when anything changed, more pages for
// the entities with more changes than a page holds.
func estimate(p Plan, probe Page, w Range) (events, tokens int) {
	perEntity := map[string]int{}
	for _, it := range probe.Items {
		if it.UpdateTime.IsZero() || (!it.UpdateTime.Before(w.From) && it.UpdateTime.Before(w.Until)) {
			perEntity[it.Entity]++
			events++
		}
	}
	for _, s := range p.Always {
		tokens += s.Cost()
	}
	if quiet(probe, w) {
		return events, tokens
	}
	for _, s := range p.Lists {
		if _, ok := s.(ProbeServed); ok && probe.Next == "" {
			continue
		}
		pages := max(1, (perEntity[s.Entity()]+pageSize-1)/pageSize)
		tokens += pages * s.Cost()
	}
	return events, tokens
}

// pageSize is the most items a list page holds (limit=500).
const pageSize = 500
