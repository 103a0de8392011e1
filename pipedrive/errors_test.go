package pipedrive_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// errorView is the part of an *APIError a caller relies on.
type errorView struct {
	Kind       error
	Status     int
	Message    string
	Fields     map[string][]string
	RetryAfter time.Duration
	Daily      bool
	Blocked    bool
	Temporary  bool
}

func viewOf(t *testing.T, err error) errorView {
	t.Helper()
	var e *pipedrive.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return errorView{
		Kind: e.Kind, Status: e.Status, Message: e.Message, Fields: e.Fields, RetryAfter: e.RetryAfter,
		Daily: e.DailyBudgetExhausted, Blocked: e.Blocked, Temporary: pipedrive.Temporary(err),
	}
}

var compareErrors = cmp.Comparer(func(a, b error) bool { return a == b })

func TestErrors(t *testing.T) {
	t.Parallel()

	now := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	list := func(ctx context.Context, f fixture) error {
		_, err := f.client.ListWebhooks(ctx, "", f.cred)
		return err
	}
	create := func(req pipedrive.CreateWebhookRequest) func(context.Context, fixture) error {
		return func(ctx context.Context, f fixture) error {
			_, err := f.client.CreateWebhook(ctx, "", f.cred, req)
			return err
		}
	}

	cases := []struct {
		name  string
		setup func(f fixture)
		op    func(ctx context.Context, f fixture) error
		want  errorView
		// wantCause is matched with errors.Is besides Kind.
		wantCause error
		after     func(t *testing.T, f fixture)
	}{
		{
			name: "rate_limited_retry_after_seconds",
			setup: func(f fixture) {
				f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).WithRetryAfter(3*time.Second))
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrRateLimited, Status: 429, Message: "Request over limit", RetryAfter: 3 * time.Second, Temporary: true},
		},
		{
			name: "rate_limited_retry_after_http_date",
			setup: func(f fixture) {
				f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).
					WithHeader("Retry-After", now.Add(10*time.Second).Format(http.TimeFormat)))
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrRateLimited, Status: 429, Message: "Request over limit", RetryAfter: 10 * time.Second, Temporary: true},
		},
		{
			name: "rate_limited_ratelimit_reset_only",
			setup: func(f fixture) {
				f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).WithHeader("x-ratelimit-reset", "7"))
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrRateLimited, Status: 429, Message: "Request over limit", RetryAfter: 7 * time.Second, Temporary: true},
		},
		{
			name: "rate_limited_no_hints",
			setup: func(f fixture) {
				f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).WithHeader("x-ratelimit-reset", "0"))
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrRateLimited, Status: 429, Message: "Request over limit", RetryAfter: 2 * time.Second, Temporary: true},
		},
		{
			name: "daily_budget_exhausted",
			setup: func(f fixture) {
				f.fake.SetDailyBudget(companyID, 0)
				f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(429).WithHeader("x-ratelimit-reset", "1"))
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrRateLimited, Status: 429, Message: "Request over limit", RetryAfter: time.Second, Daily: true, Temporary: true},
		},
		{
			name: "unauthorized",
			setup: func(f fixture) {
				f.fake.RevokeToken(apiToken)
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrUnauthorized, Status: 401, Message: "unauthorized access"},
		},
		{
			name:  "forbidden_html_block_page",
			setup: func(f fixture) { f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.HTMLBlock()) },
			op:    list,
			want:  errorView{Kind: pipedrive.ErrForbidden, Status: 403, Message: "non-JSON answer, likely an abuse block", Blocked: true},
		},
		{
			name:  "forbidden_json",
			setup: func(f fixture) { f.fake.FailNext(pipedrive.RouteDeleteWebhook, 1, pipedrivetest.Status(403)) },
			op: func(ctx context.Context, f fixture) error {
				return f.client.DeleteWebhook(ctx, "", f.cred, 1)
			},
			want: errorView{Kind: pipedrive.ErrForbidden, Status: 403, Message: "Forbidden"},
		},
		{
			name: "not_found_on_delete",
			op: func(ctx context.Context, f fixture) error {
				return f.client.DeleteWebhook(ctx, "", f.cred, 424242)
			},
			want: errorView{
				Kind: pipedrive.ErrNotFound, Status: 404, Message: "id: not found",
				Fields: map[string][]string{"id": {"not found"}},
			},
		},
		{
			name: "validation_with_fields",
			op: create(pipedrive.CreateWebhookRequest{
				EventAction: "updated", EventObject: "deal", HTTPAuthUser: "u", HTTPAuthPassword: password,
			}),
			want: errorView{
				Kind: pipedrive.ErrValidation, Status: 400,
				Message: "event_action: invalid value for version 2.0; name: is required; subscription_url: is required",
				Fields: map[string][]string{
					"event_action":     {"invalid value for version 2.0"},
					"name":             {"is required"},
					"subscription_url": {"is required"},
				},
			},
		},
		{
			name: "limit_reached",
			setup: func(f fixture) {
				for range 40 {
					f.fake.PutWebhook(companyID, pipedrive.Webhook{EventAction: "*", EventObject: "deal", Version: "2.0", IsActive: 1})
				}
			},
			op:   create(ourHook()),
			want: errorView{Kind: pipedrive.ErrLimitReached, Status: 422, Message: "Webhooks limit reached"},
		},
		{
			name:  "server_error",
			setup: func(f fixture) { f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(500)) },
			op:    list,
			want:  errorView{Kind: pipedrive.ErrServer, Status: 500, Message: "Internal Server Error", Temporary: true},
		},
		{
			name: "server_error_with_retry_after",
			setup: func(f fixture) {
				f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(503).WithRetryAfter(4*time.Second))
			},
			op:   list,
			want: errorView{Kind: pipedrive.ErrServer, Status: 503, Message: "Service Unavailable", RetryAfter: 4 * time.Second, Temporary: true},
		},
		{
			name:  "unexpected_status",
			setup: func(f fixture) { f.fake.FailNext(pipedrive.RouteListWebhooks, 1, pipedrivetest.Status(402)) },
			op:    list,
			want:  errorView{Kind: pipedrive.ErrUnexpectedStatus, Status: 402, Message: "Payment Required"},
		},
		{
			name: "timeout",
			setup: func(f fixture) {
				f.fake.FailNext(pipedrive.RouteCreateWebhook, 1, pipedrivetest.Timeout(5*time.Second))
			},
			op:        create(ourHook()),
			want:      errorView{Kind: pipedrive.ErrTransport, Message: "request timed out", Temporary: true},
			wantCause: context.DeadlineExceeded,
			after: func(t *testing.T, f fixture) {
				// The fake only performs a timed-out request if the client waited.
				if got := f.fake.Webhooks(companyID); len(got) != 0 {
					t.Errorf("webhooks after timeout = %v, want none", got)
				}
			},
		},
		{
			name:  "lost_response",
			setup: func(f fixture) { f.fake.FailNext(pipedrive.RouteCreateWebhook, 1, pipedrivetest.LoseResponse()) },
			op:    create(ourHook()),
			want:  errorView{Kind: pipedrive.ErrTransport, Message: "request failed", Temporary: true},
			after: func(t *testing.T, f fixture) {
				// The create happened although the client saw an error: the
				// reason a caller must list before creating again.
				if got := f.fake.Webhooks(companyID); len(got) != 1 {
					t.Errorf("webhooks after lost response = %d, want 1", len(got))
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, pipedrive.Options{Timeout: 200 * time.Millisecond, Now: func() time.Time { return now }})
			if tc.setup != nil {
				tc.setup(f)
			}
			start := time.Now()
			err := tc.op(t.Context(), f)
			if err == nil {
				t.Fatal("got no error")
			}
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("call took %v; the client timeout is 200ms", elapsed)
			}
			if diff := cmp.Diff(tc.want, viewOf(t, err), compareErrors); diff != "" {
				t.Errorf("error %q (-want +got):\n%s", err, diff)
			}
			if !errors.Is(err, tc.want.Kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.want.Kind)
			}
			if tc.wantCause != nil && !errors.Is(err, tc.wantCause) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantCause)
			}
			if got, want := pipedrive.RetryAfter(err), tc.want.RetryAfter; got != want {
				t.Errorf("RetryAfter = %v, want %v", got, want)
			}
			msg := err.Error()
			for _, secret := range []string{apiToken, password} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
			if strings.Contains(msg, "<") {
				t.Errorf("error %q contains markup from the body", msg)
			}
			if tc.after != nil {
				tc.after(t, f)
			}
		})
	}
}

