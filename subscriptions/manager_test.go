package subscriptions

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/grants"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// runManager runs m until the test ends (or stop is called) and returns stop.
func runManager(t *testing.T, m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// leaders counts replicas that currently lead.
type leaders struct {
	mu      sync.Mutex
	current map[string]bool
	maxSeen int
}

// track is a replica's Metrics that reports its lead to l.
func (l *leaders) track(id string) Metrics { return leaderMetrics(l.set(id)) }

func (l *leaders) set(id string) func(bool) {
	return func(on bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.current[id] = on
		n := 0
		for _, v := range l.current {
			if v {
				n++
			}
		}
		l.maxSeen = max(l.maxSeen, n)
	}
}

func (l *leaders) who() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, v := range l.current {
		if v {
			out = append(out, id)
		}
	}
	return out
}

// leaderMetrics measures nothing but the lead.
type leaderMetrics func(bool)

func (f leaderMetrics) Leader(on bool)                  { f(on) }
func (leaderMetrics) Reconciled(string, time.Duration)  {}
func (leaderMetrics) Company(View)                      {}
func (leaderMetrics) CompanyGone(int64)                 {}
func (leaderMetrics) Records(int, int)                  {}
func (leaderMetrics) APITokens(func() map[string]int64) {}

func TestLeaderElection(t *testing.T) {
	t.Parallel()
	l := &leaders{current: map[string]bool{}}
	// The scheduler runs on real time here: the lease does.
	e := newEnv(t, func(o *Options) { o.ReplicaID, o.Clock, o.Metrics = "a", clock.Real(), l.track("a") })
	e.connect(42, "tok-42")
	e.connect(43, "tok-43")
	b := e.newManager(func(o *Options) { o.ReplicaID, o.Clock, o.Metrics = "b", clock.Real(), l.track("b") })

	stopA := runManager(t, e.m)
	waitFor(t, func() bool { return len(l.who()) == 1 })
	runManager(t, b)
	waitFor(t, func() bool {
		return e.company(42).Status.State == store.StateOK && e.company(43).Status.State == store.StateOK
	})
	if who := l.who(); len(who) != 1 || who[0] != "a" {
		t.Fatalf("leaders = %v, want [a]", who)
	}

	// Kill the leader without a clean hand-over: its connection drops, so it
	// can neither renew nor release; b must take over after the TTL.
	e.m.nc.Close()
	stopA()
	killed := time.Now()
	waitFor(t, func() bool { w := l.who(); return len(w) == 1 && w[0] == "b" })
	t.Logf("takeover after %v (lease TTL 1.5s)", time.Since(killed))
	if took := time.Since(killed); took > 5*time.Second {
		t.Errorf("takeover took %v", took)
	}
	e.fake.DeleteBehindBack(e.company(42).WebhookID)
	rep, err := b.send(context.Background(), opReconcile, 42)
	if err != nil || rep.Error != "" {
		t.Fatalf("reconcile on the new leader: %+v %v", rep, err)
	}
	e.assertOneCorrect(42)
	e.assertOneCorrect(43)
	if l.maxSeen != 1 {
		t.Errorf("saw %d leaders at once", l.maxSeen)
	}
	for _, id := range []int64{42, 43} {
		if n := e.fake.MaxConcurrentWebhooks(id); n > 2 {
			t.Errorf("company %d had %d webhooks at once", id, n)
		}
	}
}

// TestOAuthConnect connects a company with an authorisation code, refreshes
// its access token before expiry and reports a revoked refresh token. The
// install routes around it are tested where they are built.
func TestOAuthConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runManager(t, e.m)
	e.waitLeader()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	e.fake.SetAccessTokenLifetime(time.Hour)
	ctx := context.Background()

	ticket, _, err := e.m.NewInstallTicket(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	authorize, browser, err := e.m.StartInstall(ctx, ticket)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authorize)
	if u.Query().Get("state") == "" || u.Query().Get("redirect_uri") != "https://hooks.example.com/oauth/callback" {
		t.Errorf("authorize URL = %s", authorize)
	}
	code := e.fake.IssueCode(55)
	v, err := e.m.FinishInstall(ctx, Callback{State: u.Query().Get("state"), Browser: browser, Code: code})
	if err != nil || v.CompanyID != 55 || v.Domain != "oauthco" || v.State != store.StateOK {
		t.Fatalf("connect: %+v %v", v, err)
	}
	c := e.company(55)
	if c.Auth != store.AuthOAuth || c.Secrets.RefreshToken == "" || c.Status.State != store.StateOK {
		t.Fatalf("company = %+v", c)
	}
	e.assertOneCorrect(55)
	if _, err := e.m.connectOAuth(ctx, code, grants.State{}); !errors.Is(err, ErrRejected) {
		t.Errorf("reused code: %v, want ErrRejected", err)
	}

	// Refresh before expiry: 56 minutes on, the token has < 5 min left.
	oldAccess := c.Secrets.AccessToken
	e.clock.Advance(56 * time.Minute)
	if rep, err := e.m.send(ctx, opReconcile, 55); err != nil || rep.Error != "" {
		t.Fatalf("reconcile after refresh: %+v %v", rep, err)
	}
	c = e.company(55)
	if c.Secrets.AccessToken == oldAccess || !c.Secrets.AccessExpiresAt.After(e.clock.Now().Add(50*time.Minute)) {
		t.Errorf("token not refreshed: expires %v", c.Secrets.AccessExpiresAt)
	}
	if e.fake.CallCount("", pipedrive.RouteToken) != 3 { // exchange, the refused reuse, one refresh
		t.Errorf("token calls = %d", e.fake.CallCount("", pipedrive.RouteToken))
	}

	// A revoked refresh token surfaces in the status.
	e.fake.RevokeToken(c.Secrets.RefreshToken)
	e.clock.Advance(56 * time.Minute)
	rep, err := e.m.send(ctx, opReconcile, 55)
	c = e.company(55)
	if err != nil || rep.Error == "" || !rep.Permanent || c.Status.State != store.StateError || !strings.Contains(c.Status.LastError, "refresh") {
		t.Errorf("after revoke: reply %+v %v, status %+v", rep, err, c.Status)
	}
}
