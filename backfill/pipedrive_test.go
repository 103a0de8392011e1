package backfill

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// pdFixture is a backfill over the real client against the HTTP fake.
type pdFixture struct {
	*harness
	pd  *pipedrivetest.Server
	api *hookedAPI
}

// hookedAPI is the real client with a hook before each call (to lose the
// lead at a chosen call).
type hookedAPI struct {
	*pipedrive.Client
	mu     sync.Mutex
	before func(ctx context.Context, route string) error
}

func (h *hookedAPI) hook(ctx context.Context, route string) error {
	h.mu.Lock()
	f := h.before
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(ctx, route)
}

func (h *hookedAPI) ListChanges(ctx context.Context, d string, c pipedrive.Credentials, r pipedrive.ListRequest) (pipedrive.Page, error) {
	if err := h.hook(ctx, "GET /api/v2/"+string(r.Kind)); err != nil {
		return pipedrive.Page{}, err
	}
	return h.Client.ListChanges(ctx, d, c, r)
}

func newPDFixture(t *testing.T, tune ...func(*Options)) *pdFixture {
	t.Helper()
	pd := pipedrivetest.NewServer(t)
	pd.AddCompany(pipedrivetest.Company{ID: testCompany, APIToken: "token-acme"})
	api := &hookedAPI{Client: pipedrive.New(pipedrive.Options{APIURL: pd.URL()})}
	f := &pdFixture{harness: newHarness(t, PipedrivePlan(api), tune...), pd: pd, api: api}
	pd.SetClock(f.clock.Now)
	f.companies.targets[testCompany] = Target{CompanyID: testCompany, Domain: "company9912345", Credentials: pipedrive.Credentials{APIToken: "token-acme"}}
	return f
}

// serve lets d pass while the gateway serves: the watermark advances.
func (f *pdFixture) serve(d time.Duration) {
	for end := f.clock.Now().Add(d); f.clock.Now().Before(end); {
		f.clock.Advance(10 * time.Second)
		f.b.flush(f.ctx)
	}
}

func (f *pdFixture) put(kind string, fields map[string]any, at time.Time) pipedrivetest.Object {
	return f.pd.Put(testCompany, pipedrivetest.Object{Kind: kind, Fields: fields, AddTime: at, UpdateTime: at})
}

// recovered lists the recovered events in the stream as subject:entity_id,
// in stream order, checking the marks every one must carry.
func (f *pdFixture) recovered(run string) []string {
	f.t.Helper()
	var out []string
	for _, m := range f.messages("pipedrive.>") {
		if m.Subject == "pipedrive.gap.company" {
			continue
		}
		meta, _ := m.Body["meta"].(map[string]any)
		if h := m.Header[event.HeaderBackfill]; len(h) != 1 || (run != "" && h[0] != run) {
			f.t.Errorf("%s: Pipedrive-Backfill = %v, want %s", m.Subject, h, run)
		}
		if meta["backfill"] == nil || meta["attempt"] != 0.0 {
			f.t.Errorf("%s: meta %v", m.Subject, meta)
		}
		out = append(out, fmt.Sprintf("%s:%v", m.Subject, meta["entity_id"]))
	}
	return out
}

