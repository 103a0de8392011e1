package pipedrivetest_test

import (
	"maps"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// dealHistory plants deals 1-5 over five minutes: 1 open, 2 changed, 3 won,
// 4 deleted, 5 archived.
func dealHistory(t *testing.T, s *pipedrivetest.Server, c *clock) {
	t.Helper()
	for range 5 {
		s.Put(1, pipedrivetest.Object{Kind: "deal"})
	}
	c.Add(time.Minute)
	s.Change(1, "deal", 2, map[string]any{"title": "Renewal"})
	c.Add(time.Minute)
	s.Change(1, "deal", 3, map[string]any{"status": "won"})
	c.Add(time.Minute)
	s.Delete(1, "deal", 4)
	c.Add(time.Minute)
	s.Archive(1, "deal", 5)
}

func TestV2DealFilters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		path       string
		query      url.Values
		wantStatus int
		wantIDs    []any
	}{
		{name: "default_hides_deleted_and_archived", path: "/api/v2/deals", wantStatus: 200, wantIDs: []any{1.0, 2.0, 3.0}},
		{name: "updated_since_inclusive", path: "/api/v2/deals", query: url.Values{"updated_since": {ts(time.Minute)}}, wantStatus: 200, wantIDs: []any{2.0, 3.0}},
		{name: "updated_until_exclusive", path: "/api/v2/deals", query: url.Values{"updated_until": {ts(2 * time.Minute)}}, wantStatus: 200, wantIDs: []any{1.0, 2.0}},
		{name: "status_deleted", path: "/api/v2/deals", query: url.Values{"status": {"deleted"}}, wantStatus: 200, wantIDs: []any{4.0}},
		{name: "all_statuses", path: "/api/v2/deals", query: url.Values{"status": {"open,won,lost,deleted"}}, wantStatus: 200, wantIDs: []any{1.0, 2.0, 3.0, 4.0}},
		{name: "won_only", path: "/api/v2/deals", query: url.Values{"status": {"won"}}, wantStatus: 200, wantIDs: []any{3.0}},
		{name: "archived", path: "/api/v2/deals/archived", wantStatus: 200, wantIDs: []any{5.0}},
		{name: "update_time_desc", path: "/api/v2/deals", query: url.Values{"sort_by": {"update_time"}, "sort_direction": {"desc"}, "status": {"open,won,lost,deleted"}}, wantStatus: 200, wantIDs: []any{4.0, 3.0, 2.0, 1.0}},
		{name: "ids", path: "/api/v2/deals", query: url.Values{"ids": {"3,1,9"}}, wantStatus: 200, wantIDs: []any{1.0, 3.0}},
		{name: "bad_status", path: "/api/v2/deals", query: url.Values{"status": {"open,gone"}}, wantStatus: 400, wantIDs: []any{}},
		{name: "limit_over_500", path: "/api/v2/deals", query: url.Values{"limit": {"501"}}, wantStatus: 400, wantIDs: []any{}},
		{name: "bad_time", path: "/api/v2/deals", query: url.Values{"updated_since": {"2026-09-01 08:00:00"}}, wantStatus: 400, wantIDs: []any{}},
		{name: "bad_cursor", path: "/api/v2/deals", query: url.Values{"cursor": {"nope"}}, wantStatus: 400, wantIDs: []any{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := readFake(t)
			dealHistory(t, s, c)
			got := get(t, s, tc.path, tc.query)
			if got.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", got.Status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantIDs, ids(got.Data)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestV2DealShape(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	dealHistory(t, s, c)
	got := get(t, s, "/api/v2/deals", url.Values{"status": {"deleted"}})
	if len(got.Data) != 1 {
		t.Fatalf("got %d deals, want 1", len(got.Data))
	}
	d := got.Data[0]
	// The keys of GetDealsResponse in v2.yaml (source_lead_id, arr, mrr and
	// acv appear only on request or on paid plans).
	want := []string{
		"add_time", "archive_time", "channel", "channel_id", "close_time", "creator_user_id", "currency",
		"custom_fields", "expected_close_date", "id", "is_archived", "is_deleted", "label_ids", "lost_reason",
		"lost_time", "org_id", "origin", "origin_id", "owner_id", "person_id", "pipeline_id", "probability",
		"stage_change_time", "stage_id", "status", "title", "update_time", "value", "visible_to", "won_time",
	}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(d))); diff != "" {
		t.Errorf("deal keys (-want +got):\n%s", diff)
	}
	wantMarks := map[string]any{
		"is_deleted": true, "status": "deleted", "update_time": ts(3 * time.Minute),
		"add_time": ts(0), "owner_id": 11.0, "is_archived": false,
	}
	for k, v := range wantMarks {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
}

func TestV2CursorPaging(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	for range 7 {
		s.Put(1, pipedrivetest.Object{Kind: "person"})
		c.Add(time.Second)
	}
	q := url.Values{"sort_by": {"update_time"}, "limit": {"3"}, "updated_since": {ts(0)}}
	var pages [][]any
	for range 10 {
		got := get(t, s, "/api/v2/persons", q)
		if got.Status != 200 {
			t.Fatalf("status %d", got.Status)
		}
		pages = append(pages, ids(got.Data))
		if len(pages) == 1 {
			// A person changed mid-way moves behind the cursor: it comes
			// again later, and nobody is skipped.
			s.Change(1, "person", 2, map[string]any{"name": "Moved"})
		}
		next, _ := got.AdditionalData["next_cursor"].(string)
		if next == "" {
			if got.AdditionalData["next_cursor"] != nil {
				t.Errorf("last next_cursor = %v, want null", got.AdditionalData["next_cursor"])
			}
			break
		}
		q.Set("cursor", next)
	}
	want := [][]any{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}, {7.0, 2.0}}
	if diff := cmp.Diff(want, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestV2DeletedRows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		kind     string
		path     string
		show     bool
		age      time.Duration
		wantIDs  []any
		wantTime string
	}{
		{name: "person_hidden_by_default", kind: "person", path: "/api/v2/persons", wantIDs: []any{}},
		{name: "person_shown_when_assumed", kind: "person", path: "/api/v2/persons", show: true, wantIDs: []any{1.0}, wantTime: ts(time.Hour)},
		{name: "activity_shown_when_assumed", kind: "activity", path: "/api/v2/activities", show: true, wantIDs: []any{1.0}, wantTime: ts(time.Hour)},
		{name: "purged_after_30_days", kind: "product", path: "/api/v2/products", show: true, age: 31 * 24 * time.Hour, wantIDs: []any{}},
		{name: "stage_not_purged", kind: "stage", path: "/api/v2/stages", show: true, age: 31 * 24 * time.Hour, wantIDs: []any{1.0}, wantTime: ts(time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := readFake(t)
			s.SetAssumptions(pipedrivetest.Assumptions{ListsShowDeleted: tc.show})
			s.Put(1, pipedrivetest.Object{Kind: tc.kind})
			c.Add(time.Hour)
			s.Delete(1, tc.kind, 1)
			c.Add(tc.age)
			got := get(t, s, tc.path, nil)
			if diff := cmp.Diff(tc.wantIDs, ids(got.Data)); diff != "" {
				t.Fatalf("ids (-want +got):\n%s", diff)
			}
			if len(got.Data) == 1 && (got.Data[0]["is_deleted"] != true || got.Data[0]["update_time"] != tc.wantTime) {
				t.Errorf("row = %v, want is_deleted and update_time %s", got.Data[0], tc.wantTime)
			}
		})
	}
}

func TestV2NoTimeFilters(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	for _, k := range []string{"pipeline", "stage", "product"} {
		s.Put(1, pipedrivetest.Object{Kind: k})
	}
	c.Add(time.Hour)
	// Pipelines and stages take no time filter and products no
	// updated_until; the fake ignores them as Pipedrive's spec has none.
	q := url.Values{"updated_since": {ts(-time.Hour)}, "updated_until": {ts(-time.Minute)}}
	for _, path := range []string{"/api/v2/pipelines", "/api/v2/stages", "/api/v2/products"} {
		if got := get(t, s, path, q); len(got.Data) != 1 {
			t.Errorf("%s: %d items, want 1", path, len(got.Data))
		}
	}
	if got := get(t, s, "/api/v2/products", url.Values{"updated_since": {ts(time.Minute)}}); len(got.Data) != 0 {
		t.Errorf("products since later: %d items, want 0", len(got.Data))
	}
}
