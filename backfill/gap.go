package backfill

import (
	"slices"
	"strings"
	"time"
)

// States of a gap (SPEC §6 GAP).
const (
	StateOpen       = "open"       // known, waiting for its window to end
	StateRunning    = "running"    // being recovered (or paused with a checkpoint)
	StateRecovered  = "recovered"  // every change in the window was published
	StateIncomplete = "incomplete" // part of the window could not be read: see Uncovered
	StateFailed     = "failed"     // the run stopped on an error: see Error and Uncovered
)

// Reasons a gap was opened. A merged gap lists several, comma-separated.
const (
	// ReasonOutage: the healthy_through watermark was stale, so no replica
	// served (or JetStream did not ack) for a while.
	ReasonOutage = "outage"
	// ReasonFailedAttempt: the gateway answered a first delivery attempt
	// with a non-2xx status, which counts towards Pipedrive's ban.
	ReasonFailedAttempt = "failed_first_attempt"
	// ReasonRetried: a delivery with attempt > 1 proves that an earlier
	// attempt failed where the gateway could not see it.
	ReasonRetried = "retried_delivery"
	// ReasonWebhookRecreated: the reconciler found our webhook gone and
	// created it again; events between were never sent.
	ReasonWebhookRecreated = "webhook_recreated"
	// ReasonWebhookMissing: the reconciler found our webhook gone and could
	// not create it yet.
	ReasonWebhookMissing = "webhook_missing"
	// ReasonWebhookStatus: Pipedrive reports a failed last delivery on our
	// webhook (last_http_status).
	ReasonWebhookStatus = "webhook_status"
	// ReasonSecondPass: 35 minutes after an outage, in case a ban that began
	// while the gateway was unreachable outlived the outage.
	ReasonSecondPass = "second_pass"
	// ReasonManual: POST /admin/companies/{id}/backfill.
	ReasonManual = "manual"
)

// Range is a half-open window of time [From, Until).
type Range struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// Empty reports whether r contains no instant.
func (r Range) Empty() bool { return !r.From.Before(r.Until) }

func (r Range) overlapsOrTouches(o Range) bool {
	return !r.From.After(o.Until) && !o.From.After(r.Until)
}

// Gap is one window of a company in which events may have been lost, and
// what recovering it achieved: the GAP object of SPEC §6, as served by the
// admin API and published on <prefix>.gap.company.
type Gap struct {
	ID          string    `json:"id"`
	CompanyID   int64     `json:"company_id"`
	From        time.Time `json:"from"`
	Until       time.Time `json:"until"`
	Reason      string    `json:"reason"`
	State       string    `json:"state"`
	Events      int       `json:"events"`
	TokensSpent int       `json:"tokens_spent"`
	Uncovered   []Range   `json:"uncovered"`
	Error       string    `json:"error"`
	// Beyond SPEC's fields: when the gap was recorded and last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// DryRun marks the answer of a dry run: Events is what it would
	// publish (as far as the probe shows), EstimatedTokens what a real run
	// would spend; nothing was published or stored.
	DryRun          bool `json:"dry_run,omitempty"`
	EstimatedTokens int  `json:"estimated_tokens,omitempty"`
	// MergedInto names the gap that absorbed this one: evidence bridged the
	// two open gaps. Its status event ends with that gap's state, over
	// this gap's own window; the events and tokens count on the other.
	MergedInto string `json:"merged_into,omitempty"`
}

// Window is the gap's range.
func (g *Gap) Window() Range { return Range{From: g.From, Until: g.Until} }

// Ended reports whether the gap reached a final state.
func (g *Gap) Ended() bool {
	return g.State == StateRecovered || g.State == StateIncomplete || g.State == StateFailed
}

// covered is the part of the window a gap has dealt with, or is dealing
// with: new evidence inside it opens nothing new. Open gaps are not
// covered: new evidence merges into them instead.
func (g *Gap) covered() []Range {
	switch g.State {
	case StateRunning, StateRecovered:
		return []Range{g.Window()}
	case StateIncomplete, StateFailed:
		// What was not recovered may be tried again.
		return subtract(g.Window(), g.Uncovered)
	}
	return nil
}

func (g *Gap) hasReason(r string) bool {
	return slices.Contains(strings.Split(g.Reason, ","), r)
}

