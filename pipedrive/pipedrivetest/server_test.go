package pipedrivetest_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

const token = "tok-1"

func setup(t *testing.T, opts pipedrive.Options) (*pipedrivetest.Server, *pipedrive.Client, pipedrive.Credentials) {
	t.Helper()
	s := pipedrivetest.NewServer(t)
	s.AddCompany(pipedrivetest.Company{ID: 1, Domain: "one", APIToken: token, UserID: 11})
	s.AddCompany(pipedrivetest.Company{ID: 2, Domain: "two", APIToken: "tok-2", UserID: 22})
	opts.APIURL, opts.OAuthURL = s.URL(), s.URL()
	return s, pipedrive.New(opts), pipedrive.Credentials{APIToken: token}
}

func hook(version, action string) pipedrive.CreateWebhookRequest {
	return pipedrive.CreateWebhookRequest{
		SubscriptionURL: "https://hooks.example.com/webhooks/pipedrive/1", EventAction: action,
		EventObject: "*", Name: "gw", Version: version, HTTPAuthUser: "u", HTTPAuthPassword: "p",
	}
}

func TestMaxConcurrentWebhooks(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{})
	ctx := t.Context()

	a, err := c.CreateWebhook(ctx, "", cred, hook("2.0", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateWebhook(ctx, "", cred, hook("2.0", "*")); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteWebhook(ctx, "", cred, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateWebhook(ctx, "", cred, hook("2.0", "*")); err != nil {
		t.Fatal(err)
	}
	if got, want := s.MaxConcurrentWebhooks(1), 2; got != want {
		t.Errorf("MaxConcurrentWebhooks = %d, want %d", got, want)
	}
	s.PutWebhook(1, pipedrive.Webhook{Name: "foreign"})
	if got, want := s.MaxConcurrentWebhooks(1), 3; got != want {
		t.Errorf("MaxConcurrentWebhooks after PutWebhook = %d, want %d", got, want)
	}
	if got := s.MaxConcurrentWebhooks(2); got != 0 {
		t.Errorf("other company MaxConcurrentWebhooks = %d, want 0", got)
	}
}

func TestPutAndDeleteBehindBack(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{})

	planted := s.PutWebhook(1, pipedrive.Webhook{EventAction: "*", EventObject: "*", Version: "1.0", IsActive: 1, HTTPAuthPassword: "x"})
	got, err := c.ListWebhooks(t.Context(), "", cred)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipedrive.Webhook{planted}, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if !s.DeleteBehindBack(planted.ID) {
		t.Fatal("DeleteBehindBack reported a missing webhook")
	}
	if s.DeleteBehindBack(planted.ID) {
		t.Error("second DeleteBehindBack reported success")
	}
	if n := s.CallCount("", "/v1/webhooks/{id}"); n != 0 {
		t.Errorf("DeleteBehindBack recorded %d calls, want 0", n)
	}
	err = c.DeleteWebhook(t.Context(), "", cred, planted.ID)
	if !errors.Is(err, pipedrive.ErrNotFound) {
		t.Errorf("delete after DeleteBehindBack: %v, want ErrNotFound", err)
	}
}

func TestWebhookIDsAreServerWide(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{})
	ctx := t.Context()

	a, err := c.CreateWebhook(ctx, "", cred, hook("2.0", "*"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateWebhook(ctx, "", pipedrive.Credentials{APIToken: "tok-2"}, hook("2.0", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Errorf("two companies got webhook id %d", a.ID)
	}
	// Company 2 cannot delete company 1's webhook.
	err = c.DeleteWebhook(ctx, "", pipedrive.Credentials{APIToken: "tok-2"}, a.ID)
	if !errors.Is(err, pipedrive.ErrNotFound) {
		t.Errorf("cross-company delete: %v, want ErrNotFound", err)
	}
	if n := len(s.Webhooks(1)); n != 1 {
		t.Errorf("company 1 has %d webhooks, want 1", n)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		req        pipedrive.CreateWebhookRequest
		wantFields map[string][]string
	}{
		{name: "v2_ok", req: hook("2.0", "change")},
		{name: "v1_ok", req: hook("1.0", "updated")},
		{name: "v1_names_need_v1", req: hook("2.0", "added"), wantFields: map[string][]string{"event_action": {"invalid value for version 2.0"}}},
		{name: "bad_version", req: hook("3.0", "*"), wantFields: map[string][]string{"version": {"must be one of 1.0, 2.0"}}},
		{
			name:       "pipedrive_url",
			req:        pipedrive.CreateWebhookRequest{SubscriptionURL: "https://api.pipedrive.com/v1/x", EventAction: "*", EventObject: "*", Name: "n"},
			wantFields: map[string][]string{"subscription_url": {"invalid or non-reachable URL"}},
		},
		{
			name: "missing_fields",
			req:  pipedrive.CreateWebhookRequest{},
			wantFields: map[string][]string{
				"subscription_url": {"is required"}, "event_action": {"is required"},
				"event_object": {"is required"}, "name": {"is required"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c, cred := setup(t, pipedrive.Options{})
			_, err := c.CreateWebhook(t.Context(), "", cred, tc.req)
			var got map[string][]string
			if e := (*pipedrive.APIError)(nil); errors.As(err, &e) {
				got = e.Fields
			} else if err != nil {
				t.Fatalf("CreateWebhook: %v", err)
			}
			if diff := cmp.Diff(tc.wantFields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCallsAndFaults(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{Timeout: 100 * time.Millisecond})
	ctx := t.Context()

	s.FailNext("*", 1, pipedrivetest.Status(http.StatusBadGateway))
	if _, err := c.Me(ctx, "", cred); !errors.Is(err, pipedrive.ErrServer) {
		t.Errorf("Me with fault: %v, want ErrServer", err)
	}
	if _, err := c.Me(ctx, "", cred); err != nil {
		t.Errorf("Me after the fault: %v", err)
	}
	// A delay below the client timeout is only slow.
	s.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Timeout(10*time.Millisecond))
	if _, err := c.ListWebhooks(ctx, "", cred); err != nil {
		t.Errorf("slow list: %v", err)
	}
	// A lost delete still deletes.
	w, err := c.CreateWebhook(ctx, "", cred, hook("2.0", "*"))
	if err != nil {
		t.Fatal(err)
	}
	s.FailNext(pipedrive.RouteDeleteWebhook, 1, pipedrivetest.LoseResponse())
	if err := c.DeleteWebhook(ctx, "", cred, w.ID); !errors.Is(err, pipedrive.ErrTransport) {
		t.Errorf("lost delete: %v, want ErrTransport", err)
	}
	if n := len(s.Webhooks(1)); n != 0 {
		t.Errorf("webhooks after lost delete = %d, want 0", n)
	}

	type row struct {
		Route     string
		Status    int
		Fault     string
		CompanyID int64
	}
	var got []row
	for _, call := range s.Calls() {
		got = append(got, row{call.Route, call.Status, call.Fault, call.CompanyID})
	}
	want := []row{
		{pipedrive.RouteMe, 502, "status 502", 1},
		{pipedrive.RouteMe, 200, "", 1},
		{pipedrive.RouteListWebhooks, 200, "timeout 10ms", 1},
		{pipedrive.RouteCreateWebhook, 201, "", 1},
		{pipedrive.RouteDeleteWebhook, 0, "lose response", 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if got, want := s.CallCount(http.MethodGet, "/v1/users/me"), 2; got != want {
		t.Errorf("CallCount(GET, /v1/users/me) = %d, want %d", got, want)
	}
	if got, want := s.CallCount("", pipedrive.RouteDeleteWebhook), 1; got != want {
		t.Errorf("CallCount(%s) = %d, want %d", pipedrive.RouteDeleteWebhook, got, want)
	}
	s.ResetCalls()
	if n := len(s.Calls()); n != 0 {
		t.Errorf("calls after reset = %d", n)
	}
}

func TestChaosIsReproducible(t *testing.T) {
	t.Parallel()

	// run returns the faults the fake drew, in arrival order. A loaded
	// machine can make the client give up before a request arrives; the
	// draw sequence does not depend on that, only the pairing of calls
	// with client errors does, so that is checked where it is certain.
	run := func() []string {
		// No keep-alive: net/http would transparently retry a GET whose
		// response was lost on a reused connection, changing the sequence.
		// The client's timeout stays well under the chaos delay, so that a
		// delayed answer always fails, and leaves a loaded machine room to
		// get each request to the fake.
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		s, c, cred := setup(t, pipedrive.Options{HTTPClient: hc, Timeout: 150 * time.Millisecond})
		s.SetChaosDelay(400 * time.Millisecond)
		s.SetChaos(0.5, 42)
		for range 30 {
			before := len(s.Calls())
			_, err := c.ListWebhooks(t.Context(), "", cred)
			calls := s.Calls()
			if len(calls) != before+1 {
				continue
			}
			if f := calls[len(calls)-1].Fault; (f == "") != (err == nil) {
				t.Errorf("fault %q but err %v", f, err)
			}
		}
		var faults []string
		for _, call := range s.Calls() {
			faults = append(faults, call.Fault)
		}
		return faults
	}
	first, second := run(), run()
	n := min(len(first), len(second))
	if n < 25 {
		t.Fatalf("only %d and %d calls arrived", len(first), len(second))
	}
	if diff := cmp.Diff(first[:n], second[:n]); diff != "" {
		t.Errorf("same seed, different faults (-first +second):\n%s", diff)
	}
	kinds := map[string]bool{}
	for _, f := range first {
		kinds[f] = true
	}
	if len(kinds) < 3 {
		t.Errorf("chaos produced only %v", kinds)
	}
}

func TestBudgets(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{})
	ctx := t.Context()

	s.SetDailyBudget(1, 12)
	for i := range 2 {
		if _, err := c.ListWebhooks(ctx, "", cred); err != nil {
			t.Fatalf("list %d: %v", i, err)
		}
	}
	_, err := c.ListWebhooks(ctx, "", cred)
	var e *pipedrive.APIError
	if !errors.As(err, &e) || !errors.Is(err, pipedrive.ErrRateLimited) || !e.DailyBudgetExhausted {
		t.Errorf("list over budget: %v, want daily-exhausted ErrRateLimited", err)
	}

	s.SetBurstLimit(2)
	other := pipedrive.Credentials{APIToken: "tok-2"}
	for i := range 2 {
		if _, err := c.Me(ctx, "", other); err != nil {
			t.Fatalf("me %d: %v", i, err)
		}
	}
	_, err = c.Me(ctx, "", other)
	if !errors.Is(err, pipedrive.ErrRateLimited) || pipedrive.RetryAfter(err) != 2*time.Second {
		t.Errorf("burst over limit: %v, want ErrRateLimited with 2s", err)
	}
}

func TestApplicationWebhooks(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{ClientID: "id", ClientSecret: "secret"})
	ctx := t.Context()

	tok, err := c.ExchangeCode(ctx, s.IssueCode(1), "https://hooks.example.com/oauth/callback")
	if err != nil {
		t.Fatal(err)
	}
	if tok.APIDomain != s.URL() {
		t.Errorf("api_domain = %q, want %q", tok.APIDomain, s.URL())
	}
	app := pipedrive.Credentials{AccessToken: tok.AccessToken}
	w, err := c.CreateWebhook(ctx, "", app, hook("2.0", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Type != "application" {
		t.Errorf("type = %q, want application", w.Type)
	}
	if err := c.DeleteWebhook(ctx, "", cred, w.ID); !errors.Is(err, pipedrive.ErrForbidden) {
		t.Errorf("delete by API token: %v, want ErrForbidden", err)
	}
	if err := c.DeleteWebhook(ctx, "", app, w.ID); err != nil {
		t.Errorf("delete by the app: %v", err)
	}
}

func TestLegacyRequests(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t, pipedrive.Options{})

	cases := []struct {
		name string
		path string
		want int
	}{
		{name: "query_token_v1_prefix", path: "/v1/webhooks?api_token=" + token, want: 200},
		{name: "unknown_token", path: "/api/v1/webhooks?api_token=nope", want: 401},
		{name: "unknown_path", path: "/api/v1/deals", want: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Get(s.URL() + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			if resp.Header.Get("x-ratelimit-limit") == "" {
				t.Error("no rate-limit headers")
			}
		})
	}
}

func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t, pipedrive.Options{})

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.CreateWebhook(t.Context(), "", cred, hook("2.0", "*")); err != nil {
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	hooks := s.Webhooks(1)
	ids := map[int64]bool{}
	for _, w := range hooks {
		ids[w.ID] = true
	}
	if len(hooks) != 20 || len(ids) != 20 {
		t.Errorf("got %d webhooks with %d distinct ids, want 20", len(hooks), len(ids))
	}
	if got := s.MaxConcurrentWebhooks(1); got != 20 {
		t.Errorf("MaxConcurrentWebhooks = %d, want 20", got)
	}
}
