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
	tokens int // charged to the company's daily budget
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

// ServeHTTP implements http.Handler for the API (not the /_fake/ control
// API; see Handler).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does net/http notice a client hanging up
	// and cancel r.Context(), which Timeout relies on.
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	x := &exchange{s: s, w: w, r: r, body: body, rt: parseRoute(r)}
	x.token, x.bearer = credentials(r)

	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
	}
	if !s.wait(r.Context(), x.rt.name()) {
		return
	}

	s.mu.Lock()
	var companyID int64
	if co := s.lookup(x.token, x.bearer); co != nil {
		companyID = co.ID
	}
	f, faulty := s.takeFault(x.rt.name(), x.rt.api, companyID)
	call := Call{
		Method: r.Method, Route: x.rt.name(), Template: x.rt.template, Path: r.URL.Path,
		RawQuery: r.URL.RawQuery, Header: r.Header, CompanyID: companyID,
	}
	if faulty {
		call.Fault = f.String()
	}
	idx := s.record(call)
	s.hit(x.token)
	s.mu.Unlock()

	status := s.serve(x, f, faulty)

	s.mu.Lock()
	if idx >= 0 && idx < len(s.calls) { // ResetCalls may have run meanwhile
		s.calls[idx].Status = status
		s.calls[idx].Tokens = x.tokens
	}
	if u := s.usage[call.Route]; u != nil {
		u.Tokens += x.tokens
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
	case x.rt.template == "/oauth/authorize":
		s.handleAuthorize(x)
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
	burst := !s.burstOn || s.windows[x.token].count <= s.burstLimit
	if daily && burst {
		// A rejected call costs nothing; the last tokens buy one more.
		x.tokens = min(x.rt.cost(), co.dailyRemaining)
		co.dailyRemaining -= x.tokens
		co.spent += x.tokens
	}
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
	s.dispatch(x)
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
	return s.rangeCompany(token)
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
		x.s.errorf("pipedrivetest: encode response: %v", err)
	}
	x.writeHeaders("application/json")
	x.w.WriteHeader(status)
	_, _ = x.w.Write(buf.Bytes())
	x.status = status
}