func TestErrorsFromRawResponses(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   errorView
	}{
		{
			name:   "undecodable_2xx",
			status: 200,
			body:   `{"success":true,"data":[{"id":{"oops":1}}]}`,
			want:   errorView{Kind: pipedrive.ErrTransport, Status: 200, Message: "undecodable response body", Temporary: true},
		},
		{
			name:   "html_2xx",
			status: 200,
			body:   `<html>` + password + `</html>`,
			want:   errorView{Kind: pipedrive.ErrTransport, Status: 200, Message: "undecodable response body", Temporary: true},
		},
		{
			name:   "error_echoes_secret",
			status: 400,
			body:   `{"success":false,"error":"bad token ` + apiToken + "\\nnext line" + `"}`,
			want:   errorView{Kind: pipedrive.ErrValidation, Status: 400, Message: "bad token [redacted] next line"},
		},
		{
			name:   "html_502",
			status: 502,
			body:   `<html><body>Bad gateway ` + password + `</body></html>`,
			want:   errorView{Kind: pipedrive.ErrServer, Status: 502, Temporary: true},
		},
		{
			name:   "retry_after_garbage_falls_back_to_reset",
			status: 429,
			header: map[string]string{"Retry-After": "soon", "x-ratelimit-reset": "5"},
			body:   `{"success":false,"error":"Request over limit"}`,
			want:   errorView{Kind: pipedrive.ErrRateLimited, Status: 429, Message: "Request over limit", RetryAfter: 5 * time.Second, Temporary: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			c := pipedrive.New(pipedrive.Options{APIURL: srv.URL})

			_, err := c.ListWebhooks(t.Context(), "", pipedrive.Credentials{APIToken: apiToken})
			if diff := cmp.Diff(tc.want, viewOf(t, err), compareErrors); diff != "" {
				t.Errorf("error %q (-want +got):\n%s", err, diff)
			}
			for _, secret := range []string{apiToken, password} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "plain", err: errors.New("x"), want: false},
		{name: "rate_limited", err: &pipedrive.APIError{Kind: pipedrive.ErrRateLimited}, want: true},
		{name: "wrapped_server", err: wrap(&pipedrive.APIError{Kind: pipedrive.ErrServer}), want: true},
		{name: "transport", err: &pipedrive.APIError{Kind: pipedrive.ErrTransport}, want: true},
		{name: "validation", err: &pipedrive.APIError{Kind: pipedrive.ErrValidation}, want: false},
		{name: "not_found", err: &pipedrive.APIError{Kind: pipedrive.ErrNotFound}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := pipedrive.Temporary(tc.err); got != tc.want {
				t.Errorf("Temporary(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func wrap(err error) error { return errors.Join(errors.New("context"), err) }
