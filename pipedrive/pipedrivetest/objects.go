package pipedrivetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The kinds of objects the fake stores, as Pipedrive names them.
const (
	kindDeal         = "deal"
	kindPerson       = "person"
	kindOrganization = "organization"
	kindActivity     = "activity"
	kindProduct      = "product"
	kindPipeline     = "pipeline"
	kindStage        = "stage"
	kindLead         = "lead"
	kindNote         = "note"
	kindUser         = "user"
)

var kinds = map[string]bool{
	kindDeal: true, kindPerson: true, kindOrganization: true, kindActivity: true, kindProduct: true,
	kindPipeline: true, kindStage: true, kindLead: true, kindNote: true, kindUser: true,
}

// purgeAfter is how long soft-deleted objects of the purged kinds stay
// readable ("permanent deletion logic for 6 core entities", 2023).
const purgeAfter = 30 * 24 * time.Hour

// purged are the kinds Pipedrive deletes permanently 30 days after a delete.
var purgedKinds = map[string]bool{
	kindDeal: true, kindPerson: true, kindOrganization: true, kindActivity: true, kindProduct: true,
}

// Object is a Pipedrive object as a test plants and changes it. The fake
// renders it in each API's shape: v2 lists, and the v1 shape in recents and
// the v1 lists.
type Object struct {
	// Kind is deal, person, organization, activity, product, pipeline,
	// stage, lead, note or user.
	Kind string `json:"kind"`
	// ID is the object's id within its company and kind; 0 on Put picks the
	// next free one.
	ID int64 `json:"id"`
	// UUID is a lead's id as the API shows it; the fake derives it from ID.
	UUID string `json:"uuid,omitempty"`
	// Fields are written into the rendered object as given (title, name,
	// value, person_id, custom_fields …), in v2 names; the few that v1 names
	// differently (owner_id of a deal is user_id there …) are renamed for v1.
	// id, times and the deleted and archived markers are the fake's own and
	// override Fields. Values are not copied deeply.
	Fields map[string]any `json:"fields,omitempty"`
	// AddTime and UpdateTime default to the fake's clock; users show them
	// as created and modified. Whole seconds, as Pipedrive keeps them.
	AddTime    time.Time `json:"add_time"`
	UpdateTime time.Time `json:"update_time"`
	// Archived (deals and leads) hides the object from the main lists and
	// shows it in /archived ones.
	Archived    bool      `json:"archived,omitempty"`
	ArchiveTime time.Time `json:"archive_time,omitzero"`
	// Deleted marks a soft delete: v2 is_deleted, deals status "deleted", v1
	// deleted / active_flag false. Deals, persons, organizations, activities
	// and products are purged 30 days after DeleteTime; deleted leads vanish
	// at once (no API lists them).
	Deleted    bool      `json:"deleted,omitempty"`
	DeleteTime time.Time `json:"delete_time,omitzero"`
}

// Op is what Apply does to an object.
type Op string

// The operations of Apply.
const (
	// OpPut creates or replaces an object.
	OpPut Op = "put"
	// OpChange merges Fields (a nil value stores JSON null) and moves
	// update_time to now.
	OpChange Op = "change"
	// OpArchive archives a deal or lead; OpUnarchive undoes it.
	OpArchive   Op = "archive"
	OpUnarchive Op = "unarchive"
	// OpDelete soft-deletes; update_time becomes the delete time.
	OpDelete Op = "delete"
)

// ErrNoObject is returned by Apply for an object that does not exist (or
// was purged).
var ErrNoObject = errors.New("pipedrivetest: no such object")

// objectStore holds a company's objects by kind and id; nil until used.
type objectStore struct {
	byKind map[string]map[int64]*Object
	nextID map[string]int64
}

// Put creates or replaces an object and returns it as stored.
func (s *Server) Put(companyID int64, o Object) Object { return s.must(s.Apply(companyID, OpPut, o)) }

// Change merges fields into an object, as an edit in Pipedrive does, and
// moves its update_time to now. It returns the stored object.
func (s *Server) Change(companyID int64, kind string, id int64, fields map[string]any) Object {
	return s.must(s.Apply(companyID, OpChange, Object{Kind: kind, ID: id, Fields: fields}))
}

// Archive archives a deal or lead now.
func (s *Server) Archive(companyID int64, kind string, id int64) Object {
	return s.must(s.Apply(companyID, OpArchive, Object{Kind: kind, ID: id}))
}

// Delete soft-deletes an object now.
func (s *Server) Delete(companyID int64, kind string, id int64) Object {
	return s.must(s.Apply(companyID, OpDelete, Object{Kind: kind, ID: id}))
}

func (s *Server) must(o Object, err error) Object {
	if err != nil {
		s.errorf("%v", err)
	}
	return o
}

