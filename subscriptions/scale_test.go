package subscriptions

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// newScaleEnv is newEnv with a client that waits longer for answers:
// these tests make hundreds of calls on a loaded machine, and a timeout
// would become a back-off on the fake clock.
func newScaleEnv(t *testing.T, edit func(*Options)) *env {
	e := newEnv(t) // its manager is replaced
	e.api = pipedrive.New(pipedrive.Options{APIURL: e.fake.URL(), Timeout: 10 * time.Second, Now: e.clock.Now})
	e.m = e.newManager(edit)
	return e
}

// rangeTokens are the tokens of the fake's companies first … first+n-1.
func rangeTokens(n int, first int64) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = pipedrivetest.RangeToken(first + int64(i))
	}
	return out
}

// allOK reports whether every company in ids is stored with state ok.
func (e *env) allOK(ids ...int64) bool {
	for _, id := range ids {
		c, err := e.inspect.Get(context.Background(), id)
		if err != nil || c.Status.State != store.StateOK {
			return false
		}
	}
	return true
}

// ids are first … first+n-1.
func ids(n int, first int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = first + int64(i)
	}
	return out
}

// advanceUntil moves the fake clock by step, giving the manager a moment
// after each step, until cond holds; it returns the fake time it took.
func (e *env) advanceUntil(step, limit time.Duration, cond func() bool) time.Duration {
	e.t.Helper()
	var passed time.Duration
	for !cond() {
		if passed >= limit {
			e.t.Fatalf("condition not met within %v of fake time", limit)
		}
		e.clock.Advance(step)
		passed += step
		deadline := time.Now().Add(200 * time.Millisecond)
		for !cond() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return passed
}

func (e *env) meCalls() int { return e.fake.CallCount("", pipedrive.RouteMe) }

// TestConfiguredTokensRetried: PIPEDRIVE_API_TOKENS entries whose
// /users/me answers 429 or 500 at start are listed as pending (by
// position, never by value) and counted, readiness does not wait for them,
// and each company is connected with exactly one webhook as soon as the
// fault is over: after the Retry-After, or one back-off step.
func TestConfiguredTokensRetried(t *testing.T) {
	t.Parallel()
	const n = 4
	cases := []struct {
		name  string
		fault pipedrivetest.Fault
		times int // faulty answers in all
		// within is how much fake time may pass between the last faulty
		// answer and the last company connected.
		within time.Duration
	}{
		{name: "429_retry_after", fault: pipedrivetest.Status(http.StatusTooManyRequests).WithRetryAfter(30 * time.Second), times: n, within: 31 * time.Second},
		{name: "500_twice_each", fault: pipedrivetest.Status(http.StatusInternalServerError), times: 2 * n, within: 11 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tokens := rangeTokens(n, 101)
			e := newScaleEnv(t, func(o *Options) { o.APITokens, o.Concurrency = tokens, n })
			e.fake.AddCompanies(n, 101)
			e.fake.FailNext(pipedrive.RouteMe, tc.times, tc.fault)
			runManager(t, e.m)
			waitFor(t, func() bool { return e.meCalls() >= n })

			// Pending meanwhile: listed, counted, not in the way of /readyz.
			waitFor(t, func() bool { return e.m.tokens.counts()[tokenPending] == n })
			views, err := e.m.Companies(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(views)
			if len(views) != n || strings.Contains(string(raw), "token-") {
				t.Fatalf("admin list while pending: %s", raw)
			}
			for i, v := range views {
				if v.TokenEntry != i+1 || v.CompanyID != 0 || v.State != store.StatePending || v.LastHTTPStatus == nil || v.LastError == "" {
					t.Errorf("entry %d listed as %+v", i+1, v)
				}
			}
			waitFor(t, func() bool { return e.m.Ready(context.Background()) == nil })

			// The fault ends with its last answer; time the connects from there.
			faultOver := e.advanceUntil(time.Second, 5*time.Minute, func() bool { return e.meCalls() >= tc.times })
			took := e.advanceUntil(time.Second, 5*time.Minute, func() bool { return e.allOK(ids(n, 101)...) })
			t.Logf("faults over after %v of fake time; every company connected %v later", faultOver, took)
			if took > tc.within {
				t.Errorf("connected %v after the fault ended, want within %v", took, tc.within)
			}
			for _, id := range ids(n, 101) {
				e.assertOneCorrect(id)
			}
			if got := e.fake.CallCount("", pipedrive.RouteCreateWebhook); got != n {
				t.Errorf("%d webhooks created, want %d", got, n)
			}
			if got := e.m.tokens.counts(); got[tokenConnected] != n || got[tokenPending] != 0 {
				t.Errorf("entries by state %v", got)
			}
			if views, _ := e.m.Companies(context.Background()); len(views) != n || views[0].TokenEntry != 0 {
				t.Errorf("admin list once connected: %+v", views)
			}
		})
	}
}

// TestRejectedTokenWaitsForTheResync: a token Pipedrive refuses is listed
// as error and not tried again before the next resync.
func TestRejectedTokenWaitsForTheResync(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.APITokens = []string{"revoked-token"} })
	runManager(t, e.m)
	waitFor(t, func() bool { return e.m.tokens.counts()[tokenError] == 1 })
	views, _ := e.m.Companies(context.Background())
	if len(views) != 1 || views[0].State != store.StateError || *views[0].LastHTTPStatus != http.StatusUnauthorized {
		t.Fatalf("admin list: %+v", views)
	}
	e.clock.Advance(50 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if got := e.meCalls(); got != 1 {
		t.Errorf("%d /users/me calls before the resync, want 1", got)
	}
}

