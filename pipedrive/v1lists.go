package pipedrive

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// OffsetRequest selects one page of a v1 list with offset paging.
type OffsetRequest struct {
	// Since bounds update_time from below (inclusive), sent as RFC 3339.
	// /v1/leads/archived lists no updated_since in its spec; it is sent
	// anyway and may be ignored, so filter archived leads yourself.
	Since time.Time
	// Archived lists archived leads (/v1/leads/archived, 40 tokens).
	Archived bool
	// Start is the offset; Limit the page size, 0 for MaxPageSize.
	Start, Limit int
}

// ListLeads reads one page of leads (GET /v1/leads, 20 tokens; archived
// 40), oldest change first. Deleted leads are listed nowhere.
func (c *Client) ListLeads(ctx context.Context, domain string, cred Credentials, req OffsetRequest) (Page, error) {
	route, path := RouteListLeads, "/leads"
	if req.Archived {
		route, path = RouteListArchivedLeads, "/leads/archived"
	}
	return c.offsetList(ctx, domain, cred, route, path, KindLead, req)
}

// ListNotes reads one page of notes (GET /v1/notes, 20 tokens), oldest
// change first.
func (c *Client) ListNotes(ctx context.Context, domain string, cred Credentials, req OffsetRequest) (Page, error) {
	if req.Archived {
		return Page{}, &APIError{Route: RouteListNotes, Kind: ErrValidation, Message: "notes are not archived"}
	}
	return c.offsetList(ctx, domain, cred, RouteListNotes, "/notes", KindNote, req)
}

// ListUsers reads all users of the company (GET /v1/users, 20 tokens; the
// endpoint has no filter and no paging). Deactivated users are Inactive.
func (c *Client) ListUsers(ctx context.Context, domain string, cred Credentials) (Page, error) {
	var env struct {
		Data []json.RawMessage `json:"data"`
	}
	resp, err := c.read(ctx, apiCall{route: RouteListUsers, path: "/users", domain: domain, cred: cred}, &env)
	if err != nil {
		return Page{}, err
	}
	p := Page{RateLimit: resp.rl, Cost: RouteCost(RouteListUsers)}
	for _, raw := range env.Data {
		p.Items = append(p.Items, parseItem(KindUser, raw))
	}
	return p, nil
}

func (c *Client) offsetList(ctx context.Context, domain string, cred Credentials, route, path string, kind Kind, req OffsetRequest) (Page, error) {
	if req.Start < 0 || req.Limit < 0 || req.Limit > MaxPageSize {
		return Page{}, &APIError{Route: route, Kind: ErrValidation, Message: "start must be non-negative and limit between 1 and 500"}
	}
	limit := req.Limit
	if limit == 0 {
		limit = MaxPageSize
	}
	q := map[string][]string{
		"sort":  {"update_time ASC"},
		"start": {strconv.Itoa(req.Start)},
		"limit": {strconv.Itoa(limit)},
	}
	if !req.Since.IsZero() {
		q["updated_since"] = []string{req.Since.UTC().Truncate(time.Second).Format(time.RFC3339)}
	}
	// Leads put paging flat in additional_data, notes under pagination.
	var env struct {
		Data           []json.RawMessage `json:"data"`
		AdditionalData struct {
			pagination
			Pagination *pagination `json:"pagination"`
		} `json:"additional_data"`
	}
	resp, err := c.read(ctx, apiCall{route: route, path: path, query: q, domain: domain, cred: cred}, &env)
	if err != nil {
		return Page{}, err
	}
	p := Page{RateLimit: resp.rl, Cost: RouteCost(route)}
	for _, raw := range env.Data {
		p.Items = append(p.Items, parseItem(kind, raw))
	}
	pg := env.AdditionalData.pagination
	if env.AdditionalData.Pagination != nil {
		pg = *env.AdditionalData.Pagination
	}
	p.More, p.NextStart = pg.next(req.Start, limit, len(p.Items))
	return p, nil
}
