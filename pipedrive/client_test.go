package pipedrive_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

const (
	companyID = 9912345
	apiToken  = "secret-api-token-0123456789"
	password  = "hook-password-9876543210"
)

// fixture is a fake with one company and a client pointed at it.
type fixture struct {
	fake   *pipedrivetest.Server
	client *pipedrive.Client
	cred   pipedrive.Credentials
}

func newFixture(t *testing.T, opts pipedrive.Options) fixture {
	t.Helper()
	fake := pipedrivetest.NewServer(t)
	fake.AddCompany(pipedrivetest.Company{ID: companyID, Domain: "acme-sales", APIToken: apiToken, UserID: 20441})
	opts.APIURL = fake.URL()
	opts.OAuthURL = fake.URL()
	return fixture{fake: fake, client: pipedrive.New(opts), cred: pipedrive.Credentials{APIToken: apiToken}}
}

func ourHook() pipedrive.CreateWebhookRequest {
	return pipedrive.CreateWebhookRequest{
		SubscriptionURL:  "https://hooks.example.com/webhooks/pipedrive/9912345",
		EventAction:      "*",
		EventObject:      "*",
		Name:             "pipedrive-gateway",
		Version:          "2.0",
		HTTPAuthUser:     "pd-9912345",
		HTTPAuthPassword: password,
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, pipedrive.Options{})

	got, err := f.client.Me(t.Context(), "acme-sales", f.cred)
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	want := pipedrive.User{
		ID: 20441, CompanyID: companyID, CompanyDomain: "acme-sales", CompanyName: "acme-sales",
		Name: "User 20441", Email: "user20441@acme-sales.example",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Me (-want +got):\n%s", diff)
	}
}

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, pipedrive.Options{})
	f.fake.SetClock(func() time.Time { return now })
	ctx := t.Context()

	list, err := f.client.ListWebhooks(ctx, "acme-sales", f.cred)
	if err != nil {
		t.Fatalf("ListWebhooks: %v", err)
	}
	if diff := cmp.Diff([]pipedrive.Webhook{}, list); diff != "" {
		t.Errorf("initial list (-want +got):\n%s", diff)
	}

	created, err := f.client.CreateWebhook(ctx, "acme-sales", f.cred, ourHook())
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	want := pipedrive.Webhook{
		ID: created.ID, CompanyID: companyID, OwnerID: 20441, UserID: 20441,
		EventAction: "*", EventObject: "*",
		SubscriptionURL: "https://hooks.example.com/webhooks/pipedrive/9912345",
		Version:         "2.0", IsActive: 1, AddTime: now, Type: "general",
		HTTPAuthUser: "pd-9912345", HTTPAuthPassword: password, AdminID: 20441, Name: "pipedrive-gateway",
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if !created.Active() {
		t.Errorf("created.Active() = false, want true")
	}

	list, err = f.client.ListWebhooks(ctx, "acme-sales", f.cred)
	if err != nil {
		t.Fatalf("ListWebhooks: %v", err)
	}
	if diff := cmp.Diff([]pipedrive.Webhook{want}, list); diff != "" {
		t.Errorf("list after create (-want +got):\n%s", diff)
	}

	if err := f.client.DeleteWebhook(ctx, "acme-sales", f.cred, created.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	if got := f.fake.Webhooks(companyID); len(got) != 0 {
		t.Errorf("webhooks after delete = %v, want none", got)
	}
	err = f.client.DeleteWebhook(ctx, "acme-sales", f.cred, created.ID)
	if !errors.Is(err, pipedrive.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
}

func TestCreateWebhookSendsEveryField(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		_ = json.Unmarshal(b, &got)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"success":true,"data":{"id":"7","is_active":true}}`)
	}))
	t.Cleanup(srv.Close)
	c := pipedrive.New(pipedrive.Options{APIURL: srv.URL})

	req := ourHook()
	req.Version = ""
	req.HTTPAuthUser, req.HTTPAuthPassword = "", ""
	w, err := c.CreateWebhook(t.Context(), "", pipedrive.Credentials{APIToken: apiToken}, req)
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	if w.ID != 7 || w.IsActive != 1 {
		t.Errorf("webhook id, is_active = %d, %d; want 7, 1", w.ID, w.IsActive)
	}
	want := map[string]any{
		"subscription_url":   "https://hooks.example.com/webhooks/pipedrive/9912345",
		"event_action":       "*",
		"event_object":       "*",
		"name":               "pipedrive-gateway",
		"version":            "2.0",
		"http_auth_user":     nil,
		"http_auth_password": nil,
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
}

func TestCredentialsTravelInHeaders(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		cred       func(t *testing.T, f fixture) pipedrive.Credentials
		wantHeader string
		wantValue  func(cred pipedrive.Credentials) string
	}{
		{
			name:       "api_token",
			cred:       func(_ *testing.T, f fixture) pipedrive.Credentials { return f.cred },
			wantHeader: "x-api-token",
			wantValue:  func(c pipedrive.Credentials) string { return c.APIToken },
		},
		{
			name: "oauth_access_token",
			cred: func(t *testing.T, f fixture) pipedrive.Credentials {
				tok, err := f.client.ExchangeCode(t.Context(), f.fake.IssueCode(companyID), "https://hooks.example.com/oauth/callback")
				if err != nil {
					t.Fatalf("ExchangeCode: %v", err)
				}
				return pipedrive.Credentials{AccessToken: tok.AccessToken}
			},
			wantHeader: "Authorization",
			wantValue:  func(c pipedrive.Credentials) string { return "Bearer " + c.AccessToken },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, pipedrive.Options{ClientID: "id", ClientSecret: "secret"})
			cred := tc.cred(t, f)
			f.fake.ResetCalls()

			if _, err := f.client.ListWebhooks(t.Context(), "", cred); err != nil {
				t.Fatalf("ListWebhooks: %v", err)
			}
			calls := f.fake.Calls()
			if len(calls) != 1 {
				t.Fatalf("got %d calls, want 1", len(calls))
			}
			call := calls[0]
			if got, want := call.Header.Get(tc.wantHeader), tc.wantValue(cred); got != want {
				t.Errorf("header %s = %q, want %q", tc.wantHeader, got, want)
			}
			for _, secret := range []string{cred.APIToken, cred.AccessToken} {
				if secret != "" && (strings.Contains(call.Path, secret) || strings.Contains(call.RawQuery, secret)) {
					t.Errorf("token appears in the URL %s?%s", call.Path, call.RawQuery)
				}
			}
			if call.RawQuery != "" {
				t.Errorf("query = %q, want none", call.RawQuery)
			}
			if call.CompanyID != companyID {
				t.Errorf("fake saw company %d, want %d", call.CompanyID, companyID)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		domain  string
		want    string
		wantErr error
	}{
		{name: "company_domain", domain: "acme-sales", want: "https://acme-sales.pipedrive.com/api/v1/webhooks"},
		{name: "full_host", domain: "Acme-Sales.pipedrive.com", want: "https://acme-sales.pipedrive.com/api/v1/webhooks"},
		{name: "no_domain", domain: "", want: "https://api.pipedrive.com/api/v1/webhooks"},
		{name: "host_injection", domain: "evil.example/x", wantErr: pipedrive.ErrValidation},
		{name: "other_host", domain: "evil.example", wantErr: pipedrive.ErrValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got string
			rt := roundTripper(func(r *http.Request) (*http.Response, error) {
				got = r.URL.String()
				return &http.Response{
					StatusCode: http.StatusOK, Header: http.Header{},
					Body: io.NopCloser(strings.NewReader(`{"success":true,"data":[]}`)), Request: r,
				}, nil
			})
			c := pipedrive.New(pipedrive.Options{HTTPClient: &http.Client{Transport: rt}})
			_, err := c.ListWebhooks(t.Context(), tc.domain, pipedrive.Credentials{APIToken: apiToken})
			if !errors.Is(err, tc.wantErr) || (err != nil && tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("URL = %q, want %q", got, tc.want)
			}
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()

	var leaked sync.Map
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store("hit", r.Header.Get("x-api-token"))
	}))
	t.Cleanup(target.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusFound)
	}))
	t.Cleanup(origin.Close)

	c := pipedrive.New(pipedrive.Options{APIURL: origin.URL})
	_, err := c.ListWebhooks(t.Context(), "", pipedrive.Credentials{APIToken: apiToken})
	if !errors.Is(err, pipedrive.ErrUnexpectedStatus) {
		t.Errorf("err = %v, want ErrUnexpectedStatus", err)
	}
	if v, ok := leaked.Load("hit"); ok {
		t.Errorf("redirect was followed, target saw token %q", v)
	}
}

func TestInvalidCredentialsAreRejectedLocally(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		cred pipedrive.Credentials
	}{
		{name: "none", cred: pipedrive.Credentials{}},
		{name: "both", cred: pipedrive.Credentials{APIToken: "a", AccessToken: "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, pipedrive.Options{})
			_, err := f.client.ListWebhooks(t.Context(), "", tc.cred)
			if !errors.Is(err, pipedrive.ErrUnauthorized) {
				t.Errorf("err = %v, want ErrUnauthorized", err)
			}
			if n := len(f.fake.Calls()); n != 0 {
				t.Errorf("fake got %d calls, want 0", n)
			}
		})
	}
}

type observed struct {
	Route  string
	Status int
}

func TestOnResponse(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	var got []observed
	var daily []int
	f := newFixture(t, pipedrive.Options{OnResponse: func(_ context.Context, route string, status int, rl pipedrive.RateLimit) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, observed{route, status})
		daily = append(daily, rl.DailyRemaining)
	}})
	ctx := t.Context()

	if _, err := f.client.Me(ctx, "", f.cred); err != nil {
		t.Fatal(err)
	}
	w, err := f.client.CreateWebhook(ctx, "", f.cred, ourHook())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.ListWebhooks(ctx, "", f.cred); err != nil {
		t.Fatal(err)
	}
	if err := f.client.DeleteWebhook(ctx, "", f.cred, w.ID); err != nil {
		t.Fatal(err)
	}
	_ = f.client.DeleteWebhook(ctx, "", f.cred, w.ID)
	f.fake.FailNext(pipedrive.RouteCreateWebhook, 1, pipedrivetest.LoseResponse())
	_, _ = f.client.CreateWebhook(ctx, "", f.cred, ourHook())

	want := []observed{
		{pipedrive.RouteMe, 200},
		{pipedrive.RouteCreateWebhook, 201},
		{pipedrive.RouteListWebhooks, 200},
		{pipedrive.RouteDeleteWebhook, 200},
		{pipedrive.RouteDeleteWebhook, 404},
		{pipedrive.RouteCreateWebhook, 0},
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
	// Budget: 1,000,000 - 2 (me) - 10 (create) - 10 (list) - 6 - 6; transport error: unknown.
	wantDaily := []int{999998, 999988, 999978, 999972, 999966, -1}
	if diff := cmp.Diff(wantDaily, daily); diff != "" {
		t.Errorf("daily remaining (-want +got):\n%s", diff)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	var got pipedrive.RateLimit
	f := newFixture(t, pipedrive.Options{OnResponse: func(_ context.Context, _ string, _ int, rl pipedrive.RateLimit) {
		mu.Lock()
		defer mu.Unlock()
		got = rl
	}})
	if _, err := f.client.ListWebhooks(t.Context(), "", f.cred); err != nil {
		t.Fatal(err)
	}
	want := pipedrive.RateLimit{Limit: 40, Remaining: 39, Reset: 2 * time.Second, DailyLimit: 1_000_000, DailyRemaining: 999_990}
	mu.Lock()
	defer mu.Unlock()
	// Reset depends on how long the call took; it is 1 s or 2 s.
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Duration) bool {
		return a-b <= time.Second && b-a <= time.Second
	})); diff != "" {
		t.Errorf("rate limit (-want +got):\n%s", diff)
	}
}
