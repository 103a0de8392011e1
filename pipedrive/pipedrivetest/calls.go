package pipedrivetest

import "net/http"

// Call is one request the fake received.
type Call struct {
	Method string
	// Route is the template in pipedrive.Route* form, e.g. "GET /v1/webhooks";
	// for unknown paths it is the method and the raw path.
	Route string
	// Template is Route without the method, e.g. "/v1/webhooks/{id}".
	Template string
	Path     string // as sent, e.g. "/api/v1/webhooks/880001"
	RawQuery string
	Header   http.Header
	// CompanyID is the company the credentials name; 0 when unknown.
	CompanyID int64
	// Status is what the fake answered; 0 when the answer was lost or the
	// client gave up first.
	Status int
	// Fault names the injected fault, if any.
	Fault string
	// Tokens is what the call cost the company's daily budget.
	Tokens int
}

// Usage counts calls and the tokens they cost.
type Usage struct {
	Calls  int `json:"calls"`
	Tokens int `json:"tokens"`
}

// Calls returns the calls received so far, in arrival order; empty when the
// fake was built with Options.DiscardCalls.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Header = c.Header.Clone()
		out[i] = c
	}
	return out
}

// CallCount counts calls matching method ("" = any) and route, which is either
// a template ("/v1/webhooks/{id}"), a full route (pipedrive.RouteDeleteWebhook)
// or "" for any.
func (s *Server) CallCount(method, route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if (method == "" || c.Method == method) && (route == "" || route == c.Route || route == c.Template) {
			n++
		}
	}
	return n
}

// Usage returns the calls and tokens per route ("GET /api/v2/deals") since
// the start or the last ResetCalls. It is kept even with DiscardCalls.
func (s *Server) Usage() map[string]Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Usage, len(s.usage))
	for k, u := range s.usage {
		out[k] = *u
	}
	return out
}

// TokensSpent is what a company's calls cost so far (never reset).
func (s *Server) TokensSpent(companyID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if co := s.company(companyID); co != nil {
		return co.spent
	}
	return 0
}

// ResetCalls forgets the recorded calls and the per-route Usage.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.usage = map[string]*Usage{}
}

// record notes an arriving call and returns its index in s.calls, or -1.
// Callers hold s.mu.
func (s *Server) record(c Call) int {
	u := s.usage[c.Route]
	if u == nil {
		u = &Usage{}
		s.usage[c.Route] = u
	}
	u.Calls++
	if s.discardCalls {
		return -1
	}
	c.Header = c.Header.Clone()
	s.calls = append(s.calls, c)
	return len(s.calls) - 1
}