// Object returns a stored object, purged ones included.
func (s *Server) Object(companyID int64, kind string, id int64) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.company(companyID)
	if co == nil {
		return Object{}, false
	}
	o := co.store.get(kind, id)
	if o == nil {
		return Object{}, false
	}
	return o.clone(), true
}

// Objects returns a company's objects of one kind ("" = all), by kind and id.
func (s *Server) Objects(companyID int64, kind string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.company(companyID)
	if co == nil {
		return nil
	}
	var out []Object
	for _, k := range slices.Sorted(maps.Keys(co.store.byKind)) {
		if kind != "" && k != kind {
			continue
		}
		for _, o := range co.store.sorted(k) {
			out = append(out, o.clone())
		}
	}
	return out
}

// Apply performs op on an object of a company at the fake's clock; it is
// what Put, Change, Archive and Delete do, with errors instead of test
// failures (for the /_fake/ control API).
func (s *Server) Apply(companyID int64, op Op, o Object) (Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.company(companyID)
	if co == nil {
		return Object{}, fmt.Errorf("pipedrivetest: unknown company %d", companyID)
	}
	if !kinds[o.Kind] {
		return Object{}, fmt.Errorf("pipedrivetest: unknown kind %q", o.Kind)
	}
	now := s.now().UTC().Truncate(time.Second)
	if op == OpPut {
		return co.store.put(companyID, o, now).clone(), nil
	}
	cur := co.store.get(o.Kind, o.ID)
	if cur == nil || cur.gone(now) {
		return Object{}, fmt.Errorf("%w: company %d %s %d", ErrNoObject, companyID, o.Kind, o.ID)
	}
	if cur.Deleted {
		return Object{}, fmt.Errorf("pipedrivetest: %s %d is deleted", o.Kind, o.ID)
	}
	switch op {
	case OpChange:
		if cur.Archived {
			// Archived deals and leads are read-only since 2025-07-15.
			return Object{}, fmt.Errorf("pipedrivetest: %s %d is archived", o.Kind, o.ID)
		}
		if cur.Fields == nil {
			cur.Fields = map[string]any{}
		}
		maps.Copy(cur.Fields, o.Fields)
	case OpArchive, OpUnarchive:
		if o.Kind != kindDeal && o.Kind != kindLead {
			return Object{}, fmt.Errorf("pipedrivetest: only deals and leads are archived, not %s", o.Kind)
		}
		cur.Archived = op == OpArchive
		cur.ArchiveTime = time.Time{}
		if cur.Archived {
			cur.ArchiveTime = now
		}
	case OpDelete:
		cur.Deleted, cur.DeleteTime = true, now
	default:
		return Object{}, fmt.Errorf("pipedrivetest: unknown op %q", op)
	}
	cur.UpdateTime = now
	return cur.clone(), nil
}

func (st *objectStore) get(kind string, id int64) *Object { return st.byKind[kind][id] }

func (st *objectStore) put(companyID int64, o Object, now time.Time) *Object {
	if st.byKind == nil {
		st.byKind, st.nextID = map[string]map[int64]*Object{}, map[string]int64{}
	}
	m := st.byKind[o.Kind]
	if m == nil {
		m = map[int64]*Object{}
		st.byKind[o.Kind] = m
	}
	if o.ID <= 0 {
		o.ID = st.nextID[o.Kind] + 1
	}
	st.nextID[o.Kind] = max(st.nextID[o.Kind], o.ID)
	if prev := m[o.ID]; prev != nil && o.AddTime.IsZero() {
		o.AddTime = prev.AddTime
	}
	o.AddTime = orNow(o.AddTime, now)
	o.UpdateTime = orNow(o.UpdateTime, now)
	if o.Archived {
		o.ArchiveTime = orNow(o.ArchiveTime, o.UpdateTime)
	}
	if o.Deleted {
		o.DeleteTime = orNow(o.DeleteTime, o.UpdateTime)
	}
	o.UUID = ""
	if o.Kind == kindLead {
		o.UUID = LeadUUID(companyID, o.ID)
	}
	c := o.clone()
	m[o.ID] = &c
	return &c
}

// sorted returns one kind's objects by id.
func (st *objectStore) sorted(kind string) []*Object {
	m := st.byKind[kind]
	out := make([]*Object, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// gone reports an object no API returns any more: purged 30 days after its
// delete, or a deleted lead.
func (o *Object) gone(now time.Time) bool {
	if !o.Deleted {
		return false
	}
	return o.Kind == kindLead || purgedKinds[o.Kind] && now.Sub(o.DeleteTime) > purgeAfter
}

func (o Object) clone() Object {
	o.Fields = maps.Clone(o.Fields)
	return o
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC().Truncate(time.Second)
}

// LeadUUID is the id the fake gives lead id of a company, in Pipedrive's
// UUID form.
func LeadUUID(companyID, id int64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", uint32(companyID), id)
}
