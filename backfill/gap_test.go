package backfill

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func rng(from, until int) Range { return Range{From: at(from), Until: at(until)} }

func gapRec(id, state string, from, until int, uncovered ...Range) *record {
	return &record{Gap: Gap{ID: id, CompanyID: 1, From: at(from), Until: at(until), State: state, Reason: "x", Uncovered: uncovered}}
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	type want struct {
		Update, Create, Remove []string // id:from-until
	}
	show := func(rs []*record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s:%d-%d", r.ID, int(r.From.Sub(t0).Minutes()), int(r.Until.Sub(t0).Minutes())))
		}
		return out
	}
	tests := []struct {
		name     string
		existing []*record
		ev       Range
		want     want
	}{
		{name: "none_opens_one", ev: rng(0, 10), want: want{Create: []string{"new:0-10"}}},
		{name: "overlapping_open_grows", existing: []*record{gapRec("a", StateOpen, 0, 10)}, ev: rng(5, 20),
			want: want{Update: []string{"a:0-20"}}},
		{name: "touching_open_grows", existing: []*record{gapRec("a", StateOpen, 0, 10)}, ev: rng(10, 20),
			want: want{Update: []string{"a:0-20"}}},
		{name: "disjoint_opens_another", existing: []*record{gapRec("a", StateOpen, 0, 10)}, ev: rng(11, 20),
			want: want{Create: []string{"new:11-20"}}},
		{name: "inside_recovered_is_dropped", existing: []*record{gapRec("a", StateRecovered, 0, 30)}, ev: rng(5, 20)},
		{name: "inside_running_is_dropped", existing: []*record{gapRec("a", StateRunning, 0, 30)}, ev: rng(5, 20)},
		{name: "beyond_recovered_opens_the_rest", existing: []*record{gapRec("a", StateRecovered, 0, 10)}, ev: rng(5, 20),
			want: want{Create: []string{"new:10-20"}}},
		{name: "bridging_two_open_merges_them", existing: []*record{gapRec("a", StateOpen, 0, 10), gapRec("b", StateOpen, 20, 30)}, ev: rng(8, 22),
			want: want{Update: []string{"a:0-30"}, Remove: []string{"b:20-30"}}},
		{name: "uncovered_part_of_incomplete_reopens", existing: []*record{gapRec("a", StateIncomplete, 0, 30, rng(20, 30))}, ev: rng(5, 25),
			want: want{Create: []string{"new:20-25"}}},
		{name: "around_recovered_opens_both_sides", existing: []*record{gapRec("a", StateRecovered, 10, 20)}, ev: rng(0, 30),
			want: want{Create: []string{"new:0-10", "new:20-30"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := admit(tc.existing, Evidence{CompanyID: 1, Window: tc.ev, Reason: ReasonOutage}, func() string { return "new" }, t0)
			got := want{Update: show(ch.update), Create: show(ch.create), Remove: show(ch.remove)}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJoinReasons(t *testing.T) {
	t.Parallel()
	if got, want := joinReasons("outage,manual", "", "failed_first_attempt,outage"), "failed_first_attempt,manual,outage"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	from := at(0)
	tests := []struct {
		name string
		it   Item
		want string
	}{
		{name: "deleted", it: Item{Deleted: true, AddTime: at(5)}, want: actionDelete},
		{name: "added_inside", it: Item{AddTime: at(0)}, want: actionCreate},
		{name: "added_before", it: Item{AddTime: at(-1)}, want: actionChange},
		{name: "no_add_time", it: Item{}, want: actionChange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := classify(tc.it, from); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMsgIDStable(t *testing.T) {
	t.Parallel()
	a := MsgID(1, "deal", "5", "change", at(3))
	if b := MsgID(1, "deal", "5", "change", at(3).In(time.FixedZone("x", 3600))); a != b {
		t.Errorf("ids differ by time zone: %s %s", a, b)
	}
	for _, other := range []string{MsgID(2, "deal", "5", "change", at(3)), MsgID(1, "deal", "5", "delete", at(3)), MsgID(1, "deal", "5", "change", at(4))} {
		if other == a {
			t.Errorf("id %s shared by a different event", a)
		}
	}
}
