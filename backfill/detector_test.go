package backfill

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func emptyPlan() Plan { return Plan{Probe: probeOf{}} }

func TestWatermarkOpensOutageGap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	h.b.flush(h.ctx) // first write: no gap
	h.clock.Advance(20 * time.Second)
	h.b.flush(h.ctx) // fresh: no gap
	if gs := h.gaps(); len(gs) != 0 {
		t.Fatalf("gaps after a healthy start: %s", mustJSON(gs))
	}
	last := h.clock.Now()

	// The gateway stops for ten minutes; a new process starts.
	h.clock.Advance(10 * time.Minute)
	h.start().flush(h.ctx)

	gs := h.gaps()
	if len(gs) != 1 {
		t.Fatalf("want one gap, got %s", mustJSON(gs))
	}
	g := gs[0]
	now := h.clock.Now()
	if g.Reason != ReasonOutage || g.State != StateOpen || !g.From.Equal(last.Add(-time.Minute)) || !g.Until.Equal(now.Add(time.Minute)) {
		t.Errorf("gap = %s, want outage from %s to %s", mustJSON(g), last.Add(-time.Minute), now.Add(time.Minute))
	}
	// Announced on <prefix>.gap.company.
	msgs := h.messages("pipedrive.gap.company")
	if len(msgs) != 1 || msgs[0].Body["state"] != StateOpen || msgs[0].Body["id"] != g.ID {
		t.Errorf("status events = %v", msgs)
	}
}

func TestWatermarkHeldWhileUnhealthy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	h.b.flush(h.ctx)
	last := h.clock.Now()
	// JetStream does not ack for five minutes: the watermark stays.
	h.unhealthy = true
	for range 20 {
		h.clock.Advance(15 * time.Second)
		h.b.flush(h.ctx)
	}
	h.unhealthy = false
	h.b.flush(h.ctx)
	gs := h.gaps()
	if len(gs) != 1 || !gs[0].From.Equal(last.Add(-time.Minute)) {
		t.Fatalf("want one outage gap from %s, got %s", last.Add(-time.Minute), mustJSON(gs))
	}
}

func TestFailedFirstAttemptsKeepGapOpenForBan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	company := itoa(testCompany)
	first := h.clock.Now()
	h.b.Delivered(company, 1, 503, first)
	h.b.Delivered(company, 1, 200, first.Add(time.Second)) // successes do not close it
	last := first.Add(2 * time.Minute)
	h.b.Delivered(company, 1, 503, last)
	h.b.flush(h.ctx)

	gs := h.gaps()
	if len(gs) != 1 {
		t.Fatalf("want one gap, got %s", mustJSON(gs))
	}
	g := gs[0]
	if g.Reason != ReasonFailedAttempt || !g.From.Equal(first.Add(-time.Minute)) || !g.Until.Equal(last.Add(31*time.Minute)) {
		t.Errorf("gap = %s, want from %s until %s", mustJSON(g), first.Add(-time.Minute), last.Add(31*time.Minute))
	}

	// A retry arriving later (attempt 3 after a failed first attempt) merges.
	retryAt := last.Add(10 * time.Minute)
	h.b.Delivered(company, 3, 200, retryAt)
	h.b.flush(h.ctx)
	gs = h.gaps()
	if len(gs) != 1 {
		t.Fatalf("want the gap merged, got %s", mustJSON(gs))
	}
	sent := retryAt.Add(-retryDelay(3))
	if g := gs[0]; !g.Until.Equal(sent.Add(31*time.Minute)) || g.Reason != "failed_first_attempt,retried_delivery" {
		t.Errorf("merged gap = %s, want until %s", mustJSON(g), sent.Add(31*time.Minute))
	}
}

func TestEvidenceKeptWhileStoreDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	company := itoa(testCompany)
	h.ns.Stop()
	failed := h.clock.Now()
	h.b.Delivered(company, 1, 503, failed)
	ctx, cancel := contextWithTimeout(h, time.Second)
	h.b.flush(ctx) // cannot write: kept
	cancel()
	h.ns.Restart()
	waitConnected(t, h)
	h.b.flush(h.ctx)
	if gs := h.gaps(); len(gs) != 1 || !gs[0].From.Equal(failed.Add(-time.Minute)) {
		t.Fatalf("want the failure recorded once NATS is back, got %s", mustJSON(gs))
	}
}

