package pipedrivetest

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"
)

// GET /v1/recents: every change after since_timestamp ("YYYY-MM-DD
// HH:MM:SS", UTC) of the types in items, oldest first, with offset paging.
// Leads are not covered, as in Pipedrive's spec. See Assumptions for the
// horizon, inclusiveness and how deleted objects show.

// recentsItems is the spec's items enum; the fake stores no activityType,
// file or filter objects, so those lists are always empty.
var recentsItems = map[string]bool{
	kindActivity: true, "activityType": true, kindDeal: true, "file": true, "filter": true, kindNote: true,
	kindPerson: true, kindOrganization: true, kindPipeline: true, kindProduct: true, kindStage: true, kindUser: true,
}

type recentsRow struct {
	o    *Object
	data any
}

func (s *Server) handleRecents(x *exchange) {
	q := x.r.URL.Query()
	sinceRaw := strings.TrimSpace(q.Get("since_timestamp"))
	since, err := time.Parse(v1Time, sinceRaw)
	if err != nil {
		x.badRequest("since_timestamp is required, in the form YYYY-MM-DD HH:MM:SS")
		return
	}
	start, err := queryInt(q, "start", 0)
	if err != nil || start < 0 {
		x.badRequest("start must be a non-negative integer")
		return
	}
	limit, err := queryInt(q, "limit", defaultLimit)
	if err != nil || limit < 1 {
		x.badRequest("limit must be a positive integer")
		return
	}

	s.mu.Lock()
	a := s.assumptions()
	s.mu.Unlock()
	limit = min(limit, a.RecentsMaxLimit)
	want := map[string]bool{}
	if v := q.Get("items"); v != "" {
		if a.RecentsSingleItem && strings.Contains(v, ",") {
			x.badRequest("items must be one of the item types")
			return
		}
		for _, it := range strings.Split(v, ",") {
			if it = strings.TrimSpace(it); !recentsItems[it] {
				x.badRequest("items: unknown item type")
				return
			}
			want[it] = true
		}
	}

	s.mu.Lock()
	now := s.now()
	floor := now.Add(-a.RecentsHorizon).UTC().Truncate(time.Second)
	if since.Before(floor) && a.RecentsOldSinceFails {
		s.mu.Unlock()
		x.badRequest("since_timestamp is too far in the past")
		return
	}
	var rows []recentsRow
	for kind := range x.co.store.byKind {
		if kind == kindLead || len(want) > 0 && !want[kind] {
			continue
		}
		for _, o := range x.co.store.byKind[kind] {
			t := o.UpdateTime
			after := t.After(since) || a.RecentsSinceInclusive && t.Equal(since)
			if !after || t.Before(floor) || o.gone(now) {
				continue
			}
			var data any
			switch {
			case o.Deleted && a.RecentsDeleted == RecentsHidden:
				continue
			case o.Deleted && a.RecentsDeleted == RecentsNullData:
				data = nil
			case kind == kindUser && a.RecentsUserAsArray:
				data = []any{renderV1(o, x.co)}
			default:
				data = renderV1(o, x.co)
			}
			rows = append(rows, recentsRow{o: o, data: data})
		}
	}
	s.mu.Unlock()

	slices.SortFunc(rows, func(a, b recentsRow) int {
		return cmp.Or(a.o.UpdateTime.Compare(b.o.UpdateTime), cmp.Compare(a.o.Kind, b.o.Kind), cmp.Compare(a.o.ID, b.o.ID))
	})
	from, to, more := offsetPage(len(rows), start, limit)
	data := make([]map[string]any, 0, to-from)
	var last any
	for _, r := range rows[from:to] {
		data = append(data, map[string]any{"item": r.o.Kind, "id": r.o.ID, "data": r.data})
		last = r.o.UpdateTime.UTC().Format(v1Time)
	}
	x.json(http.StatusOK, map[string]any{
		"success": true,
		"data":    data,
		"additional_data": map[string]any{
			"since_timestamp":        sinceRaw,
			"last_timestamp_on_page": last,
			"pagination":             pagination(start, limit, more),
		},
	})
}
