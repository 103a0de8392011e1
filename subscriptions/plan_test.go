package subscriptions

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	want := desired{URL: "https://hooks.example.com/webhooks/pipedrive/42", Name: "pipedrive-gateway", User: "pdgw-u", Password: "p4ss"}
	good := func(id int64) pipedrive.Webhook {
		return pipedrive.Webhook{
			ID: id, SubscriptionURL: want.URL, Name: want.Name, Version: "2.0", EventAction: "*", EventObject: "*",
			IsActive: 1, HTTPAuthUser: want.User, HTTPAuthPassword: want.Password,
		}
	}
	with := func(w pipedrive.Webhook, f func(*pipedrive.Webhook)) pipedrive.Webhook { f(&w); return w }
	foreign := pipedrive.Webhook{ID: 900, SubscriptionURL: "https://zapier.example/hook", Name: "zapier", Version: "1.0", EventAction: "added", EventObject: "deal", IsActive: 1}
	cases := []struct {
		name    string
		known   int64
		none    bool // disconnecting
		actual  []pipedrive.Webhook
		want    []action
		wantNil bool
		// wantKeep is the webhook the plan keeps, 0 for none.
		wantKeep int64
	}{
		{name: "none", want: []action{{Kind: actCreate, Reason: "no correct webhook"}}},
		{name: "one_correct", actual: []pipedrive.Webhook{good(1)}, wantNil: true, wantKeep: 1},
		{name: "duplicates_keep_oldest", actual: []pipedrive.Webhook{good(3), good(1), good(2)}, wantKeep: 1,
			want: []action{{Kind: actDelete, ID: 3, Reason: "duplicate"}, {Kind: actDelete, ID: 2, Reason: "duplicate"}}},
		{name: "duplicates_keep_remembered", known: 2, actual: []pipedrive.Webhook{good(1), good(2)}, wantKeep: 2,
			want: []action{{Kind: actDelete, ID: 1, Reason: "duplicate"}}},
		{name: "duplicates_keep_remembered_listed_last", known: 2, actual: []pipedrive.Webhook{good(3), good(1), good(2)}, wantKeep: 2,
			want: []action{{Kind: actDelete, ID: 3, Reason: "duplicate"}, {Kind: actDelete, ID: 1, Reason: "duplicate"}}},
		{name: "remembered_but_wrong_keeps_oldest_correct", known: 1, wantKeep: 2,
			actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.IsActive = 0 }), good(3), good(2)},
			want:   []action{{Kind: actDelete, ID: 1, Reason: "inactive"}, {Kind: actDelete, ID: 3, Reason: "duplicate"}}},
		{name: "wrong_version", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.Version = "1.0" })},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 1, Reason: "wrong version 1.0"}}},
		{name: "wrong_events", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.EventObject = "deal" })},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 1, Reason: "wrong events *.deal"}}},
		{name: "wrong_password", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.HTTPAuthPassword = "old" })},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 1, Reason: "wrong credentials"}}},
		{name: "no_credentials_but_our_url", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.HTTPAuthUser, w.HTTPAuthPassword = "", "" })},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 1, Reason: "wrong credentials"}}},
		{name: "inactive", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.IsActive = 0 })},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 1, Reason: "inactive"}}},
		{name: "old_public_url_migrates", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.SubscriptionURL = "https://old.example.com/webhooks/pipedrive/42" })},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 1, Reason: "old subscription URL"}}},
		{name: "remembered_id_with_other_url", known: 7, actual: []pipedrive.Webhook{{ID: 7, SubscriptionURL: "https://x.example/", Version: "2.0", EventAction: "*", EventObject: "*", IsActive: 1}},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}, {Kind: actDelete, ID: 7, Reason: "old subscription URL"}}},
		{name: "foreign_only", actual: []pipedrive.Webhook{foreign},
			want: []action{{Kind: actCreate, Reason: "no correct webhook"}}},
		{name: "foreign_with_same_name_other_user", actual: []pipedrive.Webhook{with(foreign, func(w *pipedrive.Webhook) { w.Name = want.Name; w.HTTPAuthUser = "someone" }), good(1)}, wantNil: true, wantKeep: 1},
		{name: "foreign_present_and_duplicates", actual: []pipedrive.Webhook{foreign, good(5), good(4)}, wantKeep: 4,
			want: []action{{Kind: actDelete, ID: 5, Reason: "duplicate"}}},
		{name: "one_good_one_wrong", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.Version = "1.0" }), good(2)}, wantKeep: 2,
			want: []action{{Kind: actDelete, ID: 1, Reason: "wrong version 1.0"}}},
		{name: "disconnect_deletes_every_one_of_ours", none: true, known: 7,
			actual: []pipedrive.Webhook{foreign, good(1), with(good(2), func(w *pipedrive.Webhook) { w.Version = "1.0" }),
				with(good(7), func(w *pipedrive.Webhook) { w.SubscriptionURL = "https://old.example.com/x" })},
			want: []action{{Kind: actDelete, ID: 1, Reason: "disconnect"}, {Kind: actDelete, ID: 2, Reason: "disconnect"}, {Kind: actDelete, ID: 7, Reason: "disconnect"}}},
		{name: "disconnect_nothing_of_ours", none: true, actual: []pipedrive.Webhook{foreign}, wantNil: true},
		{name: "disconnect_none_listed", none: true, wantNil: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := want
			d.KnownID, d.None = tc.known, tc.none
			keep, got := plan(d, tc.actual)
			var keptID int64
			if keep != nil {
				keptID = keep.ID
			}
			if keptID != tc.wantKeep {
				t.Errorf("plan keeps webhook %d, want %d", keptID, tc.wantKeep)
			}
			if tc.wantNil {
				if len(got) != 0 {
					t.Fatalf("plan = %+v, want no writes", got)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