func TestWebhookReports(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	// Connected: the webhook is created the first time. No gap.
	first := h.clock.Now()
	if err := h.b.Webhook(h.ctx, testCompany, WebhookReport{Created: first}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	seen := h.clock.Now()
	_ = h.b.Webhook(h.ctx, testCompany, WebhookReport{Present: true, Seen: first})
	if gs := h.gaps(); len(gs) != 0 {
		t.Fatalf("gaps while the webhook is in place: %s", mustJSON(gs))
	}
	// An hour later it is gone, and created again.
	h.clock.Advance(time.Hour)
	created := h.clock.Now()
	_ = h.b.Webhook(h.ctx, testCompany, WebhookReport{Created: created, Seen: seen})
	gs := h.gaps()
	if len(gs) != 1 || gs[0].Reason != ReasonWebhookRecreated || !gs[0].From.Equal(seen.Add(-time.Minute)) || !gs[0].Until.Equal(created.Add(time.Minute)) {
		t.Fatalf("want a webhook_recreated gap from %s to %s, got %s", seen.Add(-time.Minute), created.Add(time.Minute), mustJSON(gs))
	}

	// Pipedrive reports a failed delivery: a possible ban around it.
	status, ldt := 500, h.clock.Now().Add(-5*time.Minute)
	_ = h.b.Webhook(h.ctx, testCompany, WebhookReport{Present: true, LastHTTPStatus: &status, LastDeliveryTime: &ldt, Seen: created})
	gs = h.gaps()
	if len(gs) != 1 || !strings.Contains(gs[0].Reason, ReasonWebhookStatus) || !gs[0].Until.Equal(ldt.Add(31*time.Minute)) {
		t.Fatalf("want the status merged into the open gap until %s, got %s", ldt.Add(31*time.Minute), mustJSON(gs))
	}
}

func TestEvidenceOfUnconnectedCompaniesIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	// A hand-made webhook with the static credentials: nothing to read
	// its data with.
	h.b.Delivered("777", 1, 400, h.clock.Now())
	h.b.flush(h.ctx)
	if gs, _ := h.b.store.Gaps(h.ctx, 777); len(gs) != 0 {
		t.Errorf("gaps of an unconnected company: %s", mustJSON(gs))
	}
	if msgs := h.messages("pipedrive.gap.company"); len(msgs) != 0 {
		t.Errorf("status events %v", msgs)
	}
}

func TestIDSet(t *testing.T) {
	t.Parallel()
	for _, ids := range [][]int64{{2, 5, 9}, {9, 2, 5}} {
		s := sortedIDs(ids)
		for id, want := range map[int64]bool{2: true, 5: true, 9: true, 1: false, 3: false, 10: false} {
			if s.has(id) != want {
				t.Errorf("%v has %d = %t", ids, id, !want)
			}
		}
	}
	if sortedIDs(nil).has(1) {
		t.Error("empty set has 1")
	}
}

func TestConcurrentAdmitsMerge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	now := h.clock.Now()
	// Two replicas record the same outage of every company at once, a few
	// seconds apart on their clocks.
	var wg sync.WaitGroup
	for _, skew := range []time.Duration{0, -5 * time.Second} {
		wg.Go(func() {
			for c := range int64(20) {
				ev := Evidence{CompanyID: 3000 + c, Reason: ReasonOutage, Recovery: now.Add(skew),
					Window: Range{From: now.Add(-10 * time.Minute), Until: now.Add(skew + time.Minute)}}
				if _, err := h.b.store.admit(h.ctx, ev, now.Add(skew)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for c := range int64(20) {
		gs, err := h.b.store.Gaps(h.ctx, 3000+c)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 1 || !gs[0].Until.Equal(now.Add(time.Minute)) {
			t.Errorf("company %d: gaps %s, want one until %s", 3000+c, mustJSON(gs), now.Add(time.Minute))
		}
	}
}

// TestAbsorbedGapEndsWithTheOneThatAbsorbedIt: evidence that bridges two
// open gaps already announced merges them; the absorbed one is not left
// open for consumers: when the merged gap ends, a status event ends the
// absorbed one too, with the same state, over its own window, naming the
// gap it was merged into.
func TestAbsorbedGapEndsWithTheOneThatAbsorbedIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	now := h.clock.Now()
	windows := []Range{
		{From: now.Add(-20 * time.Minute), Until: now.Add(-15 * time.Minute)},
		{From: now.Add(-10 * time.Minute), Until: now.Add(-5 * time.Minute)},
		{From: now.Add(-16 * time.Minute), Until: now.Add(-9 * time.Minute)}, // bridges both
	}
	for _, w := range windows {
		if err := h.b.record(h.ctx, Evidence{CompanyID: testCompany, Reason: ReasonWebhookMissing, Window: w}); err != nil {
			t.Fatal(err)
		}
	}
	gs := h.gaps()
	if len(gs) != 1 || !gs[0].From.Equal(windows[0].From) || !gs[0].Until.Equal(windows[1].Until) {
		t.Fatalf("gaps %s, want one from %s to %s", mustJSON(gs), windows[0].From, windows[1].Until)
	}
	survivor := gs[0].ID
	h.lead(h.b)
	h.waitGap("ended", func(g Gap) bool { return g.Ended() })

	last := map[string]map[string]any{}
	var ids []string
	for _, m := range h.messages("pipedrive.gap.company") {
		id, _ := m.Body["id"].(string)
		if _, ok := last[id]; !ok {
			ids = append(ids, id)
		}
		last[id] = m.Body
	}
	if len(ids) != 2 {
		t.Fatalf("status events for gaps %v, want the two announced", ids)
	}
	for _, id := range ids {
		b := last[id]
		if b["state"] != StateRecovered {
			t.Errorf("gap %s last announced as %v, want %s", id, b["state"], StateRecovered)
		}
		if id == survivor {
			continue
		}
		own := func(w Range) bool {
			return b["from"] == w.From.Format(time.RFC3339) && b["until"] == w.Until.Format(time.RFC3339)
		}
		if b["merged_into"] != survivor || !own(windows[0]) && !own(windows[1]) {
			t.Errorf("absorbed gap %s ended as %v, want merged into %s over its own window", id, b, survivor)
		}
	}
}