func sameSet(got, want []string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestDowntimeRecoveredFromPipedrive(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	before := f.clock.Now().Add(-2 * time.Hour)
	deal1 := f.put("deal", map[string]any{"title": "Acme renewal"}, before)
	deal3 := f.put("deal", map[string]any{"title": "Archived soon"}, before)
	deal4 := f.put("deal", map[string]any{"title": "Deleted soon"}, before)
	person1 := f.put("person", map[string]any{"name": "Ann"}, before)
	f.put("organization", map[string]any{"name": "Acme"}, before)
	f.put("lead", map[string]any{"title": "Old lead"}, before)
	f.b.flush(f.ctx)
	f.serve(time.Minute)

	// The gateway is stopped; meanwhile the company works on.
	f.clock.Advance(2 * time.Minute)
	deal2 := f.put("deal", map[string]any{"title": "New deal"}, time.Time{})
	f.clock.Advance(time.Minute)
	f.pd.Change(testCompany, "deal", deal1.ID, map[string]any{"title": "Acme renewal 2027"})
	f.clock.Advance(time.Minute)
	f.pd.Delete(testCompany, "person", person1.ID)
	f.pd.Delete(testCompany, "deal", deal4.ID)
	f.clock.Advance(time.Minute)
	f.pd.Archive(testCompany, "deal", deal3.ID)
	f.clock.Advance(time.Minute)
	lead2 := f.put("lead", map[string]any{"title": "Inbound lead"}, time.Time{})
	f.clock.Advance(5 * time.Minute)

	// It starts again: the stale watermark opens the gap.
	f.start()
	f.lead(f.b)
	f.serve(2 * time.Minute)
	g := f.waitGap("outage ended", func(g Gap) bool { return g.Reason == ReasonOutage && g.Ended() })
	if g.State != StateRecovered || g.Events != 6 {
		t.Fatalf("gap = %s, want recovered with 6 events", mustJSON(g))
	}
	want := []string{
		"pipedrive.create.deal:" + itoa(deal2.ID), "pipedrive.change.deal:" + itoa(deal1.ID),
		"pipedrive.delete.person:" + itoa(person1.ID), "pipedrive.delete.deal:" + itoa(deal4.ID),
		"pipedrive.change.deal:" + itoa(deal3.ID), "pipedrive.create.lead:" + pipedrivetest.LeadUUID(testCompany, lead2.ID),
	}
	got := f.recovered(g.ID)
	if !sameSet(got, want) {
		t.Errorf("recovered %v, want each of %v once", got, want)
	}
	spent := f.pd.TokensSpent(testCompany)
	t.Logf("downtime of 10 minutes with 6 changes: %d tokens (%d by the gap), usage %v", spent, g.TokensSpent, f.pd.Usage())
	if g.TokensSpent != spent {
		t.Errorf("gap counts %d tokens, Pipedrive charged %d", g.TokensSpent, spent)
	}

	// The same window again stores nothing new.
	again, err := f.b.Request(f.ctx, testCompany, g.Window(), false)
	if err != nil {
		t.Fatal(err)
	}
	again = f.waitGap("second run ended", func(x Gap) bool { return x.ID == again.ID && x.Ended() })
	if again.State != StateRecovered || again.Events != 0 {
		t.Errorf("second run = %s, want recovered with nothing new", mustJSON(again))
	}
	if n := len(f.recovered("")); n != len(want) {
		t.Errorf("stream holds %d recovered events after the second run, want %d", n, len(want))
	}
}

func TestBanWindowRecoveredAfterNATSReturns(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	company := itoa(testCompany)
	deal := f.put("deal", map[string]any{"title": "Busy"}, f.clock.Now().Add(-time.Hour))
	f.b.flush(f.ctx)

	// NATS stops: every first attempt is answered 503, as the gateway does.
	f.ns.Stop()
	firstFail := f.clock.Now()
	for i := range 10 {
		f.clock.Advance(10 * time.Second)
		f.pd.Change(testCompany, "deal", deal.ID, map[string]any{"value": i})
		f.b.Delivered(company, 1, 503, f.clock.Now())
	}
	lastFail := f.clock.Now()
	f.ns.Restart()
	waitConnected(t, f.harness)
	f.lead(f.b)
	f.serve(20 * time.Second)
	open := f.waitGap("ban gap", func(g Gap) bool { return strings.Contains(g.Reason, ReasonFailedAttempt) })
	if open.State != StateOpen || open.From.After(firstFail.Add(-time.Minute)) || open.Until.Before(lastFail.Add(30*time.Minute)) {
		t.Fatalf("gap = %s, want open from before %s to after %s", mustJSON(open), firstFail, lastFail.Add(30*time.Minute))
	}
	// Pipedrive may have banned the webhook: changes in the 30 minutes
	// after are dropped too.
	f.serve(10 * time.Minute)
	person := f.put("person", map[string]any{"name": "During the ban"}, time.Time{})
	f.serve(25 * time.Minute)
	g := f.waitGap("ban gap ended", func(g Gap) bool { return g.ID == open.ID && g.Ended() })
	if g.State != StateRecovered {
		t.Fatalf("gap = %s", mustJSON(g))
	}
	want := []string{"pipedrive.change.deal:" + itoa(deal.ID), "pipedrive.create.person:" + itoa(person.ID)}
	if got := f.recovered(g.ID); !sameSet(got, want) {
		t.Errorf("recovered %v, want %v", got, want)
	}
}

func TestWebhookRecreatedWindowRecovered(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	created := f.clock.Now()
	_ = f.b.Webhook(f.ctx, testCompany, WebhookReport{Created: created})
	f.serve(time.Hour)
	seen := f.clock.Now()
	_ = f.b.Webhook(f.ctx, testCompany, WebhookReport{Present: true, Seen: created})
	// Pipedrive deletes the webhook; changes go nowhere until the next
	// reconcile creates it again.
	f.serve(10 * time.Minute)
	note := f.put("note", map[string]any{"content": "call back"}, time.Time{})
	f.serve(40 * time.Minute)
	_ = f.b.Webhook(f.ctx, testCompany, WebhookReport{Created: f.clock.Now(), Seen: seen})
	f.lead(f.b)
	f.serve(2 * time.Minute)
	g := f.waitGap("webhook gap ended", func(g Gap) bool { return g.Reason == ReasonWebhookRecreated && g.Ended() })
	if got, want := f.recovered(g.ID), []string{"pipedrive.create.note:" + itoa(note.ID)}; g.State != StateRecovered || !slices.Equal(got, want) {
		t.Errorf("gap %s recovered %v, want %v", mustJSON(g), got, want)
	}
}

func TestTokenCapAgainstPipedrive(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t, func(o *Options) { o.MaxTokens = 100 })
	now := f.clock.Now()
	from := now.Add(-2 * time.Hour)
	for i := range 3 {
		f.put("deal", map[string]any{"title": fmt.Sprint("deal ", i)}, from.Add(time.Duration(i+1)*time.Minute))
	}
	f.lead(f.b)
	g, err := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, false)
	if err != nil {
		t.Fatal(err)
	}
	g = f.waitGap("capped gap ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	if g.State != StateIncomplete || g.TokensSpent > 100 || len(g.Uncovered) != 1 || !g.Uncovered[0].Until.Equal(now) {
		t.Fatalf("gap = %s, want incomplete within 100 tokens", mustJSON(g))
	}
	if spent := f.pd.TokensSpent(testCompany); spent > 100 {
		t.Errorf("Pipedrive charged %d tokens past the cap", spent)
	}
	msgs := f.messages("pipedrive.gap.company")
	if last := msgs[len(msgs)-1].Body; last["state"] != StateIncomplete {
		t.Errorf("last status event %v", last)
	}
}

