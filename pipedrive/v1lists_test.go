package pipedrive_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func TestOffsetLists(t *testing.T) {
	t.Parallel()
	lead, note := pipedrive.KindLead, pipedrive.KindNote
	uuid := func(id int64) string { return pipedrivetest.LeadUUID(companyID, id) }
	cases := []struct {
		name          string
		list          func(f fixture) (pipedrive.Page, error)
		want          []brief
		wantMore      bool
		wantNextStart int
		wantCost      int
		wantErr       error
	}{
		{name: "leads_oldest_change_first", list: func(f fixture) (pipedrive.Page, error) {
			return f.client.ListLeads(t.Context(), "", f.cred, pipedrive.OffsetRequest{})
		}, want: []brief{{lead, uuid(2), time.Minute, false, false, false}, {lead, uuid(1), 2 * time.Minute, false, false, false}}, wantCost: 20},
		{name: "leads_since_paged", list: func(f fixture) (pipedrive.Page, error) {
			return f.client.ListLeads(t.Context(), "", f.cred, pipedrive.OffsetRequest{Since: t0.Add(time.Minute), Limit: 1})
		}, want: []brief{{lead, uuid(2), time.Minute, false, false, false}}, wantMore: true, wantNextStart: 1, wantCost: 20},
		{name: "archived_leads", list: func(f fixture) (pipedrive.Page, error) {
			return f.client.ListLeads(t.Context(), "", f.cred, pipedrive.OffsetRequest{Archived: true})
		}, want: []brief{{lead, uuid(3), 3 * time.Minute, false, true, false}}, wantCost: 40},
		{name: "notes", list: func(f fixture) (pipedrive.Page, error) {
			return f.client.ListNotes(t.Context(), "", f.cred, pipedrive.OffsetRequest{Since: t0.Add(time.Second)})
		}, want: []brief{{note, "1", 3 * time.Minute, false, false, false}}, wantCost: 20},
		{name: "notes_are_not_archived", list: func(f fixture) (pipedrive.Page, error) {
			return f.client.ListNotes(t.Context(), "", f.cred, pipedrive.OffsetRequest{Archived: true})
		}, wantErr: pipedrive.ErrValidation},
		{name: "users", list: func(f fixture) (pipedrive.Page, error) {
			return f.client.ListUsers(t.Context(), "", f.cred)
		}, want: []brief{{pipedrive.KindUser, "20441", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Sub(t0), false, false, false}}, wantCost: 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, c := readFixture(t)
			for range 3 {
				f.fake.Put(companyID, pipedrivetest.Object{Kind: "lead"})
			}
			f.fake.Put(companyID, pipedrivetest.Object{Kind: "note"})
			c.Advance(time.Minute)
			f.fake.Change(companyID, "lead", 2, map[string]any{"title": "Hot"})
			c.Advance(time.Minute)
			f.fake.Change(companyID, "lead", 1, map[string]any{"title": "Warm"})
			c.Advance(time.Minute)
			f.fake.Archive(companyID, "lead", 3)
			f.fake.Change(companyID, "note", 1, map[string]any{"content": "x"})
			got, err := tc.list(f)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("list: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, briefs(got.Items)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if got.More != tc.wantMore || got.NextStart != tc.wantNextStart || got.Cost != tc.wantCost {
				t.Errorf("page more %v next %d cost %d; want %v %d %d", got.More, got.NextStart, got.Cost, tc.wantMore, tc.wantNextStart, tc.wantCost)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		setup     func(*pipedrivetest.Server)
		wantKind  error
		wantDaily bool
		wantBlock bool
		wantRetry time.Duration // < 0: any positive
	}{
		{name: "daily_budget_exhausted", setup: func(s *pipedrivetest.Server) { s.SetDailyBudget(companyID, 0) },
			wantKind: pipedrive.ErrRateLimited, wantDaily: true, wantRetry: -1}, // x-ratelimit-reset, 1 or 2 s
		{name: "retry_after", setup: func(s *pipedrivetest.Server) {
			s.FailNext(pipedrive.RouteRecents, 1, pipedrivetest.Status(http.StatusTooManyRequests).WithRetryAfter(7*time.Second))
		}, wantKind: pipedrive.ErrRateLimited, wantRetry: 7 * time.Second},
		{name: "ratelimit_reset", setup: func(s *pipedrivetest.Server) {
			s.FailNext(pipedrive.RouteRecents, 1, pipedrivetest.Status(http.StatusTooManyRequests).WithHeader("x-ratelimit-reset", "3"))
		}, wantKind: pipedrive.ErrRateLimited, wantRetry: 3 * time.Second},
		{name: "cloudflare_block", setup: func(s *pipedrivetest.Server) {
			s.FailNext(pipedrive.RouteRecents, 1, pipedrivetest.HTMLBlock())
		}, wantKind: pipedrive.ErrForbidden, wantBlock: true},
		{name: "server_error", setup: func(s *pipedrivetest.Server) {
			s.FailNext(pipedrive.RouteRecents, 1, pipedrivetest.Status(http.StatusBadGateway))
		}, wantKind: pipedrive.ErrServer},
		{name: "revoked_token", setup: func(s *pipedrivetest.Server) { s.RevokeToken(apiToken) }, wantKind: pipedrive.ErrUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, _ := readFixture(t)
			tc.setup(f.fake)
			_, err := f.client.Recents(t.Context(), "", f.cred, pipedrive.RecentsRequest{Since: t0})
			var e *pipedrive.APIError
			if !errors.As(err, &e) || !errors.Is(err, tc.wantKind) {
				t.Fatalf("Recents: %v, want %v", err, tc.wantKind)
			}
			retryOK := e.RetryAfter == tc.wantRetry || tc.wantRetry < 0 && e.RetryAfter > 0
			if e.DailyBudgetExhausted != tc.wantDaily || e.Blocked != tc.wantBlock || !retryOK || e.Route != pipedrive.RouteRecents {
				t.Errorf("error = %+v", e)
			}
		})
	}
}
