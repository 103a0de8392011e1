package pipedrive_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

const redirectURI = "https://hooks.example.com/oauth/callback"

// clock is a settable clock shared by the fake and the client.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newOAuthFixture(t *testing.T) (fixture, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)}
	f := newFixture(t, pipedrive.Options{ClientID: "app-id", ClientSecret: "app-secret", Now: clk.Now})
	f.fake.SetClock(clk.Now)
	f.fake.SetOAuthClient("app-id", "app-secret")
	return f, clk
}

func TestOAuthExchangeAndRefresh(t *testing.T) {
	t.Parallel()
	f, clk := newOAuthFixture(t)
	ctx := t.Context()
	start := clk.Now()

	tok, err := f.client.ExchangeCode(ctx, f.fake.IssueCode(companyID), redirectURI)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	want := pipedrive.Token{
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: "Bearer", Scope: "base,admin", ExpiresAt: start.Add(time.Hour), APIDomain: f.fake.URL(),
	}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token without access or refresh token")
	}

	calls := f.fake.Calls()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("app-id:app-secret"))
	if got := calls[len(calls)-1].Header.Get("Authorization"); got != wantAuth {
		t.Errorf("Authorization = %q, want %q", got, wantAuth)
	}
	if got := calls[len(calls)-1].Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", got)
	}

	bearer := pipedrive.Credentials{AccessToken: tok.AccessToken}
	me, err := f.client.Me(ctx, pipedrive.DomainFromAPIDomain(tok.APIDomain), bearer)
	if err != nil {
		t.Fatalf("Me with access token: %v", err)
	}
	if me.CompanyID != companyID {
		t.Errorf("Me company = %d, want %d", me.CompanyID, companyID)
	}

	// The access token expires by the clock; the refresh token renews it.
	clk.Advance(time.Hour)
	if _, err := f.client.Me(ctx, "", bearer); !errors.Is(err, pipedrive.ErrUnauthorized) {
		t.Errorf("Me with expired token: got %v, want ErrUnauthorized", err)
	}
	refreshed, err := f.client.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if refreshed.AccessToken == tok.AccessToken {
		t.Errorf("refresh returned the old access token")
	}
	if refreshed.RefreshToken != tok.RefreshToken {
		t.Errorf("refresh token changed; Pipedrive returns the same one")
	}
	if got, want := refreshed.ExpiresAt, clk.Now().Add(time.Hour); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
	if _, err := f.client.Me(ctx, "", pipedrive.Credentials{AccessToken: refreshed.AccessToken}); err != nil {
		t.Errorf("Me with refreshed token: %v", err)
	}
}