func TestOldWindowIncompleteWithoutCalls(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	f.lead(f.b)
	g, _ := f.b.Request(f.ctx, testCompany, Range{From: now.Add(-35 * 24 * time.Hour), Until: now.Add(-31 * 24 * time.Hour)}, false)
	g = f.waitGap("old gap ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	if g.State != StateIncomplete || len(g.Uncovered) != 1 {
		t.Errorf("gap = %s", mustJSON(g))
	}
	if n := f.pd.CallCount("", ""); n != 0 {
		t.Errorf("%d calls to Pipedrive", n)
	}
}

func TestRateLimitedAgainstPipedrive(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	for i := range 4 {
		f.put("deal", map[string]any{"title": fmt.Sprint("deal ", i)}, from.Add(time.Duration(i+1)*time.Minute))
	}
	f.pd.FailNext(pipedrive.RouteListDeals, 1, pipedrivetest.Status(http.StatusTooManyRequests).WithRetryAfter(7*time.Second))
	pub := &countingPublisher{Publisher: f.relay}
	f.b.pub = pub
	f.lead(f.b)
	g, _ := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, false)
	g = f.waitGap("ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	if g.State != StateRecovered || g.Events != 4 {
		t.Fatalf("gap = %s", mustJSON(g))
	}
	if !slices.Contains(f.clock.Sleeps(), 7*time.Second) {
		t.Errorf("waits %v, want Retry-After's 7 s", f.clock.Sleeps())
	}
	if pub.duplicates != 0 || len(f.recovered(g.ID)) != 4 {
		t.Errorf("%d duplicate publishes, %d stored", pub.duplicates, len(f.recovered(g.ID)))
	}
}

