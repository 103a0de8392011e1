package subscriptions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

func TestReconcileCreatesThenIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.connect(42, "tok-42")
	if res := e.reconcile(42); res.err != nil || res.writes != 1 {
		t.Fatalf("first run: %+v, want one create", res)
	}
	w := e.assertOneCorrect(42)
	if w.Version != "2.0" || w.EventAction != "*" || w.EventObject != "*" || w.SubscriptionURL != testPublicURL+"/webhooks/pipedrive/42" {
		t.Errorf("webhook = %v", w)
	}
	if len(w.HTTPAuthPassword) < 43 {
		t.Errorf("webhook password has %d characters, want ≥ 32 random bytes", len(w.HTTPAuthPassword))
	}
	before := e.writes()
	if res := e.reconcile(42); res.err != nil || res.writes != 0 {
		t.Fatalf("second run: %+v, want no writes", res)
	}
	if e.writes() != before {
		t.Errorf("second run made %d writes at Pipedrive", e.writes()-before)
	}
	if c := e.company(42); c.Status.State != store.StateOK || c.Status.LastReconcile == nil || c.Status.LastError != "" {
		t.Errorf("status = %+v", c.Status)
	}
}

func TestReconcileRepairsDrift(t *testing.T) {
	t.Parallel()
	foreign := pipedrive.Webhook{SubscriptionURL: "https://zapier.example/hook", Name: "zapier", Version: "1.0", EventAction: "added", EventObject: "deal", IsActive: 1}
	cases := []struct {
		name  string
		drift func(e *env, c *store.Company, ours pipedrive.Webhook)
	}{
		{"deleted_behind_our_back", func(e *env, _ *store.Company, ours pipedrive.Webhook) { e.fake.DeleteBehindBack(ours.ID) }},
		{"duplicate_added", func(e *env, _ *store.Company, ours pipedrive.Webhook) { ours.ID = 0; e.fake.PutWebhook(42, ours) }},
		{"old_version_lingers", func(e *env, _ *store.Company, ours pipedrive.Webhook) {
			ours.ID, ours.Version = 0, "1.0"
			e.fake.PutWebhook(42, ours)
		}},
		{"replaced_by_wrong_events", func(e *env, _ *store.Company, ours pipedrive.Webhook) {
			e.fake.DeleteBehindBack(ours.ID)
			ours.ID, ours.EventObject = 0, "deal"
			e.fake.PutWebhook(42, ours)
		}},
		{"wrong_credentials", func(e *env, _ *store.Company, ours pipedrive.Webhook) {
			e.fake.DeleteBehindBack(ours.ID)
			ours.ID, ours.HTTPAuthPassword = 0, "leaked-old-password"
			e.fake.PutWebhook(42, ours)
		}},
		{"inactive", func(e *env, _ *store.Company, ours pipedrive.Webhook) {
			e.fake.DeleteBehindBack(ours.ID)
			ours.ID, ours.IsActive = 0, 0
			e.fake.PutWebhook(42, ours)
		}},
		{"public_url_changed", func(e *env, _ *store.Company, ours pipedrive.Webhook) {
			e.fake.DeleteBehindBack(ours.ID)
			ours.ID, ours.SubscriptionURL = 0, "https://old-host.example.com/webhooks/pipedrive/42"
			e.fake.PutWebhook(42, ours)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.connect(42, "tok-42")
			planted := e.fake.PutWebhook(42, foreign)
			if res := e.reconcile(42); res.err != nil {
				t.Fatal(res.err)
			}
			tc.drift(e, c, e.assertOneCorrect(42))
			if res := e.reconcile(42); res.err != nil {
				t.Fatal(res.err)
			}
			e.assertOneCorrect(42)
			found := false
			for _, w := range e.fake.Webhooks(42) {
				found = found || w.ID == planted.ID
			}
			if !found {
				t.Error("a foreign webhook was deleted")
			}
			if got := e.fake.MaxConcurrentWebhooks(42); got > 3 { // foreign + at most two of ours
				t.Errorf("company had %d webhooks at once", got)
			}
			if res := e.reconcile(42); res.writes != 0 {
				t.Errorf("run after repair made %d writes", res.writes)
			}
		})
	}
}

