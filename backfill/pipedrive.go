package backfill

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// PipedriveAPI is the part of the Pipedrive client the sources read with.
type PipedriveAPI interface {
	ListChanges(ctx context.Context, domain string, cred pipedrive.Credentials, req pipedrive.ListRequest) (pipedrive.Page, error)
	Recents(ctx context.Context, domain string, cred pipedrive.Credentials, req pipedrive.RecentsRequest) (pipedrive.Page, error)
	ListLeads(ctx context.Context, domain string, cred pipedrive.Credentials, req pipedrive.OffsetRequest) (pipedrive.Page, error)
	ListNotes(ctx context.Context, domain string, cred pipedrive.Credentials, req pipedrive.OffsetRequest) (pipedrive.Page, error)
}

// webhookEntities are the objects webhooks report on (v2, and activityType
// from v1): what a backfill recovers. Files and filters in recents are not.
var webhookEntities = map[string]bool{
	"deal": true, "person": true, "organization": true, "activity": true, "product": true, "pipeline": true,
	"stage": true, "lead": true, "note": true, "user": true, "activitytype": true,
}

// PipedrivePlan reads SPEC §8's sources: one all-types /v1/recents probe;
// leads and archived leads on every run (recents has no leads); and when
// the probe shows changes, the v2 lists (deals of every status and archived
// deals, persons, organizations, activities, products by update time;
// pipelines and stages newest first, stopping early), v1 notes, users and
// activity types from recents, and the deletes recents shows for the types
// whose v2 lists may hide deleted rows.
func PipedrivePlan(api PipedriveAPI) Plan {
	v2 := func(kind pipedrive.Kind) Source { return &v2List{api: api, kind: kind} }
	return Plan{
		Probe: &recents{api: api, name: pipedrive.RouteRecents},
		Always: []Source{
			&v1List{api: api, name: pipedrive.RouteListLeads, kind: pipedrive.KindLead},
			&v1List{api: api, name: pipedrive.RouteListArchivedLeads, kind: pipedrive.KindLead, archived: true},
		},
		Lists: []Source{
			&v2List{api: api, kind: pipedrive.KindDeal, status: []string{"open", "won", "lost", "deleted"}},
			&v2List{api: api, kind: pipedrive.KindDeal, archived: true, status: []string{"open", "won", "lost", "deleted"}},
			v2(pipedrive.KindPerson), v2(pipedrive.KindOrganization), v2(pipedrive.KindActivity),
			// Products newest first too: whether their list takes
			// updated_since differs between copies of the spec, and this
			// way one page (10 tokens) does either way.
			&v2Newest{api: api, kind: pipedrive.KindProduct, route: pipedrive.RouteListProducts, since: true},
			&v2Newest{api: api, kind: pipedrive.KindPipeline, route: pipedrive.RouteListPipelines},
			&v2Newest{api: api, kind: pipedrive.KindStage, route: pipedrive.RouteListStages},
			&v1List{api: api, name: pipedrive.RouteListNotes, kind: pipedrive.KindNote},
			&recents{api: api, name: pipedrive.RouteRecents + "?items=user", items: []pipedrive.Kind{pipedrive.KindUser}},
			&recents{api: api, name: pipedrive.RouteRecents + "?items=activityType", items: []pipedrive.Kind{"activityType"}},
			// Last: where a list shows the same delete, its v2 copy wins.
			&recents{api: api, name: pipedrive.RouteRecents + " (deleted)", deletes: true},
		},
	}
}

// item converts a client item; ok is false for what is not recovered.
func fromClient(it pipedrive.Item, format string) (Item, bool) {
	entity := strings.ToLower(string(it.Kind))
	if !webhookEntities[entity] || it.ID == "" {
		return Item{}, false
	}
	return Item{
		Entity: entity, ID: it.ID, AddTime: it.AddTime, UpdateTime: it.UpdateTime, Deleted: it.Deleted,
		Data: it.Raw, Format: format,
	}, true
}

func fromClientPage(p pipedrive.Page, format string, keep func(Item) bool) Page {
	out := Page{Cost: p.Cost, RateLimit: p.RateLimit}
	for _, pit := range p.Items {
		if pit.NoData {
			continue
		}
		if it, ok := fromClient(pit, format); ok && (keep == nil || keep(it)) {
			out.Items = append(out.Items, it)
		}
	}
	return out
}

// v2List is a v2 list by update time, oldest first, cursor paged.
type v2List struct {
	api      PipedriveAPI
	kind     pipedrive.Kind
	archived bool
	status   []string
}

func (s *v2List) Name() string {
	if s.archived {
		return "GET /api/v2/" + string(s.kind) + "s/archived"
	}
	return "GET /api/v2/" + plural(s.kind)
}

func plural(k pipedrive.Kind) string {
	switch k {
	case pipedrive.KindActivity:
		return "activities"
	}
	return string(k) + "s"
}

func (s *v2List) Entity() string { return string(s.kind) }

func (s *v2List) Cost() int {
	if s.archived {
		return pipedrive.RouteCost(pipedrive.RouteListArchivedDeals)
	}
	return pipedrive.RouteCost(pipedrive.RouteListDeals)
}

func (s *v2List) Fetch(ctx context.Context, t Target, w Range, cursor string) (Page, error) {
	req := pipedrive.ListRequest{Kind: s.kind, Archived: s.archived, Status: s.status, Since: w.From, Until: w.Until, Cursor: cursor}
	p, err := s.api.ListChanges(ctx, t.Domain, t.Credentials, req)
	if err != nil {
		return Page{}, err
	}
	out := fromClientPage(p, FormatV2, nil)
	out.Next = p.NextCursor
	return out, nil
}