// stallingPublisher loses the lead at the nth recovered event: it blocks
// until the leader's context ends.
type stallingPublisher struct {
	Publisher
	mu   sync.Mutex
	n    int
	at   int
	lost chan struct{}
}

func (p *stallingPublisher) Publish(ctx context.Context, ev *event.Event) (event.Ack, error) {
	if ev.Object != "company" {
		p.mu.Lock()
		p.n++
		stall := p.n == p.at
		p.mu.Unlock()
		if stall {
			close(p.lost)
			<-ctx.Done()
			return event.Ack{}, ctx.Err()
		}
	}
	return p.Publisher.Publish(ctx, ev)
}

func TestLeaderRestartResumesAgainstPipedrive(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	from := now.Add(-2 * time.Hour)
	const deals = 1200 // three pages of 500
	for i := range deals {
		f.put("deal", map[string]any{"title": fmt.Sprint("deal ", i)}, from.Add(time.Duration(i+1)*time.Second))
	}
	person := f.put("person", map[string]any{"name": "late"}, now.Add(-time.Minute))
	first := f.b
	stall := &stallingPublisher{Publisher: f.relay, at: 700, lost: make(chan struct{})}
	first.pub = stall
	stop := f.lead(first)
	g, _ := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, false)
	<-stall.lost
	stop() // the lead is lost with deals' second page half published
	if mid, _ := f.b.store.get(f.ctx, testCompany, g.ID); mid.State != StateRunning || mid.Run == nil {
		t.Fatalf("gap after the lost lead: %s", mustJSON(mid))
	}
	dealsCalls := f.pd.CallCount("GET", pipedrive.RouteListDeals)

	f.lead(f.start())
	g = f.waitGap("ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	if g.State != StateRecovered {
		t.Fatalf("gap = %s", mustJSON(g))
	}
	// The next leader read deals from the second page on.
	if n := f.pd.CallCount("GET", pipedrive.RouteListDeals) - dealsCalls; n != 2 {
		t.Errorf("the next leader made %d deals calls, want 2 (pages 2 and 3)", n)
	}
	got := f.recovered(g.ID)
	seen := map[string]int{}
	for _, s := range got {
		seen[s]++
	}
	if len(seen) != deals+1 || len(got) != deals+1 || seen["pipedrive.create.person:"+itoa(person.ID)] != 1 {
		t.Errorf("stored %d events for %d objects, want %d, each once", len(got), len(seen), deals+1)
	}
}

func TestDryRunAgainstPipedrive(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	f.put("deal", map[string]any{"title": "one"}, from.Add(time.Minute))
	f.put("person", map[string]any{"name": "two"}, from.Add(2*time.Minute))
	g, err := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, true)
	if err != nil {
		t.Fatal(err)
	}
	if g.Events != 2 || g.TokensSpent != 20 || f.pd.TokensSpent(testCompany) != 20 || f.pd.CallCount("", "") != 1 {
		t.Errorf("dry run = %s, Pipedrive charged %d in %d calls; want the probe only", mustJSON(g), f.pd.TokensSpent(testCompany), f.pd.CallCount("", ""))
	}
	if msgs := f.messages("pipedrive.>"); len(msgs) != 0 {
		t.Errorf("dry run published %d messages", len(msgs))
	}
	t.Logf("dry run estimate: %d tokens", g.EstimatedTokens)
}

func TestLowDailyBudgetStopsEarly(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	from := now.Add(-time.Hour)
	f.put("deal", map[string]any{"title": "one"}, from.Add(time.Minute))
	// 1,000 of the company's 1,000,000 daily tokens left: far below the
	// share a backfill leaves to the company's other integrations.
	f.pd.SetDailyBudget(testCompany, 1000)
	f.lead(f.b)
	g, _ := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, false)
	g = f.waitGap("ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	if g.State != StateIncomplete || g.TokensSpent != 20 || len(g.Uncovered) != 1 || !strings.Contains(g.Error, "daily API budget") {
		t.Errorf("gap = %s, want incomplete after the probe, for the daily budget", mustJSON(g))
	}
}
