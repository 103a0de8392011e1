package pipedrive_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

var t0 = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

// readFixture is newFixture on a fake clock at t0.
func readFixture(t *testing.T) (fixture, *clock) {
	t.Helper()
	f := newFixture(t, pipedrive.Options{})
	c := &clock{now: t0}
	f.fake.SetClock(c.Now)
	return f, c
}

// brief is what the tables compare of an Item.
type brief struct {
	Kind     pipedrive.Kind
	ID       string
	Update   time.Duration // since t0
	Deleted  bool
	Archived bool
	NoData   bool
}

func briefs(items []pipedrive.Item) []brief {
	out := []brief{}
	for _, it := range items {
		b := brief{Kind: it.Kind, ID: it.ID, Deleted: it.Deleted, Archived: it.Archived, NoData: it.NoData}
		if !it.UpdateTime.IsZero() {
			b.Update = it.UpdateTime.Sub(t0)
		}
		out = append(out, b)
	}
	return out
}

// history: deals 1-3 at t0; at +1m deal 2 changes; at +2m deal 3 is
// deleted and person 1 created; at +3m deal 1 is archived.
func history(f fixture, c *clock) {
	for range 3 {
		f.fake.Put(companyID, pipedrivetest.Object{Kind: "deal"})
	}
	c.Advance(time.Minute)
	f.fake.Change(companyID, "deal", 2, map[string]any{"value": 10})
	c.Advance(time.Minute)
	f.fake.Delete(companyID, "deal", 3)
	f.fake.Put(companyID, pipedrivetest.Object{Kind: "person"})
	c.Advance(time.Minute)
	f.fake.Archive(companyID, "deal", 1)
}

func TestListChanges(t *testing.T) {
	t.Parallel()
	deal := pipedrive.KindDeal
	cases := []struct {
		name     string
		req      pipedrive.ListRequest
		want     []brief
		wantCost int
		wantErr  error
	}{
		{name: "deals_by_update_time", req: pipedrive.ListRequest{Kind: deal},
			want: []brief{{deal, "2", time.Minute, false, false, false}}, wantCost: 10},
		{name: "with_deleted", req: pipedrive.ListRequest{Kind: deal, Status: []string{"open", "won", "lost", "deleted"}, Since: t0.Add(30 * time.Second)},
			want: []brief{{deal, "2", time.Minute, false, false, false}, {deal, "3", 2 * time.Minute, true, false, false}}, wantCost: 10},
		{name: "until_is_exclusive_and_rounded_up", req: pipedrive.ListRequest{Kind: deal, Status: []string{"deleted", "open"}, Until: t0.Add(time.Minute + time.Millisecond)},
			want: []brief{{deal, "2", time.Minute, false, false, false}}, wantCost: 10},
		{name: "archived", req: pipedrive.ListRequest{Kind: deal, Archived: true},
			want: []brief{{deal, "1", 3 * time.Minute, false, true, false}}, wantCost: 20},
		{name: "persons", req: pipedrive.ListRequest{Kind: pipedrive.KindPerson, Since: t0},
			want: []brief{{pipedrive.KindPerson, "1", 2 * time.Minute, false, false, false}}, wantCost: 10},
		{name: "stages_cost_5", req: pipedrive.ListRequest{Kind: pipedrive.KindStage}, want: []brief{}, wantCost: 5},
		{name: "leads_have_no_v2_list", req: pipedrive.ListRequest{Kind: pipedrive.KindLead}, wantErr: pipedrive.ErrValidation},
		{name: "pipelines_no_since", req: pipedrive.ListRequest{Kind: pipedrive.KindPipeline, Since: t0}, wantErr: pipedrive.ErrValidation},
		{name: "products_no_until", req: pipedrive.ListRequest{Kind: pipedrive.KindProduct, Until: t0}, wantErr: pipedrive.ErrValidation},
		{name: "status_only_for_deals", req: pipedrive.ListRequest{Kind: pipedrive.KindPerson, Status: []string{"open"}}, wantErr: pipedrive.ErrValidation},
		{name: "limit_too_large", req: pipedrive.ListRequest{Kind: deal, Limit: 501}, wantErr: pipedrive.ErrValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, c := readFixture(t)
			history(f, c)
			got, err := f.client.ListChanges(t.Context(), "acme-sales", f.cred, tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ListChanges: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if n := len(f.fake.Calls()); n != 0 {
					t.Errorf("invalid request made %d calls", n)
				}
				return
			}
			if diff := cmp.Diff(tc.want, briefs(got.Items)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if got.Cost != tc.wantCost || got.More || got.NextCursor != "" {
				t.Errorf("page cost %d more %v cursor %q; want cost %d, last page", got.Cost, got.More, got.NextCursor, tc.wantCost)
			}
			_, remaining := f.fake.DailyBudget(companyID)
			if got.RateLimit.DailyRemaining != remaining || got.RateLimit.DailyLimit != pipedrivetest.DefaultDailyBudget || got.RateLimit.Remaining < 0 {
				t.Errorf("rate limit = %+v, want daily remaining %d", got.RateLimit, remaining)
			}
			if spent := f.fake.TokensSpent(companyID); spent != got.Cost {
				t.Errorf("fake charged %d, page says %d", spent, got.Cost)
			}
		})
	}
}

