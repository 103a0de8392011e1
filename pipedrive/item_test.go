package pipedrive

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseItem(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 9, 1, 8, 14, 40, 0, time.UTC)
	cases := []struct {
		name string
		kind Kind
		raw  string
		want Item
	}{
		{name: "v2_deal", kind: KindDeal, raw: `{"id":5123,"add_time":"2026-09-01T08:14:40Z","update_time":"2026-09-01T08:14:40Z","is_deleted":false,"is_archived":true,"status":"open"}`,
			want: Item{ID: "5123", AddTime: at, UpdateTime: at, Archived: true}},
		{name: "v2_deleted_deal_by_status", kind: KindDeal, raw: `{"id":"5123","status":"deleted"}`, want: Item{ID: "5123", Deleted: true}},
		{name: "v2_is_deleted", kind: KindPerson, raw: `{"id":7,"is_deleted":true,"update_time":"2026-09-01T08:14:40.000Z"}`, want: Item{ID: "7", Deleted: true, UpdateTime: at}},
		{name: "v1_deal_deleted", kind: KindDeal, raw: `{"id":1,"deleted":true,"active":false,"update_time":"2026-09-01 08:14:40"}`, want: Item{ID: "1", Deleted: true, UpdateTime: at}},
		{name: "v1_active_flag_false", kind: KindNote, raw: `{"id":9,"active_flag":false}`, want: Item{ID: "9", Deleted: true}},
		{name: "v1_active_flag_as_number", kind: KindPerson, raw: `{"id":9,"active_flag":0}`, want: Item{ID: "9", Deleted: true}},
		{name: "v1_active_flag_as_string", kind: KindPerson, raw: `{"id":9,"active_flag":"true"}`, want: Item{ID: "9"}},
		{name: "v1_pipeline_inactive", kind: KindPipeline, raw: `{"id":2,"active":false}`, want: Item{ID: "2", Deleted: true}},
		{name: "v1_deal_inactive_is_not_deleted", kind: KindDeal, raw: `{"id":2,"active":false}`, want: Item{ID: "2"}},
		{name: "user_deactivated", kind: KindUser, raw: `{"id":3,"active_flag":false,"is_deleted":false,"created":"2026-09-01 08:14:40","modified":"2026-09-01 08:14:40"}`,
			want: Item{ID: "3", Inactive: true, AddTime: at, UpdateTime: at}},
		{name: "user_deleted", kind: KindUser, raw: `{"id":3,"is_deleted":true}`, want: Item{ID: "3", Deleted: true}},
		{name: "lead_uuid", kind: KindLead, raw: `{"id":"adf21080-0e10-11eb-879b-05d71fb426ec","is_archived":"1"}`, want: Item{ID: "adf21080-0e10-11eb-879b-05d71fb426ec", Archived: true}},
		{name: "odd_field_spoils_only_itself", kind: KindDeal, raw: `{"id":4,"update_time":{"x":1},"is_deleted":true}`, want: Item{ID: "4", Deleted: true}},
		{name: "not_an_object", kind: KindDeal, raw: `[1,2]`, want: Item{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := parseItem(tc.kind, json.RawMessage(tc.raw))
			tc.want.Kind, tc.want.Raw = tc.kind, json.RawMessage(tc.raw)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseItem (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecentsEntry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		raw  string
		want Item
	}{
		{name: "object", raw: `{"item":"deal","id":1,"data":{"id":1,"deleted":false}}`, want: Item{Kind: KindDeal, ID: "1", Raw: json.RawMessage(`{"id":1,"deleted":false}`)}},
		{name: "null_data", raw: `{"item":"file","id":4410,"data":null}`, want: Item{Kind: "file", ID: "4410", NoData: true}},
		{name: "user_array", raw: `{"item":"user","id":5,"data":[{"id":5,"active_flag":false}]}`, want: Item{Kind: KindUser, ID: "5", Inactive: true, Raw: json.RawMessage(`{"id":5,"active_flag":false}`)}},
		{name: "empty_array", raw: `{"item":"user","id":5,"data":[]}`, want: Item{Kind: KindUser, ID: "5", NoData: true}},
		{name: "id_only_on_entry", raw: `{"item":"stage","id":"8","data":{"name":"x"}}`, want: Item{Kind: KindStage, ID: "8", Raw: json.RawMessage(`{"name":"x"}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e recentsEntry
			if err := json.Unmarshal([]byte(tc.raw), &e); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, recentsItem(e)); diff != "" {
				t.Errorf("recentsItem (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPaginationNext(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		raw       string
		start     int
		limit     int
		n         int
		wantMore  bool
		wantStart int
	}{
		{name: "next_start", raw: `{"start":0,"limit":100,"more_items_in_collection":true,"next_start":100}`, wantMore: true, wantStart: 100},
		{name: "no_next_start", raw: `{"start":"200","limit":"50","more_items_in_collection":"true"}`, start: 200, limit: 100, wantMore: true, wantStart: 250},
		{name: "sloppy_numbers", raw: `{"start":"0,","limit":"100,","more_items_in_collection":true}`, limit: 0, n: 7, wantMore: true, wantStart: 7},
		{name: "end", raw: `{"more_items_in_collection":false,"next_start":5}`},
		{name: "not_an_object", raw: `"x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p pagination
			if err := json.Unmarshal([]byte(tc.raw), &p); err != nil {
				t.Fatal(err)
			}
			more, start := p.next(tc.start, tc.limit, tc.n)
			if more != tc.wantMore || start != tc.wantStart {
				t.Errorf("next = %v, %d; want %v, %d", more, start, tc.wantMore, tc.wantStart)
			}
		})
	}
}
