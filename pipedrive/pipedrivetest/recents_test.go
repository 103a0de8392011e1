package pipedrivetest_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

const v1Layout = "2006-01-02 15:04:05"

func since(d time.Duration) string { return t0.Add(d).Format(v1Layout) }

// recentHistory plants, one minute apart from t0: deal 1, person 1, lead 1
// (never in recents), note 1, user 5; then, at t0+5m, deletes person 1.
func recentHistory(t *testing.T, s *pipedrivetest.Server, c *clock) {
	t.Helper()
	for _, k := range []string{"deal", "person", "lead", "note"} {
		s.Put(1, pipedrivetest.Object{Kind: k})
		c.Add(time.Minute)
	}
	s.Put(1, pipedrivetest.Object{Kind: "user", ID: 5})
	c.Add(time.Minute)
	s.Delete(1, "person", 1)
}

// entry is a recents item reduced to what the table compares.
type entry struct {
	Item string
	ID   float64
	Data string // "object", "null", "array"
}

func entries(items []map[string]any) []entry {
	out := []entry{}
	for _, it := range items {
		e := entry{Item: it["item"].(string), ID: it["id"].(float64), Data: "object"}
		switch it["data"].(type) {
		case nil:
			e.Data = "null"
		case []any:
			e.Data = "array"
		}
		out = append(out, e)
	}
	return out
}

func TestRecents(t *testing.T) {
	t.Parallel()
	deal, note, user := entry{"deal", 1, "object"}, entry{"note", 1, "object"}, entry{"user", 5, "object"}
	cases := []struct {
		name       string
		assume     pipedrivetest.Assumptions
		query      url.Values
		wantStatus int
		want       []entry
	}{
		{name: "everything_since_before", query: url.Values{"since_timestamp": {since(-time.Second)}}, wantStatus: 200,
			want: []entry{deal, note, user, {"person", 1, "object"}}},
		{name: "since_is_exclusive", query: url.Values{"since_timestamp": {since(0)}}, wantStatus: 200,
			want: []entry{note, user, {"person", 1, "object"}}},
		{name: "since_inclusive_when_assumed", assume: pipedrivetest.Assumptions{RecentsSinceInclusive: true},
			query: url.Values{"since_timestamp": {since(0)}}, wantStatus: 200, want: []entry{deal, note, user, {"person", 1, "object"}}},
		{name: "items_list", query: url.Values{"since_timestamp": {since(-time.Second)}, "items": {"deal,user"}}, wantStatus: 200,
			want: []entry{deal, user}},
		{name: "items_list_refused_when_assumed", assume: pipedrivetest.Assumptions{RecentsSingleItem: true},
			query: url.Values{"since_timestamp": {since(-time.Second)}, "items": {"deal,user"}}, wantStatus: 400, want: []entry{}},
		{name: "lead_is_no_item", query: url.Values{"since_timestamp": {since(-time.Second)}, "items": {"lead"}}, wantStatus: 400, want: []entry{}},
		{name: "deleted_as_null", assume: pipedrivetest.Assumptions{RecentsDeleted: pipedrivetest.RecentsNullData},
			query: url.Values{"since_timestamp": {since(4 * time.Minute)}}, wantStatus: 200, want: []entry{{"person", 1, "null"}}},
		{name: "deleted_hidden", assume: pipedrivetest.Assumptions{RecentsDeleted: pipedrivetest.RecentsHidden},
			query: url.Values{"since_timestamp": {since(4 * time.Minute)}}, wantStatus: 200, want: []entry{}},
		{name: "user_as_array", assume: pipedrivetest.Assumptions{RecentsUserAsArray: true},
			query: url.Values{"since_timestamp": {since(3 * time.Minute)}, "items": {"user"}}, wantStatus: 200, want: []entry{{"user", 5, "array"}}},
		{name: "horizon_truncates", assume: pipedrivetest.Assumptions{RecentsHorizon: 150 * time.Second},
			query: url.Values{"since_timestamp": {since(-time.Hour)}}, wantStatus: 200, want: []entry{note, user, {"person", 1, "object"}}},
		{name: "old_since_fails_when_assumed", assume: pipedrivetest.Assumptions{RecentsHorizon: time.Minute, RecentsOldSinceFails: true},
			query: url.Values{"since_timestamp": {since(0)}}, wantStatus: 400, want: []entry{}},
		{name: "since_required", query: url.Values{}, wantStatus: 400, want: []entry{}},
		{name: "since_rfc3339_refused", query: url.Values{"since_timestamp": {ts(0)}}, wantStatus: 400, want: []entry{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := readFake(t)
			s.SetAssumptions(tc.assume)
			recentHistory(t, s, c)
			got := get(t, s, "/v1/recents", tc.query)
			if got.Status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", got.Status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.want, entries(got.Data)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecentsShapesAndPaging(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	recentHistory(t, s, c)
	q := url.Values{"since_timestamp": {since(-time.Second)}, "limit": {"3"}}
	first := get(t, s, "/v1/recents", q)
	wantAD := map[string]any{
		"since_timestamp":        since(-time.Second),
		"last_timestamp_on_page": since(4 * time.Minute),
		"pagination":             map[string]any{"start": 0.0, "limit": 3.0, "more_items_in_collection": true, "next_start": 3.0},
	}
	if diff := cmp.Diff(wantAD, first.AdditionalData); diff != "" {
		t.Errorf("additional_data (-want +got):\n%s", diff)
	}
	deal := first.Data[0]["data"].(map[string]any)
	wantDeal := map[string]any{"id": 1.0, "deleted": false, "active": true, "is_archived": false, "status": "open",
		"user_id": 11.0, "add_time": since(0), "update_time": since(0)}
	for k, v := range wantDeal {
		if deal[k] != v {
			t.Errorf("deal %s = %v, want %v", k, deal[k], v)
		}
	}
	user := first.Data[2]["data"].(map[string]any)
	if user["created"] != since(4*time.Minute) || user["modified"] != since(4*time.Minute) || user["add_time"] != nil {
		t.Errorf("user times = created %v modified %v add_time %v, want created/modified only", user["created"], user["modified"], user["add_time"])
	}

	q.Set("start", "3")
	second := get(t, s, "/v1/recents", q)
	person := second.Data[0]["data"].(map[string]any)
	if person["active_flag"] != false || person["update_time"] != since(5*time.Minute) {
		t.Errorf("deleted person = active_flag %v update_time %v, want false at the delete", person["active_flag"], person["update_time"])
	}
	wantPage := map[string]any{"start": 3.0, "limit": 3.0, "more_items_in_collection": false}
	if diff := cmp.Diff(wantPage, second.AdditionalData["pagination"]); diff != "" {
		t.Errorf("second pagination (-want +got):\n%s", diff)
	}

	empty := get(t, s, "/v1/recents", url.Values{"since_timestamp": {since(time.Hour)}})
	if len(empty.Data) != 0 || empty.AdditionalData["last_timestamp_on_page"] != nil {
		t.Errorf("quiet window = %d items, last %v; want none and null", len(empty.Data), empty.AdditionalData["last_timestamp_on_page"])
	}
}
