package pipedrivetest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The v2 list endpoints: updated_since (inclusive) and updated_until
// (exclusive) in RFC 3339, sort_by and sort_direction, and keyset cursors.

const (
	defaultLimit = 100
	maxLimit     = 500
)

var dealStatuses = map[string]bool{"open": true, "won": true, "lost": true, "deleted": true}

// cursor is the fake's keyset position: the first item of the next page, in
// the form Pipedrive's own cursors decode to (officially opaque).
type cursor struct {
	Field         string `json:"field"`
	FieldValue    any    `json:"fieldValue"`
	SortDirection string `json:"sortDirection"`
	ID            int64  `json:"id"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	var c cursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.Field == "" {
		return cursor{}, false
	}
	c.FieldValue = sortValue(c.FieldValue)
	return c, true
}

type listRow struct {
	o   *Object
	m   map[string]any
	key any
}

// compareRows orders by the sort key, then id, both in the same direction.
func compareRows(a, b listRow, desc bool) int {
	c := compareValues(a.key, b.key)
	if c == 0 {
		c = cmp.Compare(a.o.ID, b.o.ID)
	}
	if desc {
		return -c
	}
	return c
}

func (s *Server) handleV2List(x *exchange) {
	q := x.r.URL.Query()
	kind := v2Lists[strings.TrimPrefix(x.rt.template, "/api/v2")]
	archived := strings.HasSuffix(x.rt.template, "/archived")
	limit, err := queryInt(q, "limit", defaultLimit)
	if err == nil && (limit < 1 || limit > maxLimit) {
		x.badRequest("limit must be between 1 and %d", maxLimit)
		return
	}
	since, err2 := queryTime(q, "updated_since")
	until, err3 := queryTime(q, "updated_until")
	for _, e := range []error{err, err2, err3} {
		if e != nil {
			x.badRequest("%v", e)
			return
		}
	}
	switch kind {
	case kindPipeline, kindStage:
		since, until = time.Time{}, time.Time{} // no time filter in the spec
	case kindProduct:
		until = time.Time{} // products take updated_since only
	}
	sortBy := cmp.Or(q.Get("sort_by"), "id")
	dir := cmp.Or(q.Get("sort_direction"), "asc")
	if dir != "asc" && dir != "desc" {
		x.badRequest("sort_direction must be asc or desc")
		return
	}
	statuses := map[string]bool{"open": true, "won": true, "lost": true}
	if v := q.Get("status"); v != "" && kind == kindDeal {
		statuses = map[string]bool{}
		for _, st := range strings.Split(v, ",") {
			if st = strings.TrimSpace(st); !dealStatuses[st] {
				x.badRequest("status must be a comma-separated list of open, won, lost, deleted")
				return
			}
			statuses[st] = true
		}
	}
	ids := map[string]bool{}
	for _, id := range strings.Split(q.Get("ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids[id] = true
		}
	}
	var cur *cursor
	if v := q.Get("cursor"); v != "" {
		c, ok := decodeCursor(v)
		if !ok || c.Field != sortBy || c.SortDirection != dir {
			x.badRequest("invalid cursor")
			return
		}
		cur = &c
	}
	pipelineID := q.Get("pipeline_id")

	s.mu.Lock()
	now := s.now()
	showDeleted := s.assume.ListsShowDeleted
	var rows []listRow
	for _, o := range x.co.store.sorted(kind) {
		switch {
		case o.gone(now), !inWindow(o.UpdateTime, since, until):
			continue
		case kind == kindDeal && (o.Archived != archived || !statuses[dealStatus(o)]):
			continue
		case kind != kindDeal && o.Deleted && !showDeleted:
			continue
		case len(ids) > 0 && !ids[strconv.FormatInt(o.ID, 10)]:
			continue
		}
		m := renderV2(o, x.co)
		if kind == kindStage && pipelineID != "" && strconv.Itoa(toInt(m["pipeline_id"])) != pipelineID {
			continue
		}
		rows = append(rows, listRow{o: o, m: m, key: sortValue(m[sortBy])})
	}
	s.mu.Unlock()

	desc := dir == "desc"
	slices.SortFunc(rows, func(a, b listRow) int { return compareRows(a, b, desc) })
	if cur != nil {
		pos := listRow{o: &Object{ID: cur.ID}, key: cur.FieldValue}
		i, _ := slices.BinarySearchFunc(rows, pos, func(r, p listRow) int { return compareRows(r, p, desc) })
		rows = rows[i:]
	}
	var next any
	if len(rows) > limit {
		r := rows[limit]
		next = cursor{Field: sortBy, FieldValue: r.key, SortDirection: dir, ID: r.o.ID}.encode()
		rows = rows[:limit]
	}
	data := make([]map[string]any, len(rows))
	for i, r := range rows {
		data[i] = r.m
	}
	x.json(http.StatusOK, map[string]any{
		"success": true, "data": data, "additional_data": map[string]any{"next_cursor": next},
	})
}

// toInt reads a rendered integer field; 0 otherwise.
func toInt(v any) int {
	if f, ok := sortValue(v).(float64); ok {
		return int(f)
	}
	if s, ok := v.(string); ok {
		n, _ := strconv.Atoi(s)
		return n
	}
	return 0
}
