package pipedrivetest

import (
	"cmp"
	"net/http"
	"slices"
	"time"
)

// The v1 lists the backfill reads: /v1/leads and /v1/leads/archived,
// /v1/notes (offset paging, updated_since, sort) and /v1/users (everyone,
// no paging, as the spec has it).

// offsetQuery reads start and limit (default 100, at most 500).
func offsetQuery(x *exchange) (start, limit int, ok bool) {
	q := x.r.URL.Query()
	start, err := queryInt(q, "start", 0)
	if err != nil || start < 0 {
		x.badRequest("start must be a non-negative integer")
		return 0, 0, false
	}
	limit, err = queryInt(q, "limit", defaultLimit)
	if err != nil || limit < 1 || limit > maxLimit {
		x.badRequest("limit must be between 1 and %d", maxLimit)
		return 0, 0, false
	}
	return start, limit, true
}

// v1Rows renders the selected objects of a kind, ordered by sort.
func (s *Server) v1Rows(x *exchange, kind string, keep func(o *Object, now time.Time) bool, sortField string, desc bool) []map[string]any {
	s.mu.Lock()
	now := s.now()
	var objs []*Object
	for _, o := range x.co.store.sorted(kind) {
		if !o.gone(now) && keep(o, now) {
			objs = append(objs, o)
		}
	}
	rows := make([]listRow, len(objs))
	for i, o := range objs {
		m := renderV1(o, x.co)
		rows[i] = listRow{o: o, m: m, key: sortValue(m[sortField])}
	}
	s.mu.Unlock()
	slices.SortStableFunc(rows, func(a, b listRow) int { return compareRows(a, b, desc) })
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		out[i] = r.m
	}
	return out
}

// offsetSinceQuery reads the paging and updated_since of a v1 offset
// list; ok is false once it has answered 400.
func offsetSinceQuery(x *exchange) (start, limit int, since time.Time, ok bool) {
	if start, limit, ok = offsetQuery(x); !ok {
		return 0, 0, time.Time{}, false
	}
	since, err := queryTime(x.r.URL.Query(), "updated_since")
	if err != nil {
		x.badRequest("%v", err)
		return 0, 0, time.Time{}, false
	}
	return start, limit, since, true
}

func (s *Server) handleLeads(x *exchange) {
	start, limit, since, ok := offsetSinceQuery(x)
	if !ok {
		return
	}
	q := x.r.URL.Query()
	archived := x.rt.template == "/v1/leads/archived"
	s.mu.Lock()
	if archived && !s.assume.ArchivedLeadsUpdatedSince {
		since = time.Time{} // not a parameter of /leads/archived
	}
	s.mu.Unlock()
	// Leads are "sorted by the time they were created" unless sort says.
	field, desc := v1Sort(q, "add_time")
	rows := s.v1Rows(x, kindLead, func(o *Object, _ time.Time) bool {
		return o.Archived == archived && inWindow(o.UpdateTime, since, time.Time{})
	}, field, desc)
	from, to, more := offsetPage(len(rows), start, limit)
	// additional_data is flat here, unlike other v1 lists (per the spec).
	x.json(http.StatusOK, map[string]any{
		"success": true, "data": rows[from:to],
		"additional_data": map[string]any{"start": start, "limit": limit, "more_items_in_collection": more},
	})
}

func (s *Server) handleNotes(x *exchange) {
	start, limit, since, ok := offsetSinceQuery(x)
	if !ok {
		return
	}
	q := x.r.URL.Query()
	s.mu.Lock()
	showDeleted := s.assume.ListsShowDeleted
	s.mu.Unlock()
	field, desc := v1Sort(q, "id")
	rows := s.v1Rows(x, kindNote, func(o *Object, _ time.Time) bool {
		return (!o.Deleted || showDeleted) && inWindow(o.UpdateTime, since, time.Time{})
	}, field, desc)
	from, to, more := offsetPage(len(rows), start, limit)
	x.json(http.StatusOK, map[string]any{
		"success": true, "data": rows[from:to],
		"additional_data": map[string]any{"pagination": pagination(start, limit, more)},
	})
}

// handleUsers lists every user, deactivated and deleted ones included with
// their flags. The company's own user is always there; a user Put with its
// id replaces it.
func (s *Server) handleUsers(x *exchange) {
	rows := s.v1Rows(x, kindUser, func(*Object, time.Time) bool { return true }, "id", false)
	s.mu.Lock()
	me := x.co.UserID
	mine := x.co.store.get(kindUser, me) != nil
	var self map[string]any
	if !mine {
		self = userShape(me, x.co)
		self["id"] = me
		// A fixed old time: the built-in user never looks changed.
		self["created"], self["modified"] = "2020-01-01 00:00:00", "2020-01-01 00:00:00"
	}
	s.mu.Unlock()
	if self != nil {
		rows = append(rows, self)
		slices.SortFunc(rows, func(a, b map[string]any) int { return cmp.Compare(toInt(a["id"]), toInt(b["id"])) })
	}
	x.json(http.StatusOK, map[string]any{"success": true, "data": rows})
}