func TestOAuthErrors(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		op         func(t *testing.T, f fixture, clk *clock) (string, error) // returns the secret used
		wantKind   error
		wantStatus int
	}{
		{
			name: "unknown_code",
			op: func(t *testing.T, f fixture, _ *clock) (string, error) {
				_, err := f.client.ExchangeCode(t.Context(), "code-made-up", redirectURI)
				return "code-made-up", err
			},
			wantKind: pipedrive.ErrUnauthorized, wantStatus: 400,
		},
		{
			name: "used_code",
			op: func(t *testing.T, f fixture, _ *clock) (string, error) {
				code := f.fake.IssueCode(companyID)
				if _, err := f.client.ExchangeCode(t.Context(), code, redirectURI); err != nil {
					t.Fatalf("first exchange: %v", err)
				}
				_, err := f.client.ExchangeCode(t.Context(), code, redirectURI)
				return code, err
			},
			wantKind: pipedrive.ErrUnauthorized, wantStatus: 400,
		},
		{
			name: "expired_code",
			op: func(t *testing.T, f fixture, clk *clock) (string, error) {
				code := f.fake.IssueCode(companyID)
				clk.Advance(6 * time.Minute)
				_, err := f.client.ExchangeCode(t.Context(), code, redirectURI)
				return code, err
			},
			wantKind: pipedrive.ErrUnauthorized, wantStatus: 400,
		},
		{
			name: "revoked_refresh_token",
			op: func(t *testing.T, f fixture, _ *clock) (string, error) {
				tok, err := f.client.ExchangeCode(t.Context(), f.fake.IssueCode(companyID), redirectURI)
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				f.fake.RevokeToken(tok.RefreshToken)
				_, err = f.client.Refresh(t.Context(), tok.RefreshToken)
				return tok.RefreshToken, err
			},
			wantKind: pipedrive.ErrUnauthorized, wantStatus: 400,
		},
		{
			name: "wrong_client_secret",
			op: func(t *testing.T, f fixture, _ *clock) (string, error) {
				f.fake.SetOAuthClient("app-id", "other-secret")
				_, err := f.client.ExchangeCode(t.Context(), f.fake.IssueCode(companyID), redirectURI)
				return "app-secret", err
			},
			wantKind: pipedrive.ErrUnauthorized, wantStatus: 401,
		},
		{
			name: "token_endpoint_down",
			op: func(t *testing.T, f fixture, _ *clock) (string, error) {
				f.fake.FailNext(pipedrive.RouteToken, 1, pipedrivetest.Status(503))
				_, err := f.client.Refresh(t.Context(), "rt-whatever")
				return "rt-whatever", err
			},
			wantKind: pipedrive.ErrServer, wantStatus: 503,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, clk := newOAuthFixture(t)
			secret, err := tc.op(t, f, clk)
			if !errors.Is(err, tc.wantKind) {
				t.Fatalf("err = %v, want %v", err, tc.wantKind)
			}
			var e *pipedrive.APIError
			if !errors.As(err, &e) || e.Status != tc.wantStatus {
				t.Errorf("status = %d, want %d", e.Status, tc.wantStatus)
			}
			for _, s := range []string{secret, "app-secret"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains secret %q", err, s)
				}
			}
		})
	}
}

func TestOAuthInvalidGrantMessage(t *testing.T) {
	t.Parallel()
	f, _ := newOAuthFixture(t)
	_, err := f.client.Refresh(t.Context(), "rt-unknown")
	var e *pipedrive.APIError
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if got, want := e.Message, "invalid_grant: Invalid grant: refresh token is invalid"; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
}

func TestOAuthWithoutClientConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t, pipedrive.Options{})
	_, err := f.client.Refresh(t.Context(), "rt")
	if !errors.Is(err, pipedrive.ErrUnauthorized) {
		t.Errorf("err = %v, want ErrUnauthorized", err)
	}
	if n := len(f.fake.Calls()); n != 0 {
		t.Errorf("fake got %d calls, want 0", n)
	}
}

func TestAuthorizeURL(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name  string
		opts  pipedrive.Options
		state string
		want  string
	}{
		{
			name:  "default_host",
			opts:  pipedrive.Options{ClientID: "abc"},
			state: "s 1",
			want:  "https://oauth.pipedrive.com/oauth/authorize?client_id=abc&redirect_uri=https%3A%2F%2Fhooks.example.com%2Foauth%2Fcallback&state=s+1",
		},
		{
			name: "override_without_state",
			opts: pipedrive.Options{ClientID: "abc", OAuthURL: "http://127.0.0.1:9/"},
			want: "http://127.0.0.1:9/oauth/authorize?client_id=abc&redirect_uri=https%3A%2F%2Fhooks.example.com%2Foauth%2Fcallback",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := pipedrive.New(tc.opts).AuthorizeURL(redirectURI, tc.state)
			if got != tc.want {
				t.Errorf("AuthorizeURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDomainFromAPIDomain(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		in   string
		want string
	}{
		{name: "https", in: "https://acme-sales.pipedrive.com", want: "acme-sales"},
		{name: "trailing_slash", in: "https://Acme-Sales.pipedrive.com/", want: "acme-sales"},
		{name: "bare_host", in: "acme-sales.pipedrive.com", want: "acme-sales"},
		{name: "other_host", in: "https://acme.evil.example", want: ""},
		{name: "nested_label", in: "https://a.b.pipedrive.com", want: ""},
		{name: "lookalike", in: "https://acme.notpipedrive.com", want: ""},
		{name: "fake_server", in: "http://127.0.0.1:4321", want: ""},
		{name: "empty", in: "", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := pipedrive.DomainFromAPIDomain(tc.in); got != tc.want {
				t.Errorf("DomainFromAPIDomain(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
