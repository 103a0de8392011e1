package backfill

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func TestQuietWindowAgainstPipedrive(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	f.put("deal", map[string]any{"title": "old"}, now.Add(-3*time.Hour))
	f.lead(f.b)
	g, _ := f.b.Request(f.ctx, testCompany, Range{From: now.Add(-30 * time.Minute), Until: now}, false)
	g = f.waitGap("ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	// The probe, leads and archived leads (recents has no leads).
	if g.State != StateRecovered || g.Events != 0 || g.TokensSpent != 20+20+40 || f.pd.TokensSpent(testCompany) != 80 {
		t.Errorf("gap = %s, Pipedrive charged %d; want 80 tokens", mustJSON(g), f.pd.TokensSpent(testCompany))
	}
}

// TestDeletesUnderAssumptions shows which deletes are recovered under each
// answer to the open questions of backfill.md §7 (3 and 4): whether v2
// lists show soft-deleted rows, and how recents shows them.
func TestDeletesUnderAssumptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    pipedrivetest.Assumptions
		want []string // subjects recovered
	}{
		{name: "recents_flags_deletes", a: pipedrivetest.Assumptions{},
			want: []string{"pipedrive.delete.deal", "pipedrive.delete.person"}},
		{name: "lists_and_recents_show_them", a: pipedrivetest.Assumptions{ListsShowDeleted: true},
			want: []string{"pipedrive.delete.deal", "pipedrive.delete.person"}},
		// The person's delete is nowhere but a data:null entry, which is
		// not taken for a delete without corroboration.
		{name: "recents_null_data_lists_hide", a: pipedrivetest.Assumptions{RecentsDeleted: pipedrivetest.RecentsNullData},
			want: []string{"pipedrive.delete.deal"}},
		// A window whose only changes are deletes that recents hides looks
		// quiet to the probe: nothing is recovered, not even the deal.
		{name: "recents_hides_deletes", a: pipedrivetest.Assumptions{ListsShowDeleted: true, RecentsDeleted: pipedrivetest.RecentsHidden},
			want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newPDFixture(t)
			f.pd.SetAssumptions(tc.a)
			now := f.clock.Now()
			person := f.put("person", map[string]any{"name": "Ann"}, now.Add(-3*time.Hour))
			deal := f.put("deal", map[string]any{"title": "x"}, now.Add(-3*time.Hour))
			f.clock.Advance(-20 * time.Minute)
			f.pd.Delete(testCompany, "person", person.ID)
			f.pd.Delete(testCompany, "deal", deal.ID)
			f.clock.Advance(20 * time.Minute)
			f.lead(f.b)
			g, _ := f.b.Request(f.ctx, testCompany, Range{From: now.Add(-30 * time.Minute), Until: now}, false)
			g = f.waitGap("ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
			var got []string
			for _, s := range f.recovered(g.ID) {
				subject, _, _ := strings.Cut(s, ":")
				got = append(got, subject)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) || g.State != StateRecovered {
				t.Errorf("gap %s; recovered %v, want %v", g.State, got, tc.want)
			}
		})
	}
}

// TestBusyWindowCost is backfill.md's busy company: 2,000 changes in 30
// minutes (1,000 activities, 500 deals, 300 persons, 150 organizations, 50
// notes). Its token count is the README's figure.
func TestBusyWindowCost(t *testing.T) {
	t.Parallel()
	f := newPDFixture(t)
	now := f.clock.Now()
	from := now.Add(-30 * time.Minute)
	n := 0
	for _, k := range []struct {
		kind  string
		count int
	}{{"activity", 1000}, {"deal", 500}, {"person", 300}, {"organization", 150}, {"note", 50}} {
		for i := range k.count {
			n++
			at := from.Add(time.Duration(n) * 850 * time.Millisecond).Truncate(time.Second)
			f.put(k.kind, map[string]any{"subject": fmt.Sprint(k.kind, i)}, at)
		}
	}
	f.lead(f.b)
	g, _ := f.b.Request(f.ctx, testCompany, Range{From: from, Until: now}, false)
	g = f.waitGap("ended", func(x Gap) bool { return x.ID == g.ID && x.Ended() })
	if g.State != StateRecovered || g.Events != 2000 {
		t.Fatalf("gap = %s", mustJSON(g))
	}
	t.Logf("busy 30 minutes, 2,000 changes: %d tokens; usage %v", g.TokensSpent, f.pd.Usage())
	if g.TokensSpent > 400 {
		t.Errorf("%d tokens", g.TokensSpent)
	}
}