// joinReasons merges comma-separated reason lists, sorted and unique.
func joinReasons(lists ...string) string {
	var all []string
	for _, l := range lists {
		for r := range strings.SplitSeq(l, ",") {
			if r != "" {
				all = append(all, r)
			}
		}
	}
	slices.Sort(all)
	return strings.Join(slices.Compact(all), ",")
}

// subtract returns r minus the ranges in cut, in order.
func subtract(r Range, cut []Range) []Range {
	out := []Range{r}
	for _, c := range cut {
		var next []Range
		for _, p := range out {
			if !p.From.Before(c.Until) || !c.From.Before(p.Until) {
				next = append(next, p) // disjoint
				continue
			}
			if p.From.Before(c.From) {
				next = append(next, Range{From: p.From, Until: c.From})
			}
			if c.Until.Before(p.Until) {
				next = append(next, Range{From: c.Until, Until: p.Until})
			}
		}
		out = next
	}
	return out
}

// Evidence is a window in which a company's events may have been lost.
type Evidence struct {
	CompanyID int64
	Window    Range
	Reason    string
	// Recovery, for an outage, is when the gateway was healthy again: the
	// second pass starts there.
	Recovery time.Time
}

// changes is what admitting evidence does to a company's gaps.
type changes struct {
	update []*record // open gaps that grew
	create []*record
	remove []*record // open gaps absorbed by another
}

func (c changes) empty() bool { return len(c.update)+len(c.create)+len(c.remove) == 0 }

// admit decides how evidence changes a company's gaps: the part already
// covered by a running or ended gap is dropped (the same window is not paid
// for twice), what remains merges with the open gaps it overlaps or
// touches, or opens a new gap. newID names new gaps. It is pure.
func admit(existing []*record, ev Evidence, newID func() string, now time.Time) changes {
	var covered []Range
	var open []*record
	for _, r := range existing {
		covered = append(covered, r.covered()...)
		if r.State == StateOpen {
			open = append(open, r)
		}
	}
	var ch changes
	touched := map[*record]bool{}
	for _, piece := range subtract(ev.Window, covered) {
		if piece.Empty() {
			continue
		}
		var into *record
		for _, o := range open {
			if ch.isRemoved(o) || !o.Window().overlapsOrTouches(piece) {
				continue
			}
			if into == nil {
				into = o
				into.grow(piece, ev, now)
				touched[o] = true
				continue
			}
			// The piece bridges two open gaps: one absorbs the other, and
			// ends it when it ends itself (it may have been announced).
			into.grow(o.Window(), Evidence{Reason: o.Reason, Recovery: o.Recovery}, now)
			into.Absorbed = append(into.Absorbed, absorbedGap{ID: o.ID, From: o.From, Until: o.Until, Reason: o.Reason, Seq: o.Seq})
			into.Absorbed = append(into.Absorbed, o.Absorbed...)
			ch.remove = append(ch.remove, o)
		}
		if into == nil {
			r := &record{Gap: Gap{
				ID: newID(), CompanyID: ev.CompanyID, From: piece.From, Until: piece.Until,
				Reason: joinReasons(ev.Reason), State: StateOpen, Uncovered: []Range{}, Created: now, Updated: now,
			}, Recovery: ev.Recovery}
			ch.create = append(ch.create, r)
			open = append(open, r)
			touched[r] = true
		}
	}
	for _, o := range open {
		if touched[o] && !ch.isRemoved(o) && !slices.Contains(ch.create, o) {
			ch.update = append(ch.update, o)
		}
	}
	return ch
}

func (c changes) isRemoved(r *record) bool { return slices.Contains(c.remove, r) }

// intersect returns the parts of rs inside w.
func intersect(rs []Range, w Range) []Range {
	out := []Range{}
	for _, r := range rs {
		if c := (Range{From: maxTime(r.From, w.From), Until: minTime(r.Until, w.Until)}); !c.Empty() {
			out = append(out, c)
		}
	}
	return out
}

// grow widens an open gap to cover w and takes the evidence's reason.
func (r *record) grow(w Range, ev Evidence, now time.Time) {
	if w.From.Before(r.From) {
		r.From = w.From
	}
	if w.Until.After(r.Until) {
		r.Until = w.Until
	}
	r.Reason = joinReasons(r.Reason, ev.Reason)
	if ev.Recovery.After(r.Recovery) {
		r.Recovery = ev.Recovery
	}
	r.Updated = now
}
