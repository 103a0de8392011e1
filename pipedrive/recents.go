package pipedrive

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// recentsTime is how /v1/recents writes times: UTC, no zone, whole seconds.
const recentsTime = "2006-01-02 15:04:05"

// RecentsRequest selects one page of GET /v1/recents.
type RecentsRequest struct {
	// Since is the change time to list after; required. It is sent in UTC
	// and truncated to the second. Pipedrive reaches back about 30 days.
	Since time.Time
	// Items limits the entity types, sent comma-separated (whether
	// Pipedrive honours a list is unconfirmed); empty means all. Leads are
	// never in recents.
	Items []Kind
	// Start is the offset of the page; Limit its size, 0 for Pipedrive's
	// default (100). The largest limit recents accepts is undocumented.
	Start, Limit int
}

// recentsEntry is one {"item", "id", "data"} of recents.
type recentsEntry struct {
	Item flexString      `json:"item"`
	ID   flexString      `json:"id"`
	Data json.RawMessage `json:"data"`
}

// Recents reads one page of the changes of all (or some) types since a time
// (GET /v1/recents, 20 tokens), in v1 shapes. Entries with null data come
// back with NoData; a user's data sent as a one-element array is unwrapped.
func (c *Client) Recents(ctx context.Context, domain string, cred Credentials, req RecentsRequest) (Page, error) {
	if req.Since.IsZero() || req.Start < 0 || req.Limit < 0 {
		return Page{}, &APIError{Route: RouteRecents, Kind: ErrValidation, Message: "recents needs a since time and non-negative paging"}
	}
	q := map[string][]string{"since_timestamp": {req.Since.UTC().Format(recentsTime)}}
	if len(req.Items) > 0 {
		items := make([]string, len(req.Items))
		for i, k := range req.Items {
			items[i] = string(k)
		}
		q["items"] = []string{strings.Join(items, ",")}
	}
	if req.Start > 0 {
		q["start"] = []string{strconv.Itoa(req.Start)}
	}
	if req.Limit > 0 {
		q["limit"] = []string{strconv.Itoa(req.Limit)}
	}
	var env struct {
		Data           []recentsEntry `json:"data"`
		AdditionalData struct {
			LastTimestamp flexTime   `json:"last_timestamp_on_page"`
			Pagination    pagination `json:"pagination"`
		} `json:"additional_data"`
	}
	resp, err := c.read(ctx, apiCall{route: RouteRecents, path: "/recents", query: q, domain: domain, cred: cred}, &env)
	if err != nil {
		return Page{}, err
	}
	p := Page{LastTimestamp: env.AdditionalData.LastTimestamp.t, RateLimit: resp.rl, Cost: RouteCost(RouteRecents)}
	for _, e := range env.Data {
		p.Items = append(p.Items, recentsItem(e))
	}
	p.More, p.NextStart = env.AdditionalData.Pagination.next(req.Start, req.Limit, len(p.Items))
	return p, nil
}

func recentsItem(e recentsEntry) Item {
	kind := Kind(e.Item)
	data := bytes.TrimSpace(e.Data)
	if len(data) > 0 && data[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(data, &list) == nil && len(list) > 0 {
			data = bytes.TrimSpace(list[0])
		} else {
			data = nil
		}
	}
	if len(data) == 0 || data[0] != '{' {
		return Item{Kind: kind, ID: string(e.ID), NoData: true}
	}
	it := parseItem(kind, json.RawMessage(data))
	if it.ID == "" {
		it.ID = string(e.ID)
	}
	return it
}

// pagination is v1's offset paging block, read leniently: the spec's own
// example quotes numbers.
type pagination struct {
	Start     flexInt  `json:"start"`
	Limit     flexInt  `json:"limit"`
	More      flexBool `json:"more_items_in_collection"`
	NextStart flexInt  `json:"next_start"`
}

// next returns whether more follows and where: next_start when sent, else
// start + limit (the answered limit, else the asked, else the items seen).
func (p pagination) next(start, limit, n int) (bool, int) {
	if !p.More.v {
		return false, 0
	}
	if p.NextStart.set {
		return true, int(p.NextStart.v)
	}
	switch {
	case p.Limit.set && p.Limit.v > 0:
		limit = int(p.Limit.v)
	case limit == 0:
		limit = n
	}
	return true, start + limit
}

// UnmarshalJSON reads each field on its own, so one odd value (the spec's
// example has "0,") loses only that field.
func (p *pagination) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		*p = pagination{}
		return nil
	}
	_ = p.Start.UnmarshalJSON(orNull(fields["start"]))
	_ = p.Limit.UnmarshalJSON(orNull(fields["limit"]))
	_ = p.More.UnmarshalJSON(orNull(fields["more_items_in_collection"]))
	_ = p.NextStart.UnmarshalJSON(orNull(fields["next_start"]))
	return nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
