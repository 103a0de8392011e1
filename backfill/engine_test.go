package backfill

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

func item(entity string, id int, added, updated time.Time, deleted bool) Item {
	return Item{Entity: entity, ID: fmt.Sprint(id), AddTime: added, UpdateTime: updated, Deleted: deleted, Format: FormatV2,
		Data: fmt.Appendf(nil, `{"id":%d,"update_time":%q,"is_deleted":%t}`, id, updated.Format(time.RFC3339), deleted)}
}

type fixture struct {
	*harness
	deals, persons, leads *memSource
}

func newFixture(t *testing.T, tune ...func(*Options)) *fixture {
	f := &fixture{
		deals:   &memSource{name: "GET /api/v2/deals", entity: "deal", cost: 10, size: 2},
		persons: &memSource{name: "GET /api/v2/persons", entity: "person", cost: 10, size: 2},
		leads:   &memSource{name: "GET /v1/leads", entity: "lead", cost: 20, size: 500},
	}
	plan := Plan{Probe: probeOf{srcs: []*memSource{f.deals, f.persons}}, Always: []Source{f.leads}, Lists: []Source{f.deals, f.persons}}
	f.harness = newHarness(t, plan, tune...)
	return f
}

// window requests a manual backfill of [from, until) minutes from the
// fake clock's start.
func (f *fixture) request(from, until time.Time) Gap {
	f.t.Helper()
	g, err := f.b.Request(f.ctx, testCompany, Range{From: from, Until: until}, false)
	if err != nil {
		f.t.Fatal(err)
	}
	return g
}

func (f *fixture) ended(id string) Gap {
	f.t.Helper()
	return f.waitGap(id+" ended", func(g Gap) bool { return g.ID == id && g.Ended() })
}

func TestRunRecoversEachObjectOnceInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start := f.clock.Now()
	from, until := start.Add(-30*time.Minute), start.Add(-time.Minute)
	f.deals.add(
		item("deal", 1, from.Add(-time.Hour), from.Add(5*time.Minute), false),  // change
		item("deal", 2, from.Add(time.Minute), from.Add(7*time.Minute), false), // create
		item("deal", 3, from.Add(-time.Hour), from.Add(9*time.Minute), true),   // delete
		item("deal", 4, from.Add(-time.Hour), from.Add(-time.Minute), false),   // before the window
	)
	f.persons.add(item("person", 7, from.Add(-time.Hour), from.Add(6*time.Minute), false))
	f.leads.add(item("lead", 8, from.Add(2*time.Minute), from.Add(8*time.Minute), false))
	f.lead(f.b)
	g := f.ended(f.request(from, until).ID)
	if g.State != StateRecovered || g.Events != 5 {
		t.Fatalf("gap = %s, want recovered with 5 events", mustJSON(g))
	}
	// Probe 20 + leads 20 + deals 2 pages + persons 1 page.
	if g.TokensSpent != 20+20+2*10+10 {
		t.Errorf("tokens = %d", g.TokensSpent)
	}
	var got []string
	for _, m := range f.messages("pipedrive.*.*") {
		if m.Subject == "pipedrive.gap.company" {
			continue
		}
		if h := m.Header[event.HeaderBackfill]; len(h) != 1 || h[0] != g.ID {
			t.Errorf("%s: Pipedrive-Backfill = %v, want %s", m.Subject, h, g.ID)
		}
		meta := m.Body["meta"].(map[string]any)
		bf := meta["backfill"].(map[string]any)
		if bf["run"] != g.ID || bf["format"] != FormatV2 || meta["attempt"] != 0.0 || meta["host"] != "acme.pipedrive.com" {
			t.Errorf("%s: meta = %v", m.Subject, meta)
		}
		if meta["action"] == "delete" && (m.Body["data"] != nil || m.Body["previous"] == nil) {
			t.Errorf("delete: data %v previous %v, want null and the last state", m.Body["data"], m.Body["previous"])
		}
		got = append(got, m.Subject+":"+meta["entity_id"].(string))
	}
	want := []string{"pipedrive.change.deal:1", "pipedrive.change.person:7", "pipedrive.create.deal:2", "pipedrive.create.lead:8", "pipedrive.delete.deal:3"}
	if !slices.Equal(got, want) {
		t.Errorf("published %v, want (in update-time order) %v", got, want)
	}
	states := []string{}
	for _, m := range f.messages("pipedrive.gap.company") {
		states = append(states, m.Body["state"].(string))
	}
	if !slices.Equal(states, []string{StateOpen, StateRunning, StateRecovered}) {
		t.Errorf("status events %v", states)
	}

	// The same window again stores nothing new.
	g2 := f.ended(f.request(from, until).ID)
	if g2.State != StateRecovered || g2.Events != 0 {
		t.Errorf("second run = %s, want recovered with 0 new events", mustJSON(g2))
	}
}