// v2Newest lists pipelines, stages (no time filter) or products newest
// first, stopping at the first one changed before the window, so that one
// page usually does. The items come back oldest first.
type v2Newest struct {
	api   PipedriveAPI
	kind  pipedrive.Kind
	route string
	since bool // send updated_since too (products)
}

func (s *v2Newest) Name() string   { return s.route }
func (s *v2Newest) Entity() string { return string(s.kind) }
func (s *v2Newest) Cost() int      { return pipedrive.RouteCost(s.route) }

// maxNewestPages bounds the calls of one Fetch.
const maxNewestPages = 10

func (s *v2Newest) Fetch(ctx context.Context, t Target, w Range, _ string) (Page, error) {
	var out Page
	req := pipedrive.ListRequest{Kind: s.kind, SortDesc: true}
	if s.since {
		req.Since = w.From
	}
	for range maxNewestPages {
		p, err := s.api.ListChanges(ctx, t.Domain, t.Credentials, req)
		if err != nil {
			return Page{}, err
		}
		out.Cost += p.Cost
		out.RateLimit = p.RateLimit
		older := false
		for _, it := range fromClientPage(p, FormatV2, nil).Items {
			if it.UpdateTime.Before(w.From) {
				older = true
				continue
			}
			out.Items = append(out.Items, it)
		}
		if older || p.NextCursor == "" {
			// Oldest first, as the engine merges.
			slices.Reverse(out.Items)
			return out, nil
		}
		req.Cursor = p.NextCursor
	}
	return Page{}, fmt.Errorf("%s: over %d pages changed in the window; not read", s.route, maxNewestPages)
}

// v1List is a v1 list by update time with offset paging: leads, archived
// leads, notes.
type v1List struct {
	api      PipedriveAPI
	name     string
	kind     pipedrive.Kind
	archived bool
}

func (s *v1List) Name() string   { return s.name }
func (s *v1List) Entity() string { return string(s.kind) }
func (s *v1List) Cost() int      { return pipedrive.RouteCost(s.name) }

func (s *v1List) Fetch(ctx context.Context, t Target, w Range, cursor string) (Page, error) {
	start, _ := strconv.Atoi(cursor)
	req := pipedrive.OffsetRequest{Since: w.From, Archived: s.archived, Start: start}
	var p pipedrive.Page
	var err error
	if s.kind == pipedrive.KindNote {
		p, err = s.api.ListNotes(ctx, t.Domain, t.Credentials, req)
	} else {
		p, err = s.api.ListLeads(ctx, t.Domain, t.Credentials, req)
	}
	if err != nil {
		return Page{}, err
	}
	out := fromClientPage(p, FormatV1, nil)
	if p.More {
		out.Next = strconv.Itoa(p.NextStart)
	}
	return out, nil
}

// recents reads GET /v1/recents from the window's start: the probe (all
// types), users or activity types (items), or the deletes it shows. It
// pages by time where it can (since_timestamp = the page's last time, less
// a second: since is exclusive and times are whole seconds), by offset when
// a whole page shares one second.
type recents struct {
	api     PipedriveAPI
	name    string
	items   []pipedrive.Kind
	deletes bool
}

func (s *recents) Name() string { return s.name }
func (s *recents) Cost() int    { return pipedrive.RouteCost(pipedrive.RouteRecents) }

func (s *recents) Entity() string {
	if len(s.items) == 1 {
		return strings.ToLower(string(s.items[0]))
	}
	return ""
}

// keep selects the items the source stands for.
func (s *recents) keep(it Item) bool {
	switch {
	case s.deletes:
		// Deals' deletes come from status=deleted.
		return it.Deleted && it.Entity != "deal"
	case len(s.items) > 0:
		for _, k := range s.items {
			if strings.EqualFold(string(k), it.Entity) {
				return true
			}
		}
		return false
	}
	return true
}

// FromProbe answers from the probe's page when that held every change.
func (s *recents) FromProbe(probe Page) (Page, bool) {
	if probe.Next != "" {
		return Page{}, false
	}
	var out Page
	for _, it := range probe.Items {
		if !it.UpdateTime.IsZero() && s.keep(it) {
			out.Items = append(out.Items, it)
		}
	}
	return out, true
}

func (s *recents) Fetch(ctx context.Context, t Target, w Range, cursor string) (Page, error) {
	// One second early: since_timestamp may be exclusive.
	since, start := w.From.Add(-time.Second), 0
	if cursor != "" {
		var unix int64
		if _, err := fmt.Sscanf(cursor, "%d/%d", &unix, &start); err != nil {
			return Page{}, fmt.Errorf("bad recents cursor %q", cursor)
		}
		since = time.Unix(unix, 0)
	}
	p, err := s.api.Recents(ctx, t.Domain, t.Credentials, pipedrive.RecentsRequest{Since: since, Items: s.items, Start: start, Limit: pipedrive.MaxPageSize})
	if err != nil {
		return Page{}, err
	}
	out := fromClientPage(p, FormatV1, s.keep)
	if s.name == pipedrive.RouteRecents {
		// The probe: an entry without data (deleted? purged?) still means
		// that something changed.
		for _, pit := range p.Items {
			if e := strings.ToLower(string(pit.Kind)); pit.NoData && webhookEntities[e] {
				out.Items = append(out.Items, Item{Entity: e, ID: pit.ID})
			}
		}
	}
	if !p.More {
		return out, nil
	}
	last := p.LastTimestamp
	for _, pit := range p.Items {
		last = maxTime(last, pit.UpdateTime)
	}
	if next := last.Add(-time.Second).Truncate(time.Second); next.After(since) {
		out.Next = fmt.Sprintf("%d/0", next.Unix())
	} else {
		out.Next = fmt.Sprintf("%d/%d", since.Unix(), p.NextStart)
	}
	return out, nil
}
