package pipedrive

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The read API lists what changed in a company, for recovering events that
// Pipedrive never delivered. Items keep the exact JSON the API returned;
// only the fields needed to classify them are parsed.

// Kind names a Pipedrive entity as webhooks and recents spell it.
type Kind string

// The kinds the read API lists.
const (
	KindDeal         Kind = "deal"
	KindPerson       Kind = "person"
	KindOrganization Kind = "organization"
	KindActivity     Kind = "activity"
	KindProduct      Kind = "product"
	KindPipeline     Kind = "pipeline"
	KindStage        Kind = "stage"
	KindLead         Kind = "lead"
	KindNote         Kind = "note"
	KindUser         Kind = "user"
)

// Routes of the read API.
const (
	RouteListDeals         = "GET /api/v2/deals"
	RouteListArchivedDeals = "GET /api/v2/deals/archived"
	RouteListPersons       = "GET /api/v2/persons"
	RouteListOrganizations = "GET /api/v2/organizations"
	RouteListActivities    = "GET /api/v2/activities"
	RouteListProducts      = "GET /api/v2/products"
	RouteListPipelines     = "GET /api/v2/pipelines"
	RouteListStages        = "GET /api/v2/stages"
	RouteRecents           = "GET /v1/recents"
	RouteListLeads         = "GET /v1/leads"
	RouteListArchivedLeads = "GET /v1/leads/archived"
	RouteListNotes         = "GET /v1/notes"
	RouteListUsers         = "GET /v1/users"
)

// routeCosts are the x-token-cost values of Pipedrive's OpenAPI documents.
var routeCosts = map[string]int{
	RouteMe: 2, RouteListWebhooks: 10, RouteCreateWebhook: 10, RouteDeleteWebhook: 6,
	RouteListDeals: 10, RouteListArchivedDeals: 20, RouteListPersons: 10, RouteListOrganizations: 10,
	RouteListActivities: 10, RouteListProducts: 10, RouteListPipelines: 5, RouteListStages: 5,
	RouteRecents: 20, RouteListLeads: 20, RouteListArchivedLeads: 40, RouteListNotes: 20, RouteListUsers: 20,
}

// RouteCost is the documented token cost of one call of route (a Route*
// constant); 0 for routes it does not know.
func RouteCost(route string) int { return routeCosts[route] }

const (
	// MaxPageSize is the largest limit the list endpoints accept.
	MaxPageSize = 500
	// maxPageBytes caps a list page: 500 v1 objects with custom fields run
	// to a few megabytes.
	maxPageBytes = 64 << 20
)

// Item is one object of a list page.
type Item struct {
	// Kind is the entity; for recents, the entry's item.
	Kind Kind
	// ID is the object id as text ("5123", or a lead's UUID).
	ID string
	// Raw is the object exactly as the API returned it; nil when NoData.
	Raw json.RawMessage
	// NoData is set for a recents entry whose data was null (or an empty
	// array): Pipedrive does not say why; a deleted or purged object is a
	// guess, so corroborate before calling it a delete.
	NoData bool
	// AddTime and UpdateTime are add_time and update_time (users: created
	// and modified); zero when absent or unreadable.
	AddTime    time.Time
	UpdateTime time.Time
	// Deleted is any deleted marker: is_deleted, deleted, status
	// "deleted", active_flag false (not for users), or a v1 pipeline's
	// active false.
	Deleted bool
	// Archived is is_archived.
	Archived bool
	// Inactive is a user's active_flag false: deactivated, not deleted.
	Inactive bool
}

// Page is one page of a list.
type Page struct {
	Items []Item
	// NextCursor continues a v2 list; "" on the last page.
	NextCursor string
	// More reports that another page follows (v2: NextCursor is set; v1:
	// more_items_in_collection).
	More bool
	// NextStart is the start of the next v1 page.
	NextStart int
	// LastTimestamp is recents' last_timestamp_on_page; zero when null.
	LastTimestamp time.Time
	// RateLimit is what the response reported, for pacing.
	RateLimit RateLimit
	// Cost is the documented token cost of the call.
	Cost int
}

// itemWire holds the fields Item is classified by.
type itemWire struct {
	ID         flexString `json:"id"`
	AddTime    flexTime   `json:"add_time"`
	UpdateTime flexTime   `json:"update_time"`
	Created    flexTime   `json:"created"`
	Modified   flexTime   `json:"modified"`
	IsDeleted  flexBool   `json:"is_deleted"`
	Deleted    flexBool   `json:"deleted"`
	ActiveFlag flexBool   `json:"active_flag"`
	Active     flexBool   `json:"active"`
	IsArchived flexBool   `json:"is_archived"`
	Status     flexString `json:"status"`
}

