package pipedrivetest_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// leadHistory plants leads 1-4 a minute apart, archives 3 and deletes 4.
func leadHistory(t *testing.T, s *pipedrivetest.Server, c *clock) {
	t.Helper()
	for range 4 {
		s.Put(1, pipedrivetest.Object{Kind: "lead"})
		c.Add(time.Minute)
	}
	s.Archive(1, "lead", 3)
	s.Delete(1, "lead", 4)
}

func TestLeads(t *testing.T) {
	t.Parallel()
	uuid := func(id int64) any { return pipedrivetest.LeadUUID(1, id) }
	cases := []struct {
		name    string
		assume  pipedrivetest.Assumptions
		path    string
		query   url.Values
		wantIDs []any
		wantAD  map[string]any
	}{
		{name: "not_archived_not_deleted", path: "/v1/leads", wantIDs: []any{uuid(1), uuid(2)},
			wantAD: map[string]any{"start": 0.0, "limit": 100.0, "more_items_in_collection": false}},
		{name: "updated_since", path: "/v1/leads", query: url.Values{"updated_since": {ts(time.Minute)}}, wantIDs: []any{uuid(2)}},
		{name: "sort_update_time_desc_and_paging", path: "/v1/leads", query: url.Values{"sort": {"update_time DESC"}, "limit": {"1"}},
			wantIDs: []any{uuid(2)}, wantAD: map[string]any{"start": 0.0, "limit": 1.0, "more_items_in_collection": true}},
		{name: "archived", path: "/v1/leads/archived", wantIDs: []any{uuid(3)}},
		{name: "archived_ignores_updated_since", path: "/v1/leads/archived", query: url.Values{"updated_since": {ts(time.Hour)}}, wantIDs: []any{uuid(3)}},
		{name: "archived_honours_updated_since_when_assumed", assume: pipedrivetest.Assumptions{ArchivedLeadsUpdatedSince: true},
			path: "/v1/leads/archived", query: url.Values{"updated_since": {ts(time.Hour)}}, wantIDs: []any{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := readFake(t)
			s.SetAssumptions(tc.assume)
			leadHistory(t, s, c)
			got := get(t, s, tc.path, tc.query)
			if diff := cmp.Diff(tc.wantIDs, ids(got.Data)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if tc.wantAD != nil {
				if diff := cmp.Diff(tc.wantAD, got.AdditionalData); diff != "" {
					t.Errorf("additional_data (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestLeadShape(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	leadHistory(t, s, c)
	lead := get(t, s, "/v1/leads/archived", nil).Data[0]
	want := map[string]any{
		"id": pipedrivetest.LeadUUID(1, 3), "is_archived": true, "owner_id": 11.0,
		"add_time": "2026-09-01T08:02:00.000Z", "update_time": "2026-09-01T08:04:00.000Z",
	}
	for k, v := range want {
		if lead[k] != v {
			t.Errorf("%s = %v, want %v", k, lead[k], v)
		}
	}
}

func TestNotes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		show    bool
		query   url.Values
		wantIDs []any
		wantPg  map[string]any
	}{
		{name: "all_live", wantIDs: []any{1.0, 2.0, 3.0},
			wantPg: map[string]any{"start": 0.0, "limit": 100.0, "more_items_in_collection": false}},
		{name: "updated_since_sorted", query: url.Values{"updated_since": {ts(time.Minute)}, "sort": {"update_time ASC"}},
			wantIDs: []any{2.0, 3.0, 1.0}},
		{name: "deleted_shown_when_assumed", show: true, query: url.Values{"updated_since": {ts(4 * time.Minute)}}, wantIDs: []any{1.0, 4.0}},
		{name: "offset_paging", query: url.Values{"start": {"1"}, "limit": {"1"}}, wantIDs: []any{2.0},
			wantPg: map[string]any{"start": 1.0, "limit": 1.0, "more_items_in_collection": true, "next_start": 2.0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := readFake(t)
			s.SetAssumptions(pipedrivetest.Assumptions{ListsShowDeleted: tc.show})
			for range 4 {
				s.Put(1, pipedrivetest.Object{Kind: "note"})
				c.Add(time.Minute)
			}
			s.Change(1, "note", 1, map[string]any{"content": "<p>later</p>"})
			s.Delete(1, "note", 4)
			got := get(t, s, "/v1/notes", tc.query)
			if diff := cmp.Diff(tc.wantIDs, ids(got.Data)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if tc.wantPg != nil {
				if diff := cmp.Diff(tc.wantPg, got.AdditionalData["pagination"]); diff != "" {
					t.Errorf("pagination (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	s.Put(1, pipedrivetest.Object{Kind: "user", ID: 20, Fields: map[string]any{"name": "Ann"}})
	c.Add(time.Minute)
	s.Change(1, "user", 20, map[string]any{"active_flag": false})
	got := get(t, s, "/v1/users", url.Values{"start": {"1"}, "limit": {"1"}})
	if diff := cmp.Diff([]any{11.0, 20.0}, ids(got.Data)); diff != "" {
		t.Fatalf("ids (-want +got):\n%s", diff)
	}
	me, ann := got.Data[0], got.Data[1]
	if me["is_you"] != true || me["modified"] != "2020-01-01 00:00:00" {
		t.Errorf("own user = is_you %v modified %v", me["is_you"], me["modified"])
	}
	want := map[string]any{"name": "Ann", "active_flag": false, "is_deleted": false, "created": since(0), "modified": since(time.Minute)}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("user %s = %v, want %v", k, ann[k], v)
		}
	}
	if got.AdditionalData != nil {
		t.Errorf("additional_data = %v, want none (GET /users has no paging)", got.AdditionalData)
	}
}
