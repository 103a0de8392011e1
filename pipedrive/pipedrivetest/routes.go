package pipedrivetest

import (
	"net/http"
	"strings"
)

// route is a parsed request path.
type route struct {
	method   string
	template string // "/v1/webhooks/{id}"; the raw path when unknown
	id       string
	api      bool // under /v1, /api/v1 or /api/v2
	known    bool
	allowed  bool
}

func (rt route) name() string { return rt.method + " " + rt.template }

// costs are the documented token costs (x-token-cost in Pipedrive's OpenAPI
// documents v1.yaml and v2.yaml) of the routes the fake serves.
var costs = map[string]int{
	"GET /v1/users/me":           2,
	"GET /v1/webhooks":           10,
	"POST /v1/webhooks":          10,
	"DELETE /v1/webhooks/{id}":   6,
	"GET /api/v2/deals":          10,
	"GET /api/v2/deals/archived": 20,
	"GET /api/v2/persons":        10,
	"GET /api/v2/organizations":  10,
	"GET /api/v2/activities":     10,
	"GET /api/v2/products":       10,
	"GET /api/v2/pipelines":      5,
	"GET /api/v2/stages":         5,
	"GET /v1/recents":            20,
	"GET /v1/leads":              20,
	"GET /v1/leads/archived":     40,
	"GET /v1/notes":              20,
	"GET /v1/users":              20,
}

// cost is the documented token cost of an API route; 10 for a known route
// with a method it does not serve, which answers 405.
func (rt route) cost() int {
	if c, ok := costs[rt.name()]; ok {
		return c
	}
	return 10
}

// v2Lists maps the v2 list paths to the kind they list.
var v2Lists = map[string]string{
	"/deals":          kindDeal,
	"/deals/archived": kindDeal,
	"/persons":        kindPerson,
	"/organizations":  kindOrganization,
	"/activities":     kindActivity,
	"/products":       kindProduct,
	"/pipelines":      kindPipeline,
	"/stages":         kindStage,
}

// v1Reads are the v1 read paths besides users/me.
var v1Reads = map[string]bool{
	"/recents": true, "/leads": true, "/leads/archived": true, "/notes": true, "/users": true,
}

func parseRoute(r *http.Request) route {
	rt := route{method: r.Method, template: r.URL.Path}
	p := r.URL.Path
	get := r.Method == http.MethodGet
	var rest string
	switch {
	case p == "/oauth/token":
		rt.known, rt.allowed = true, r.Method == http.MethodPost
		return rt
	case p == "/oauth/authorize":
		rt.known, rt.allowed = true, get || r.Method == http.MethodPost
		return rt
	case strings.HasPrefix(p, "/api/v2/"):
		rt.api = true
		if rest := strings.TrimPrefix(p, "/api/v2"); v2Lists[rest] != "" {
			rt.template, rt.known, rt.allowed = "/api/v2"+rest, true, get
		}
		return rt
	case strings.HasPrefix(p, "/api/v1/"):
		rest = strings.TrimPrefix(p, "/api/v1")
	case strings.HasPrefix(p, "/v1/"):
		rest = strings.TrimPrefix(p, "/v1") // Pipedrive accepts both prefixes
	default:
		return rt
	}
	rt.api = true
	switch {
	case rest == "/users/me":
		rt.template, rt.known, rt.allowed = "/v1/users/me", true, get
	case v1Reads[rest]:
		rt.template, rt.known, rt.allowed = "/v1"+rest, true, get
	case rest == "/webhooks":
		rt.template, rt.known = "/v1/webhooks", true
		rt.allowed = get || r.Method == http.MethodPost
	case strings.HasPrefix(rest, "/webhooks/") && !strings.Contains(rest[len("/webhooks/"):], "/"):
		rt.template, rt.known, rt.allowed = "/v1/webhooks/{id}", true, r.Method == http.MethodDelete
		rt.id = rest[len("/webhooks/"):]
	}
	return rt
}

// dispatch runs the handler of an authenticated, paid-for API call.
func (s *Server) dispatch(x *exchange) {
	switch t := x.rt.template; {
	case t == "/v1/users/me":
		s.handleMe(x)
	case t == "/v1/webhooks" && x.r.Method == http.MethodPost:
		s.handleCreate(x)
	case t == "/v1/webhooks":
		s.handleList(x)
	case t == "/v1/webhooks/{id}":
		s.handleDelete(x)
	case strings.HasPrefix(t, "/api/v2/"):
		s.handleV2List(x)
	case t == "/v1/recents":
		s.handleRecents(x)
	case t == "/v1/leads" || t == "/v1/leads/archived":
		s.handleLeads(x)
	case t == "/v1/notes":
		s.handleNotes(x)
	case t == "/v1/users":
		s.handleUsers(x)
	}
}
