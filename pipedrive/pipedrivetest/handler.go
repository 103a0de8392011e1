package pipedrivetest

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

var (
	unauthorizedBody = map[string]any{"success": false, "error": "unauthorized access", "errorCode": 401}
	notFoundBody     = map[string]any{"status": "error", "success": false, "errors": map[string][]string{"id": {"not found"}}}
	limitBody        = map[string]any{"success": false, "error": "Webhooks limit reached", "errorCode": 422}
)

// route is a parsed request path.
type route struct {
	method   string
	template string // "/v1/webhooks/{id}"; the raw path when unknown
	id       string
	api      bool // under /v1 or /api/v1
	known    bool
	allowed  bool
}

func (rt route) name() string { return rt.method + " " + rt.template }

// cost is the documented token cost of an API route.
func (rt route) cost() int {
	switch rt.template {
	case "/v1/users/me":
		return 2
	case "/v1/webhooks/{id}":
		return 6
	}
	return 10
}

func parseRoute(r *http.Request) route {
	rt := route{method: r.Method, template: r.URL.Path}
	p := r.URL.Path
	var rest string
	switch {
	case p == "/oauth/token":
		rt.known, rt.allowed = true, r.Method == http.MethodPost
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
		rt.template, rt.known, rt.allowed = "/v1/users/me", true, r.Method == http.MethodGet
	case rest == "/webhooks":
		rt.template, rt.known = "/v1/webhooks", true
		rt.allowed = r.Method == http.MethodGet || r.Method == http.MethodPost
	case strings.HasPrefix(rest, "/webhooks/") && !strings.Contains(rest[len("/webhooks/"):], "/"):
		rt.template, rt.known, rt.allowed = "/v1/webhooks/{id}", true, r.Method == http.MethodDelete
		rt.id = rest[len("/webhooks/"):]
	}
	return rt
}

// exchange is one request being answered.
type exchange struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
	rt     route
	token  string
	bearer bool
	co     *company // set once authenticated
	header http.Header
	status int
}

// credentials reads the token from x-api-token, a bearer header, or the
// legacy api_token query parameter, which Pipedrive still accepts.
func credentials(r *http.Request) (token string, bearer bool) {
	if t := r.Header.Get("x-api-token"); t != "" {
		return t, false
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t, true
	}
	return r.URL.Query().Get("api_token"), false
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does net/http notice a client hanging up
	// and cancel r.Context(), which Timeout relies on.
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	x := &exchange{s: s, w: w, r: r, body: body, rt: parseRoute(r)}
	x.token, x.bearer = credentials(r)

	s.mu.Lock()
	var companyID int64
	if co := s.lookup(x.token, x.bearer); co != nil {
		companyID = co.ID
	}
	f, faulty := s.takeFault(x.rt.name(), x.rt.api)
	call := Call{
		Method: r.Method, Route: x.rt.name(), Template: x.rt.template, Path: r.URL.Path,
		RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), CompanyID: companyID,
	}
	if faulty {
		call.Fault = f.String()
	}
	s.calls = append(s.calls, call)
	idx := len(s.calls) - 1
	s.hit(x.token)
	s.mu.Unlock()

	status := s.serve(x, f, faulty)

	s.mu.Lock()
	if idx < len(s.calls) { // ResetCalls may have run meanwhile
		s.calls[idx].Status = status
	}
	s.mu.Unlock()
}

func (s *Server) serve(x *exchange, f Fault, faulty bool) int {
	if faulty {
		switch f.kind {
		case faultStatus:
			x.header = f.header
			if f.retryAfter > 0 {
				x.extraHeader("Retry-After", strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds()))))
			}
			if f.status == http.StatusTooManyRequests {
				x.extraHeaderDefault("x-ratelimit-remaining", "0")
			}
			x.json(f.status, faultBody(f.status))
			return x.status
		case faultHTML:
			x.header = f.header
			x.writeHeaders("text/html; charset=utf-8")
			x.w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(x.w, blockPage)
			return http.StatusForbidden
		case faultTimeout:
			t := time.NewTimer(f.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-x.r.Context().Done():
				return 0
			}
		case faultLose:
			real := x.w
			x.w = httptest.NewRecorder() // the answer goes nowhere
			s.handle(x)
			if hj, ok := real.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			return 0
		}
	}
	s.handle(x)
	return x.status
}

func (s *Server) handle(x *exchange) {
	switch {
	case !x.rt.known:
		x.json(http.StatusNotFound, map[string]any{"success": false, "error": "Unknown method", "errorCode": 404})
		return
	case !x.rt.allowed:
		x.json(http.StatusMethodNotAllowed, map[string]any{"success": false, "error": "Method not allowed", "errorCode": 405})
		return
	case !x.rt.api:
		s.handleToken(x)
		return
	}

	s.mu.Lock()
	co := s.lookup(x.token, x.bearer)
	if co == nil {
		s.mu.Unlock()
		x.json(http.StatusUnauthorized, unauthorizedBody)
		return
	}
	x.co = co
	daily := co.dailyRemaining > 0
	if daily {
		co.dailyRemaining = max(co.dailyRemaining-x.rt.cost(), 0)
	}
	burst := !s.burstOn || s.windows[x.token].count <= s.burstLimit
	s.mu.Unlock()
	switch {
	case !daily:
		x.json(http.StatusTooManyRequests, faultBody(http.StatusTooManyRequests))
		return
	case !burst:
		x.extraHeader("Retry-After", "2")
		x.json(http.StatusTooManyRequests, faultBody(http.StatusTooManyRequests))
		return
	}

	switch x.rt.template {
	case "/v1/users/me":
		s.handleMe(x)
	case "/v1/webhooks":
		if x.r.Method == http.MethodPost {
			s.handleCreate(x)
			return
		}
		s.handleList(x)
	case "/v1/webhooks/{id}":
		s.handleDelete(x)
	}
}

// lookup finds the company of a token. Callers hold s.mu.
func (s *Server) lookup(token string, bearer bool) *company {
	if token == "" {
		return nil
	}
	if bearer {
		a, ok := s.oauth.access[token]
		if !ok || !s.now().Before(a.expires) {
			return nil
		}
		return s.companies[a.companyID]
	}
	if id, ok := s.apiTokens[token]; ok {
		return s.companies[id]
	}
	return nil
}

func (x *exchange) extraHeader(k, v string) {
	if x.header == nil {
		x.header = http.Header{}
	} else {
		x.header = x.header.Clone()
	}
	x.header.Set(k, v)
}

// extraHeaderDefault sets k unless a fault already chose a value.
func (x *exchange) extraHeaderDefault(k, v string) {
	if x.header.Get(k) == "" {
		x.extraHeader(k, v)
	}
}

func (x *exchange) writeHeaders(contentType string) {
	h := x.w.Header()
	co := x.co
	if co == nil && x.rt.api {
		x.s.mu.Lock()
		co = x.s.lookup(x.token, x.bearer)
		x.s.mu.Unlock()
	}
	x.s.rateHeaders(h, x.token, co)
	h.Set("Content-Type", contentType)
	for k, v := range x.header {
		h[k] = v
	}
}

func (x *exchange) json(status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		x.s.t.Errorf("pipedrivetest: encode response: %v", err)
	}
	x.writeHeaders("application/json")
	x.w.WriteHeader(status)
	_, _ = x.w.Write(buf.Bytes())
	x.status = status
}
