package pipedrivetest_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// The x-token-cost of each read route in Pipedrive's OpenAPI documents.
var readCosts = []struct {
	path  string
	query url.Values
	route string
	cost  int
}{
	{"/api/v2/deals", nil, "GET /api/v2/deals", 10},
	{"/api/v2/deals/archived", nil, "GET /api/v2/deals/archived", 20},
	{"/api/v2/persons", nil, "GET /api/v2/persons", 10},
	{"/api/v2/organizations", nil, "GET /api/v2/organizations", 10},
	{"/api/v2/activities", nil, "GET /api/v2/activities", 10},
	{"/api/v2/products", nil, "GET /api/v2/products", 10},
	{"/api/v2/pipelines", nil, "GET /api/v2/pipelines", 5},
	{"/api/v2/stages", nil, "GET /api/v2/stages", 5},
	{"/v1/recents", url.Values{"since_timestamp": {"2026-09-01 00:00:00"}}, "GET /v1/recents", 20},
	{"/api/v1/recents", url.Values{"since_timestamp": {"2026-09-01 00:00:00"}}, "GET /v1/recents", 20},
	{"/v1/leads", nil, "GET /v1/leads", 20},
	{"/v1/leads/archived", nil, "GET /v1/leads/archived", 40},
	{"/v1/notes", nil, "GET /v1/notes", 20},
	{"/v1/users", nil, "GET /v1/users", 20},
}

func TestReadCosts(t *testing.T) {
	t.Parallel()
	for _, tc := range readCosts {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			s, _ := readFake(t)
			got := get(t, s, tc.path, tc.query)
			if got.Status != http.StatusOK {
				t.Fatalf("status = %d", got.Status)
			}
			_, remaining := s.DailyBudget(1)
			if spent := pipedrivetest.DefaultDailyBudget - remaining; spent != tc.cost {
				t.Errorf("budget charged %d, want %d", spent, tc.cost)
			}
			if h := got.Header.Get("x-daily-ratelimit-token-remaining"); h != itoa(pipedrivetest.DefaultDailyBudget-tc.cost) {
				t.Errorf("x-daily-ratelimit-token-remaining = %q", h)
			}
			want := map[string]pipedrivetest.Usage{tc.route: {Calls: 1, Tokens: tc.cost}}
			if diff := cmp.Diff(want, s.Usage()); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if calls := s.Calls(); len(calls) != 1 || calls[0].Tokens != tc.cost || calls[0].Route != tc.route {
				t.Errorf("calls = %+v", calls)
			}
			if got := s.TokensSpent(1); got != tc.cost {
				t.Errorf("TokensSpent = %d, want %d", got, tc.cost)
			}
		})
	}
}

func TestReadLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		setup       func(*pipedrivetest.Server)
		wantStatus  int
		wantDaily   string
		wantTokens  int
		wantFault   string
		wantRetryAt string
	}{
		{name: "budget_exhausted", setup: func(s *pipedrivetest.Server) { s.SetDailyBudget(1, 0) },
			wantStatus: 429, wantDaily: "0"},
		{name: "last_tokens", setup: func(s *pipedrivetest.Server) { s.SetDailyBudget(1, 4) },
			wantStatus: 200, wantDaily: "0", wantTokens: 4},
		{name: "injected_fault", setup: func(s *pipedrivetest.Server) {
			s.FailNext("GET /api/v2/deals", 1, pipedrivetest.Status(http.StatusServiceUnavailable).WithRetryAfter(3e9))
		}, wantStatus: 503, wantDaily: itoa(pipedrivetest.DefaultDailyBudget), wantFault: "status 503", wantRetryAt: "3"},
		{name: "burst", setup: func(s *pipedrivetest.Server) { s.SetBurstLimit(1) },
			wantStatus: 429, wantDaily: itoa(pipedrivetest.DefaultDailyBudget - 10), wantRetryAt: "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := readFake(t)
			tc.setup(s)
			if tc.name == "burst" {
				get(t, s, "/api/v2/deals", nil) // fills the window
				s.ResetCalls()
			}
			got := get(t, s, "/api/v2/deals", nil)
			if got.Status != tc.wantStatus {
				t.Errorf("status = %d, want %d", got.Status, tc.wantStatus)
			}
			if h := got.Header.Get("x-daily-ratelimit-token-remaining"); h != tc.wantDaily {
				t.Errorf("daily remaining = %q, want %q", h, tc.wantDaily)
			}
			if h := got.Header.Get("Retry-After"); h != tc.wantRetryAt {
				t.Errorf("Retry-After = %q, want %q", h, tc.wantRetryAt)
			}
			calls := s.Calls()
			if len(calls) != 1 || calls[0].Tokens != tc.wantTokens || calls[0].Fault != tc.wantFault {
				t.Errorf("calls = %+v, want one with %d tokens and fault %q", calls, tc.wantTokens, tc.wantFault)
			}
		})
	}
}

func TestNoDailyHeaders(t *testing.T) {
	t.Parallel()
	s, _ := readFake(t)
	s.SetAssumptions(pipedrivetest.Assumptions{NoDailyHeaders: true})
	got := get(t, s, "/v1/users", nil)
	if h := got.Header.Get("x-daily-ratelimit-token-limit"); h != "" {
		t.Errorf("x-daily-ratelimit-token-limit = %q, want none", h)
	}
	if h := got.Header.Get("x-ratelimit-limit"); h == "" {
		t.Error("burst headers missing too")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
