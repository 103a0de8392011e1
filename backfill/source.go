package backfill

import (
	"context"
	"encoding/json"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// Target is one company as a source reads it.
type Target struct {
	CompanyID int64
	// Domain is the company's subdomain (acme for acme.pipedrive.com).
	Domain      string
	Credentials pipedrive.Credentials
}

// Host is meta.host of the company's events.
func (t Target) Host() string {
	if t.Domain == "" {
		return ""
	}
	return t.Domain + ".pipedrive.com"
}

// Formats of Item.Data, named in meta.backfill.format.
const (
	FormatV2 = "api-v2" // the REST v2 object (custom fields as bare values)
	FormatV1 = "api-v1" // the REST v1 object (flat, denormalised names)
)

// Item is one object a source returned, in its final state.
type Item struct {
	// Entity is the object type as a subject token (deal, person, lead,
	// activitytype, …).
	Entity string
	ID     string
	// AddTime and UpdateTime classify the object (create or change) and
	// order the events; Deleted marks it deleted (a delete event).
	AddTime    time.Time
	UpdateTime time.Time
	Deleted    bool
	// Data is the object exactly as the API returned it.
	Data   json.RawMessage
	Format string
}

// Page is one answer of a source.
type Page struct {
	// Items in ascending UpdateTime.
	Items []Item
	// Next is the cursor of the following page; empty on the last.
	Next string
	// Cost is the API tokens the page cost.
	Cost int
	// RateLimit is what the last response reported.
	RateLimit pipedrive.RateLimit
}

// Source reads one kind of object changed in a window, oldest change first.
// Implementations exist over the Pipedrive API (v2 lists, v1 lists,
// /v1/recents); each can be replaced without touching the engine.
type Source interface {
	// Name is the endpoint, e.g. "GET /api/v2/deals": meta.backfill.source
	// and the checkpoint's key, so unique within a plan.
	Name() string
	// Entity is the object type the source lists (for estimates).
	Entity() string
	// Cost is what one page costs; the token cap is checked against it
	// before every call.
	Cost() int
	// Fetch reads the page at cursor ("" = the first) of the objects
	// changed in w. Items outside w may be returned; the engine drops them.
	Fetch(ctx context.Context, t Target, w Range, cursor string) (Page, error)
}

// ProbeServed is a Source that a complete probe page can answer without a
// call of its own (users and activity types from /v1/recents).
type ProbeServed interface {
	FromProbe(probe Page) (Page, bool)
}

// Plan is the sources of a run.
type Plan struct {
	// Probe is read once, first page only: every type changed since the
	// window's start (GET /v1/recents, 20 tokens). When it shows nothing in
	// the window, only Always is read.
	Probe Source
	// Always holds what the probe cannot see (leads): read on every run.
	Always []Source
	// Lists are read when the probe shows changes.
	Lists []Source
}

func (p Plan) all() []Source {
	out := append([]Source{}, p.Always...)
	return append(out, p.Lists...)
}

func (p Plan) source(name string) Source {
	for _, s := range p.all() {
		if s.Name() == name {
			return s
		}
	}
	return nil
}