func TestReconcileFaults(t *testing.T) {
	t.Parallel()
	t.Run("rate_limited_respects_retry_after", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		e.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).WithRetryAfter(30*time.Second))
		res := e.reconcile(42)
		if !errors.Is(res.err, pipedrive.ErrRateLimited) || res.permanent || res.retryAfter < 30*time.Second {
			t.Fatalf("result = %+v, want a temporary 429 with retryAfter ≥ 30s", res)
		}
		if n := e.fake.CallCount("", ""); n != 2 { // users/me + the one list
			t.Errorf("fake saw %d calls, want 2: no retry inside the run", n)
		}
	})
	t.Run("lost_create_response_no_duplicate", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		e.fake.FailNext(pipedrive.RouteCreateWebhook, 1, pipedrivetest.LoseResponse())
		if res := e.reconcile(42); !errors.Is(res.err, pipedrive.ErrTransport) || res.permanent {
			t.Fatalf("result = %+v, want a temporary transport error", res)
		}
		if c := e.company(42); c.Status.State != store.StateError {
			t.Errorf("state = %q, want error", c.Status.State)
		}
		if res := e.reconcile(42); res.err != nil || res.writes != 0 {
			t.Fatalf("second run = %+v, want it to adopt the created webhook", res)
		}
		e.assertOneCorrect(42)
		if got := e.fake.MaxConcurrentWebhooks(42); got != 1 {
			t.Errorf("company had %d webhooks at once, want 1", got)
		}
	})
	t.Run("create_timeout_no_duplicate", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		e.fake.FailNext(pipedrive.RouteCreateWebhook, 1, pipedrivetest.Timeout(time.Second))
		if res := e.reconcile(42); res.err == nil || res.permanent {
			t.Fatalf("result = %+v, want a temporary error", res)
		}
		time.Sleep(600 * time.Millisecond) // let the slow create land
		e.reconcile(42)
		e.assertOneCorrect(42)
	})
	t.Run("server_error_backs_off", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		e.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(500))
		if res := e.reconcile(42); !errors.Is(res.err, pipedrive.ErrServer) || res.permanent {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("unauthorized_is_terminal", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "regenerated"}) // old token revoked
		res := e.reconcile(42)
		if !errors.Is(res.err, pipedrive.ErrUnauthorized) || !res.permanent {
			t.Fatalf("result = %+v, want a permanent 401", res)
		}
		c := e.company(42)
		if c.Status.State != store.StateError || !strings.Contains(c.Status.LastError, "401") {
			t.Errorf("status = %+v", c.Status)
		}
	})
	t.Run("webhook_limit_reached", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		for i := range 40 {
			e.fake.PutWebhook(42, pipedrive.Webhook{SubscriptionURL: "https://other.example/" + string(rune('a'+i%26)), Name: "other", Version: "2.0", EventAction: "*", EventObject: "*", IsActive: 1})
		}
		res := e.reconcile(42)
		if !errors.Is(res.err, pipedrive.ErrLimitReached) || !res.permanent {
			t.Fatalf("result = %+v, want a permanent 422", res)
		}
		if len(e.fake.Webhooks(42)) != 40 {
			t.Error("foreign webhooks were touched")
		}
	})
	t.Run("html_block_page_backs_off_long", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.connect(42, "tok-42")
		e.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.HTMLBlock())
		res := e.reconcile(42)
		if !errors.Is(res.err, pipedrive.ErrForbidden) || res.permanent || res.retryAfter < 30*time.Minute {
			t.Fatalf("result = %+v, want a 30-minute back-off", res)
		}
	})
	t.Run("no_public_url", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(o *Options) { o.WebhookURL = nil })
		e.connect(42, "tok-42")
		res := e.reconcile(42)
		if res.err == nil || !res.permanent || e.fake.CallCount("", "") != 1 {
			t.Fatalf("result = %+v, calls %d: want a permanent error before any API call", res, e.fake.CallCount("", ""))
		}
	})
	t.Run("unknown_company_is_gone", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if res := e.reconcile(7); !res.gone {
			t.Fatalf("result = %+v, want gone", res)
		}
	})
}

// TestSchedulerNoHotLoop runs the scheduler with a fake clock: a terminal
// error waits for the resync, a 429 waits for Retry-After, a trigger runs
// at once, and repeated triggers coalesce.
func TestSchedulerNoHotLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.connect(42, "tok-42")
	e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "regenerated"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.m.sched.Run(ctx)
	res := <-e.m.sched.Trigger(42)
	if !res.permanent {
		t.Fatalf("result = %+v", res)
	}
	lists := func() int { return e.fake.CallCount("", pipedrive.RouteListWebhooks) }
	if lists() != 1 {
		t.Fatalf("lists = %d", lists())
	}
	e.clock.Advance(30 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if lists() != 1 {
		t.Fatalf("a terminal error was retried before the resync: %d lists", lists())
	}
	// The user fixes the token: the next resync (1h ± 10%) repairs it.
	e.m.store.Modify(ctx, 42, func(c *store.Company) error { c.Secrets.APIToken = "regenerated"; return nil })
	e.clock.Advance(40 * time.Minute)
	waitFor(t, func() bool { return e.company(42).Status.State == store.StateOK })

	// A 429 with Retry-After 120s: nothing before, one run after.
	e.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).WithRetryAfter(120*time.Second))
	n := lists()
	if res := <-e.m.sched.Trigger(42); !errors.Is(res.err, pipedrive.ErrRateLimited) {
		t.Fatalf("result = %+v", res)
	}
	e.clock.Advance(100 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if lists() != n+1 {
		t.Fatalf("retried %d times before Retry-After passed", lists()-n-1)
	}
	e.clock.Advance(30 * time.Second)
	waitFor(t, func() bool { return lists() == n+2 })

	// Coalescing: three triggers during a (slow) run make one more run.
	n = lists()
	e.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Timeout(300*time.Millisecond))
	first := e.m.sched.Trigger(42)
	waitFor(t, func() bool { return lists() == n+1 })
	b, c, d := e.m.sched.Trigger(42), e.m.sched.Trigger(42), e.m.sched.Trigger(42)
	for _, ch := range []<-chan result{first, b, c, d} {
		<-ch
	}
	if lists() != n+2 {
		t.Errorf("four triggers made %d runs, want 2 (the running one and one more)", lists()-n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