func TestQuietWindowCostsTheProbeAndLeads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	f.deals.add(item("deal", 1, now.Add(-2*time.Hour), now.Add(-2*time.Hour), false))
	f.lead(f.b)
	g := f.ended(f.request(now.Add(-30*time.Minute), now.Add(-time.Minute)).ID)
	if g.State != StateRecovered || g.Events != 0 || g.TokensSpent != 40 {
		t.Errorf("gap = %s, want recovered, 0 events, 40 tokens", mustJSON(g))
	}
	if n := f.deals.Calls() + f.persons.Calls(); n != 0 {
		t.Errorf("%d list calls in a quiet window", n)
	}
}

func TestTokenCapStopsWithUncoveredRest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.MaxTokens = 60 })
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	for i := range 6 { // three pages of deals
		f.deals.add(item("deal", i+1, from.Add(-time.Hour), from.Add(time.Duration(i+1)*time.Minute), false))
	}
	f.persons.add(item("person", 9, from.Add(-time.Hour), from.Add(90*time.Second), false))
	f.lead(f.b)
	g := f.ended(f.request(from, now).ID)
	// probe 20 + leads 20 + deals page 1 (10) + persons (10) = 60: the
	// second deals page would pass the cap.
	if g.State != StateIncomplete || g.TokensSpent != 60 || len(g.Uncovered) != 1 {
		t.Fatalf("gap = %s, want incomplete at 60 tokens with one uncovered range", mustJSON(g))
	}
	// Deals 1 and 2 and person 9 are recovered; the rest from deal 2's time.
	if u := g.Uncovered[0]; !u.From.Equal(from.Add(2*time.Minute)) || !u.Until.Equal(now) || g.Events != 3 {
		t.Errorf("uncovered %v, events %d; want from %s, 3 events", u, g.Events, from.Add(2*time.Minute))
	}
	last := f.messages("pipedrive.gap.company")
	if s := last[len(last)-1].Body; s["state"] != StateIncomplete || len(s["uncovered"].([]any)) != 1 {
		t.Errorf("last status event %v", s)
	}
}

func TestWindowBeyondHorizonIsIncompleteWithoutCalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	f.lead(f.b)
	g := f.ended(f.request(now.Add(-40*24*time.Hour), now.Add(-31*24*time.Hour)).ID)
	if g.State != StateIncomplete || g.TokensSpent != 0 || len(g.Uncovered) != 1 || !g.Uncovered[0].From.Equal(now.Add(-40*24*time.Hour)) {
		t.Errorf("gap = %s, want incomplete, whole window uncovered, no tokens", mustJSON(g))
	}
	if n := f.deals.Calls() + f.leads.Calls(); n != 0 {
		t.Errorf("%d calls", n)
	}
}

func TestRateLimitedRunWaitsAndPublishesOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	for i := range 5 {
		f.deals.add(item("deal", i+1, from.Add(-time.Hour), from.Add(time.Duration(i+1)*time.Minute), false))
	}
	f.deals.fail = func(_ context.Context, call int) error {
		if call == 2 {
			return &pipedrive.APIError{Status: http.StatusTooManyRequests, Kind: pipedrive.ErrRateLimited, RetryAfter: 7 * time.Second,
				RateLimit: pipedrive.RateLimit{Limit: 40, Remaining: 0, DailyLimit: -1, DailyRemaining: -1}}
		}
		return nil
	}
	pub := &countingPublisher{Publisher: f.relay}
	f.b.pub = pub
	f.lead(f.b)
	g := f.ended(f.request(from, now).ID)
	if g.State != StateRecovered || g.Events != 5 {
		t.Fatalf("gap = %s", mustJSON(g))
	}
	if !slices.Contains(f.clock.Sleeps(), 7*time.Second) {
		t.Errorf("waits %v, want the 7 s of Retry-After", f.clock.Sleeps())
	}
	if pub.duplicates != 0 {
		t.Errorf("%d publishes were duplicates", pub.duplicates)
	}
}

// countingPublisher counts the publishes JetStream reported as duplicates.
type countingPublisher struct {
	Publisher
	duplicates int
}

func (c *countingPublisher) Publish(ctx context.Context, ev *event.Event) (event.Ack, error) {
	ack, err := c.Publisher.Publish(ctx, ev)
	if ack.Duplicate {
		c.duplicates++
	}
	return ack, err
}

func TestNextLeaderResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	for i := range 8 { // four pages
		f.deals.add(item("deal", i+1, from.Add(-time.Hour), from.Add(time.Duration(i+1)*time.Minute), false))
	}
	first := f.b
	stopFirst := f.lead(first)
	lost := make(chan struct{})
	f.deals.fail = func(ctx context.Context, call int) error {
		if call == 3 { // the lead is lost while the third page is read
			close(lost)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	g := f.request(from, now)
	<-lost
	stopFirst()
	f.deals.mu.Lock()
	f.deals.fail = nil
	f.deals.mu.Unlock()
	mid := f.waitGap("left running", func(x Gap) bool { return x.ID == g.ID })
	if mid.State != StateRunning {
		t.Fatalf("gap after the lost lead = %s, want running", mustJSON(mid))
	}
	callsBefore := f.deals.Calls()

	second := f.start()
	f.lead(second)
	g = f.ended(g.ID)
	if g.State != StateRecovered {
		t.Fatalf("gap = %s", mustJSON(g))
	}
	// The next leader read pages 3 and 4 only, not the first two again.
	if n := f.deals.Calls() - callsBefore; n != 2 {
		t.Errorf("next leader made %d deals calls, want 2", n)
	}
	seen := map[string]int{}
	for _, m := range f.messages("pipedrive.*.deal") {
		seen[m.Body["meta"].(map[string]any)["entity_id"].(string)]++
	}
	for i := range 8 {
		if n := seen[fmt.Sprint(i+1)]; n != 1 {
			t.Errorf("deal %d stored %d times", i+1, n)
		}
	}
}

func TestDryRunSpendsOnlyTheProbe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	f.deals.add(item("deal", 1, from.Add(-time.Hour), from.Add(time.Minute), false), item("deal", 2, from, from.Add(2*time.Minute), false))
	g, err := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !g.DryRun || g.Events != 2 || g.TokensSpent != 20 || g.EstimatedTokens != 20+20+10+10 {
		t.Errorf("dry run = %s", mustJSON(g))
	}
	if n := f.deals.Calls() + f.persons.Calls() + f.leads.Calls(); n != 0 {
		t.Errorf("%d calls besides the probe", n)
	}
	if msgs := f.messages("pipedrive.>"); len(msgs) != 0 {
		t.Errorf("dry run published %d messages", len(msgs))
	}
	if gs := f.gaps(); len(gs) != 0 {
		t.Errorf("dry run stored gaps %s", mustJSON(gs))
	}
}

// serve lets d pass while the gateway serves: the watermark advances.
func (f *fixture) serve(d time.Duration) {
	for end := f.clock.Now().Add(d); f.clock.Now().Before(end); {
		f.clock.Advance(10 * time.Second)
		f.b.flush(f.ctx)
	}
}

func TestOutageGetsSecondPass(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.lead(f.b)
	f.b.flush(f.ctx)
	f.clock.Advance(10 * time.Minute)
	f.b.flush(f.ctx) // the watermark is stale: an outage gap
	recovery := f.clock.Now()
	f.serve(2 * time.Minute)
	first := f.waitGap("outage recovered", func(g Gap) bool { return g.Reason == ReasonOutage && g.Ended() })
	if first.State != StateRecovered {
		t.Fatalf("outage gap = %s", mustJSON(first))
	}
	second := f.waitGap("second pass", func(g Gap) bool { return g.Reason == ReasonSecondPass })
	if second.State != StateOpen || !second.From.Equal(first.Until) || !second.Until.Equal(recovery.Add(35*time.Minute)) {
		t.Fatalf("second pass = %s, want open from %s to %s", mustJSON(second), first.Until, recovery.Add(35*time.Minute))
	}
	// A change made while a ban may still drop events.
	f.deals.add(item("deal", 5, recovery.Add(-time.Hour), recovery.Add(20*time.Minute), false))
	f.serve(35 * time.Minute)
	second = f.ended(second.ID)
	if second.State != StateRecovered || second.Events != 1 {
		t.Errorf("second pass = %s, want the deal recovered", mustJSON(second))
	}
}

func TestSecondPassEndsAtFirstDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.lead(f.b)
	f.b.flush(f.ctx)
	f.clock.Advance(10 * time.Minute)
	// Back after the outage; Pipedrive delivers a first attempt 5 s later:
	// no ban is in force from then on.
	recovery := f.clock.Now()
	f.b.Delivered(itoa(testCompany), 1, 200, recovery.Add(5*time.Second))
	f.b.flush(f.ctx)
	f.serve(2 * time.Minute)
	second := f.waitGap("second pass ended", func(g Gap) bool { return g.Reason == ReasonSecondPass && g.Ended() })
	if want := recovery.Add(5*time.Second + time.Minute); second.State != StateRecovered || !second.Until.Equal(want) {
		t.Errorf("second pass = %s, want recovered until %s, not 35 minutes later", mustJSON(second), want)
	}
}
