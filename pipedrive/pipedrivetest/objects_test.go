package pipedrivetest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func TestObjectsOverTime(t *testing.T) {
	t.Parallel()
	s, c := readFake(t)
	put := s.Put(1, pipedrivetest.Object{Kind: "deal", Fields: map[string]any{"title": "Acme"}})
	c.Add(time.Minute)
	changed := s.Change(1, "deal", put.ID, map[string]any{"value": 500})
	c.Add(time.Minute)
	archived := s.Archive(1, "deal", put.ID)

	want := pipedrivetest.Object{
		Kind: "deal", ID: 1, Fields: map[string]any{"title": "Acme", "value": 500},
		AddTime: t0, UpdateTime: t0.Add(2 * time.Minute), Archived: true, ArchiveTime: t0.Add(2 * time.Minute),
	}
	if diff := cmp.Diff(want, archived); diff != "" {
		t.Errorf("archived (-want +got):\n%s", diff)
	}
	if changed.UpdateTime != t0.Add(time.Minute) || changed.AddTime != t0 {
		t.Errorf("changed times = %v / %v", changed.AddTime, changed.UpdateTime)
	}
	got, ok := s.Object(1, "deal", 1)
	if !ok || !cmp.Equal(want, got) {
		t.Errorf("Object = %+v, %v", got, ok)
	}
	// Put keeps the planted times, so history can be seeded directly.
	old := s.Put(1, pipedrivetest.Object{Kind: "lead", AddTime: t0.Add(-time.Hour), UpdateTime: t0.Add(-time.Minute)})
	if old.UUID != pipedrivetest.LeadUUID(1, 1) || old.UpdateTime != t0.Add(-time.Minute) {
		t.Errorf("lead = %+v", old)
	}
	if n := len(s.Objects(1, "")); n != 2 {
		t.Errorf("Objects = %d, want 2", n)
	}
}

func TestApplyErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		company int64
		op      pipedrivetest.Op
		obj     pipedrivetest.Object
		noObj   bool
	}{
		{name: "unknown_company", company: 9, op: pipedrivetest.OpPut, obj: pipedrivetest.Object{Kind: "deal"}},
		{name: "unknown_kind", company: 1, op: pipedrivetest.OpPut, obj: pipedrivetest.Object{Kind: "file"}},
		{name: "missing", company: 1, op: pipedrivetest.OpChange, obj: pipedrivetest.Object{Kind: "deal", ID: 42}, noObj: true},
		{name: "change_deleted", company: 1, op: pipedrivetest.OpChange, obj: pipedrivetest.Object{Kind: "person", ID: 1}},
		{name: "change_archived", company: 1, op: pipedrivetest.OpChange, obj: pipedrivetest.Object{Kind: "deal", ID: 1}},
		{name: "archive_a_person", company: 1, op: pipedrivetest.OpArchive, obj: pipedrivetest.Object{Kind: "person", ID: 2}},
		{name: "unknown_op", company: 1, op: "merge", obj: pipedrivetest.Object{Kind: "person", ID: 2}},
		{name: "purged", company: 1, op: pipedrivetest.OpDelete, obj: pipedrivetest.Object{Kind: "product", ID: 1}, noObj: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := readFake(t)
			s.Put(1, pipedrivetest.Object{Kind: "deal", Archived: true})
			s.Put(1, pipedrivetest.Object{Kind: "person", Deleted: true})
			s.Put(1, pipedrivetest.Object{Kind: "person"})
			s.Put(1, pipedrivetest.Object{Kind: "product", Deleted: true, DeleteTime: t0.Add(-31 * 24 * time.Hour)})
			c.Add(time.Second)
			_, err := s.Apply(tc.company, tc.op, tc.obj)
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			if errors.Is(err, pipedrivetest.ErrNoObject) != tc.noObj {
				t.Errorf("Apply = %v; ErrNoObject %v, want %v", err, !tc.noObj, tc.noObj)
			}
		})
	}
}