// parseItem classifies one object. An object whose fields cannot be read is
// kept with what could be, so one odd row never hides a page.
func parseItem(kind Kind, raw json.RawMessage) Item {
	it := Item{Kind: kind, Raw: raw}
	var w itemWire
	if json.Unmarshal(raw, &w) != nil {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return it
		}
		// Decode field by field: a bad one spoils only itself.
		for k, v := range fields {
			one, _ := json.Marshal(map[string]json.RawMessage{k: v})
			_ = json.Unmarshal(one, &w)
		}
	}
	it.ID = string(w.ID)
	it.AddTime, it.UpdateTime = w.AddTime.t, w.UpdateTime.t
	if kind == KindUser {
		it.AddTime, it.UpdateTime = w.Created.t, w.Modified.t
	}
	it.Archived = w.IsArchived.v
	it.Deleted = w.IsDeleted.v || w.Deleted.v || strings.EqualFold(string(w.Status), "deleted")
	switch {
	case kind == KindUser:
		it.Inactive = w.ActiveFlag.set && !w.ActiveFlag.v
	case w.ActiveFlag.set && !w.ActiveFlag.v:
		it.Deleted = true
	case kind == KindPipeline && w.Active.set && !w.Active.v:
		it.Deleted = true
	}
	return it
}

// ListRequest selects one page of a v2 list.
type ListRequest struct {
	// Kind is deal, person, organization, activity, product, pipeline or
	// stage.
	Kind Kind
	// Archived lists archived deals (/api/v2/deals/archived, 20 tokens).
	Archived bool
	// Since (inclusive) and Until (exclusive) bound update_time; zero is
	// open. Products take no Until, pipelines and stages neither: filter
	// those yourself. Until is rounded up to a whole second, Since down.
	Since, Until time.Time
	// Status lists deals by status (open, won, lost, deleted); empty means
	// Pipedrive's default: all but deleted.
	Status []string
	// SortBy is update_time (default), id or add_time; SortDesc reverses.
	SortBy   string
	SortDesc bool
	// Cursor continues from a previous Page.NextCursor.
	Cursor string
	// Limit is the page size; 0 means MaxPageSize.
	Limit int
}

var v2Paths = map[Kind]string{
	KindDeal: "/deals", KindPerson: "/persons", KindOrganization: "/organizations",
	KindActivity: "/activities", KindProduct: "/products", KindPipeline: "/pipelines", KindStage: "/stages",
}

// ListChanges reads one page of a v2 list (10 tokens; archived deals 20,
// pipelines and stages 5), oldest change first by default.
func (c *Client) ListChanges(ctx context.Context, domain string, cred Credentials, req ListRequest) (Page, error) {
	path, route, q, err := req.query()
	if err != nil {
		return Page{}, err
	}
	var env struct {
		Data           []json.RawMessage `json:"data"`
		AdditionalData struct {
			NextCursor flexString `json:"next_cursor"`
		} `json:"additional_data"`
	}
	resp, err := c.read(ctx, apiCall{route: route, path: path, v2: true, query: q, domain: domain, cred: cred}, &env)
	if err != nil {
		return Page{}, err
	}
	p := Page{NextCursor: string(env.AdditionalData.NextCursor), RateLimit: resp.rl, Cost: RouteCost(route)}
	p.More = p.NextCursor != ""
	for _, raw := range env.Data {
		p.Items = append(p.Items, parseItem(req.Kind, raw))
	}
	return p, nil
}

func (req ListRequest) query() (path, route string, q url.Values, err error) {
	fail := func(msg string) (string, string, url.Values, error) {
		return "", "GET /api/v2", nil, &APIError{Route: "GET /api/v2", Kind: ErrValidation, Message: msg}
	}
	path, ok := v2Paths[req.Kind]
	switch {
	case !ok:
		return fail("kind " + strconv.Quote(string(req.Kind)) + " has no v2 list")
	case (req.Archived || len(req.Status) > 0) && req.Kind != KindDeal:
		return fail("only deals take Archived and Status")
	case (req.Kind == KindPipeline || req.Kind == KindStage) && (!req.Since.IsZero() || !req.Until.IsZero()):
		return fail(string(req.Kind) + "s have no time filter")
	case req.Kind == KindProduct && !req.Until.IsZero():
		return fail("products have no updated_until")
	case req.Limit < 0 || req.Limit > MaxPageSize:
		return fail("limit must be between 1 and 500")
	}
	if req.Archived {
		path += "/archived"
	}
	q = url.Values{}
	if !req.Since.IsZero() {
		q.Set("updated_since", req.Since.UTC().Truncate(time.Second).Format(time.RFC3339))
	}
	if !req.Until.IsZero() {
		u := req.Until.UTC()
		if t := u.Truncate(time.Second); !t.Equal(u) {
			u = t.Add(time.Second) // exclusive: never cut the last second off
		}
		q.Set("updated_until", u.Format(time.RFC3339))
	}
	if len(req.Status) > 0 {
		q.Set("status", strings.Join(req.Status, ","))
	}
	q.Set("sort_by", "update_time")
	if req.SortBy != "" {
		q.Set("sort_by", req.SortBy)
	}
	if req.SortDesc {
		q.Set("sort_direction", "desc")
	}
	if req.Cursor != "" {
		q.Set("cursor", req.Cursor)
	}
	limit := req.Limit
	if limit == 0 {
		limit = MaxPageSize
	}
	q.Set("limit", strconv.Itoa(limit))
	return path, "GET /api/v2" + path, q, nil
}

// read performs a GET list call and decodes its body into env.
func (c *Client) read(ctx context.Context, k apiCall, env any) (*response, error) {
	k.method, k.ok, k.maxBody = http.MethodGet, []int{http.StatusOK}, maxPageBytes
	resp, err := c.send(ctx, k)
	if err != nil {
		return nil, err
	}
	if err := decodeBody(k.route, resp, env); err != nil {
		return nil, err
	}
	return resp, nil
}