func TestListChangesPaging(t *testing.T) {
	t.Parallel()
	f, c := readFixture(t)
	for range 5 {
		f.fake.Put(companyID, pipedrivetest.Object{Kind: "activity"})
		c.Advance(time.Second)
	}
	req := pipedrive.ListRequest{Kind: pipedrive.KindActivity, Since: t0, Limit: 2}
	var got []string
	for pages := 0; ; pages++ {
		p, err := f.client.ListChanges(t.Context(), "", f.cred, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if !p.More || pages > 5 {
			break
		}
		req.Cursor = p.NextCursor
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5"}, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if n := f.fake.CallCount("", pipedrive.RouteListActivities); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
	q := f.fake.Calls()[0].RawQuery
	if want := "limit=2&sort_by=update_time&updated_since=2026-09-01T08%3A00%3A00Z"; q != want {
		t.Errorf("query = %s, want %s", q, want)
	}
}

func TestRecents(t *testing.T) {
	t.Parallel()
	local := time.FixedZone("EEST", 3*3600)
	cases := []struct {
		name          string
		assume        pipedrivetest.Assumptions
		req           pipedrive.RecentsRequest
		want          []brief
		wantMore      bool
		wantNextStart int
		wantLast      time.Duration
		wantErr       error
	}{
		{name: "all_since_local_time", req: pipedrive.RecentsRequest{Since: t0.Add(-time.Second).In(local)},
			want: []brief{
				{"deal", "2", time.Minute, false, false, false}, {"deal", "3", 2 * time.Minute, true, false, false},
				{"person", "1", 2 * time.Minute, false, false, false}, {"deal", "1", 3 * time.Minute, false, true, false},
			},
			wantLast: 3 * time.Minute},
		{name: "items_and_paging", req: pipedrive.RecentsRequest{Since: t0.Add(30 * time.Second), Items: []pipedrive.Kind{"deal"}, Limit: 2},
			want:     []brief{{"deal", "2", time.Minute, false, false, false}, {"deal", "3", 2 * time.Minute, true, false, false}},
			wantMore: true, wantNextStart: 2, wantLast: 2 * time.Minute},
		{name: "second_page", req: pipedrive.RecentsRequest{Since: t0.Add(30 * time.Second), Items: []pipedrive.Kind{"deal"}, Start: 2, Limit: 2},
			want: []brief{{"deal", "1", 3 * time.Minute, false, true, false}}, wantLast: 3 * time.Minute},
		{name: "deleted_as_null", assume: pipedrivetest.Assumptions{RecentsDeleted: pipedrivetest.RecentsNullData},
			req:  pipedrive.RecentsRequest{Since: t0.Add(90 * time.Second), Items: []pipedrive.Kind{"deal"}},
			want: []brief{{"deal", "3", 0, false, false, true}, {"deal", "1", 3 * time.Minute, false, true, false}}, wantLast: 3 * time.Minute},
		{name: "quiet", req: pipedrive.RecentsRequest{Since: t0.Add(time.Hour)}, want: []brief{}},
		{name: "since_required", req: pipedrive.RecentsRequest{}, wantErr: pipedrive.ErrValidation},
		{name: "list_refused", assume: pipedrivetest.Assumptions{RecentsSingleItem: true},
			req: pipedrive.RecentsRequest{Since: t0, Items: []pipedrive.Kind{"deal", "person"}}, wantErr: pipedrive.ErrValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, c := readFixture(t)
			f.fake.SetAssumptions(tc.assume)
			history(f, c)
			got, err := f.client.Recents(t.Context(), "", f.cred, tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Recents: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, briefs(got.Items)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			var last time.Duration
			if !got.LastTimestamp.IsZero() {
				last = got.LastTimestamp.Sub(t0)
			}
			if got.More != tc.wantMore || got.NextStart != tc.wantNextStart || last != tc.wantLast || got.Cost != 20 {
				t.Errorf("page more %v next %d last %v cost %d; want %v %d %v 20", got.More, got.NextStart, last, got.Cost, tc.wantMore, tc.wantNextStart, tc.wantLast)
			}
		})
	}
}
