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
		actual  []pipedrive.Webhook
		want    []action
		wantNil bool
	}{
		{name: "none", want: []action{{Kind: actCreate, Reason: "no correct webhook"}}},
		{name: "one_correct", actual: []pipedrive.Webhook{good(1)}, wantNil: true},
		{name: "duplicates_keep_oldest", actual: []pipedrive.Webhook{good(3), good(1), good(2)},
			want: []action{{Kind: actDelete, ID: 3, Reason: "duplicate"}, {Kind: actDelete, ID: 2, Reason: "duplicate"}}},
		{name: "duplicates_keep_remembered", known: 2, actual: []pipedrive.Webhook{good(1), good(2)},
			want: []action{{Kind: actDelete, ID: 1, Reason: "duplicate"}}},
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
		{name: "foreign_with_same_name_other_user", actual: []pipedrive.Webhook{with(foreign, func(w *pipedrive.Webhook) { w.Name = want.Name; w.HTTPAuthUser = "someone" }), good(1)}, wantNil: true},
		{name: "foreign_present_and_duplicates", actual: []pipedrive.Webhook{foreign, good(5), good(4)},
			want: []action{{Kind: actDelete, ID: 5, Reason: "duplicate"}}},
		{name: "one_good_one_wrong", actual: []pipedrive.Webhook{with(good(1), func(w *pipedrive.Webhook) { w.Version = "1.0" }), good(2)},
			want: []action{{Kind: actDelete, ID: 1, Reason: "wrong version 1.0"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := want
			d.KnownID = tc.known
			got := plan(d, tc.actual)
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