// TestConnectConcurrency connects 200 companies through a fake that
// answers after 50 ms: the calls overlap up to RECONCILE_CONCURRENCY and
// never beyond it (counted at the fake, not timed), and every company ends
// with exactly one webhook from three calls.
func TestConnectConcurrency(t *testing.T) {
	t.Parallel()
	const n, workers = 200, 32
	// On the wall clock: a call that times out on a loaded machine is
	// retried after its back-off instead of waiting for a fake clock.
	e := newScaleEnv(t, func(o *Options) { o.APITokens, o.Concurrency, o.Clock = rangeTokens(n, 1), workers, clock.Real() })
	e.fake.AddCompanies(n, 1)
	e.fake.SetLatency(50 * time.Millisecond)
	runManager(t, e.m)
	deadline := time.Now().Add(60 * time.Second)
	for !e.allOK(ids(n, 1)...) {
		if time.Now().After(deadline) {
			t.Fatal("companies not connected within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	peak := e.fake.MaxInFlight()
	t.Logf("at most %d calls in flight", peak)
	if peak > workers || peak < workers/2 {
		t.Errorf("at most %d calls in flight, want between %d and %d", peak, workers/2, workers)
	}
	for _, id := range ids(n, 1) {
		if hooks := e.fake.Webhooks(id); len(hooks) != 1 || e.fake.MaxConcurrentWebhooks(id) != 1 {
			t.Fatalf("company %d: webhooks %v", id, hooks)
		}
	}
	if got := e.fake.CallCount("", ""); got != 3*n {
		t.Errorf("%d API calls, want %d (users/me, list, create each)", got, 3*n)
	}
}

// TestRateLimitedCompanyDoesNotDelayOthers: with a single worker, one
// company answering 429 with Retry-After 60 s for a minute does not hold
// it: the others are reconciled at once, the limited one is not called
// again before the minute is over (not even when triggered), and then it is.
func TestRateLimitedCompanyDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	e := newScaleEnv(t, func(o *Options) { o.Concurrency = 1 })
	for id := int64(1); id <= 10; id++ {
		e.connect(id, pipedrivetest.RangeToken(id))
	}
	e.fake.ResetCalls()
	limited := pipedrivetest.Status(http.StatusTooManyRequests).WithRetryAfter(time.Minute)
	e.fake.FailCompany(1, e.clock.Now().Add(time.Minute), limited)
	callsOf := func(id int64) int {
		n := 0
		for _, c := range e.fake.Calls() {
			if c.CompanyID == id {
				n++
			}
		}
		return n
	}
	runManager(t, e.m)
	// No fake time passes: the others must not wait for company 1's minute.
	waitFor(t, func() bool { return e.allOK(ids(9, 2)...) })
	if c := e.company(1); c.Status.State != store.StateError || !strings.Contains(c.Status.LastError, "429") {
		t.Errorf("company 1 status %+v", c.Status)
	}
	e.waitLeader()
	rep, err := e.m.send(context.Background(), opReconcile, 1)
	if err != nil || !strings.Contains(rep.Error, errPaused.Error()) {
		t.Errorf("trigger during the wait: %+v %v", rep, err)
	}
	e.clock.Advance(59 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := callsOf(1); got != 1 {
		t.Fatalf("company 1 called %d times during its minute, want 1", got)
	}
	e.clock.Advance(time.Second)
	waitFor(t, func() bool { return e.allOK(1) })
	e.assertOneCorrect(1)
	if got := callsOf(1); got != 3 {
		t.Errorf("company 1: %d calls, want 3 (the 429, then list and create)", got)
	}
}

// TestRestartCost: a restart with unchanged PIPEDRIVE_API_TOKENS makes no
// /users/me call and spreads the first reconciles (one list per company,
// at about one per 50 ms, not a burst); with one token replaced it makes
// exactly one.
func TestRestartCost(t *testing.T) {
	t.Parallel()
	const n = 40
	tokens := rangeTokens(n, 1)
	e := newScaleEnv(t, func(o *Options) { o.APITokens = tokens })
	e.fake.AddCompanies(n, 1)
	stop := runManager(t, e.m)
	waitFor(t, func() bool { return e.allOK(ids(n, 1)...) })
	if got := e.meCalls(); got != n {
		t.Fatalf("first start: %d /users/me calls, want %d", got, n)
	}
	stop()

	restart := func(tokens []string) func() {
		e.fake.ResetCalls()
		m := e.newManager(func(o *Options) { o.APITokens = tokens })
		e.m = m
		stop := runManager(t, m)
		e.waitLeader()
		// The leader has listed the store and scheduled every company.
		waitFor(t, func() bool { return m.sched.Len() >= n })
		return stop
	}
	lists := func() int { return e.fake.CallCount("", pipedrive.RouteListWebhooks) }

	stop = restart(tokens)
	time.Sleep(200 * time.Millisecond)
	if got := lists(); got > 1 {
		t.Errorf("%d lists at once after the restart, want the first only", got)
	}
	// The watch opens each record once; the leader schedules from what it
	// delivered instead of reading every record again. The first company
	// due may have run: its reconcile reads its record, and the watch
	// opens the status it wrote.
	if got := e.m.store.Opened(); got > n+2 {
		t.Errorf("the restart opened %d records, want %d (each once, by the watch) and 2 for the first due", got, n)
	}
	e.clock.Advance(time.Second) // half the window of 40 × 50 ms
	// The companies due by now run (however slowly a loaded machine gets
	// to them); the others stay due later on the fake clock.
	waitFor(t, func() bool { return lists() >= n/2-2 })
	time.Sleep(200 * time.Millisecond)
	if got := lists(); got > n/2+2 {
		t.Errorf("%d lists in the first second, want about %d", got, n/2)
	}
	e.clock.Advance(time.Second)
	waitFor(t, func() bool { return lists() == n })
	if got := e.meCalls(); got != 0 {
		t.Errorf("restart with unchanged tokens: %d /users/me calls, want 0", got)
	}
	if got := e.writes(); got != 0 {
		t.Errorf("restart without drift: %d writes", got)
	}
	perCompany := map[int64]int{}
	for _, c := range e.fake.Calls() {
		perCompany[c.CompanyID]++
	}
	for _, id := range ids(n, 1) {
		if perCompany[id] != 1 {
			t.Errorf("company %d: %d calls, want one list", id, perCompany[id])
		}
	}
	stop()

	// Company 3's admin generates a new token; the operator puts it in.
	e.fake.AddCompany(pipedrivetest.Company{ID: 3, APIToken: "replaced-3"})
	replaced := append([]string(nil), tokens...)
	replaced[2] = "replaced-3"
	restart(replaced)
	waitFor(t, func() bool { return e.meCalls() == 1 })
	waitFor(t, func() bool {
		c := e.company(3)
		return c.Secrets.APIToken == "replaced-3" && c.Status.State == store.StateOK
	})
	time.Sleep(100 * time.Millisecond)
	if got := e.meCalls(); got != 1 {
		t.Errorf("restart with one token replaced: %d /users/me calls, want 1", got)
	}
	e.assertOneCorrect(3)
}
