package pipedrivetest

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

type faultKind int

const (
	faultStatus faultKind = iota + 1
	faultTimeout
	faultLose
	faultHTML
)

// Fault is an injected failure; build one with Status, Timeout,
// LoseResponse or HTMLBlock.
type Fault struct {
	kind       faultKind
	status     int
	retryAfter time.Duration
	delay      time.Duration
	header     http.Header
}

// Status answers with code and a Pipedrive-like JSON error body instead of
// performing the request. A 429 also reports x-ratelimit-remaining: 0.
func Status(code int) Fault { return Fault{kind: faultStatus, status: code} }

// WithRetryAfter adds a Retry-After header (whole seconds, rounded up).
func (f Fault) WithRetryAfter(d time.Duration) Fault {
	f.retryAfter = d
	return f
}

// WithHeader sets a response header, overriding the fake's own value, e.g.
// ("x-ratelimit-reset", "7") or ("x-daily-ratelimit-token-remaining", "0").
func (f Fault) WithHeader(key, value string) Fault {
	h := f.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(key, value)
	f.header = h
	return f
}

// Timeout waits d before handling the request. If the client gives up first
// the request is not performed; if d is shorter than the client's timeout
// the request merely is slow.
func Timeout(d time.Duration) Fault { return Fault{kind: faultTimeout, delay: d} }

// LoseResponse performs the request (a create creates, a delete deletes) and
// then closes the connection without answering, as a dropped link would.
// Note that net/http transparently retries a GET on a reused connection.
func LoseResponse() Fault { return Fault{kind: faultLose} }

// HTMLBlock answers 403 with an HTML page, like Pipedrive's edge does when it
// blocks an integration that keeps calling after 429s.
func HTMLBlock() Fault { return Fault{kind: faultHTML, status: http.StatusForbidden} }

// String names the fault for Call.Fault.
func (f Fault) String() string {
	switch f.kind {
	case faultStatus:
		return "status " + strconv.Itoa(f.status)
	case faultTimeout:
		return "timeout " + f.delay.String()
	case faultLose:
		return "lose response"
	case faultHTML:
		return "html block"
	}
	return "none"
}

type pendingFault struct {
	route string
	fault Fault
}

// FailNext makes the next n requests on route fail with f. route is a full
// route such as pipedrive.RouteCreateWebhook, or "*" for any route. Faults
// queue in order and apply before authentication.
func (s *Server) FailNext(route string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, pendingFault{route: route, fault: f})
	}
}

// SetChaos makes a fraction rate of API requests (not OAuth) fail at random,
// reproducibly for a seed: 429 with Retry-After 1, 500, a timeout of the
// chaos delay (see SetChaosDelay), or a lost response. Queued FailNext faults
// take precedence. rate 0 turns chaos off.
func (s *Server) SetChaos(rate float64, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaosRate = rate
	s.chaosRand = rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// SetChaosDelay sets how long a chaos timeout waits (default 300 ms); use
// a client timeout below it to see timeouts.
func (s *Server) SetChaosDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaosDelay = d
}

type companyFault struct {
	until time.Time
	fault Fault
}

// FailCompany makes every API request made with a company's credentials
// fail with f until the fake's clock (see SetClock) reaches until: one
// company rate-limited or down while the others are not. FailNext faults
// queued for a route take precedence. A zero until clears it.
func (s *Server) FailCompany(companyID int64, until time.Time, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.IsZero() {
		delete(s.companyFaults, companyID)
		return
	}
	if s.companyFaults == nil {
		s.companyFaults = map[int64]companyFault{}
	}
	s.companyFaults[companyID] = companyFault{until: until, fault: f}
}

// takeFault pops the fault for this request, if any. Callers hold s.mu.
func (s *Server) takeFault(route string, api bool, companyID int64) (Fault, bool) {
	for i, p := range s.faults {
		if p.route == route || p.route == "*" {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return p.fault, true
		}
	}
	if cf, ok := s.companyFaults[companyID]; ok && api {
		if s.now().Before(cf.until) {
			return cf.fault, true
		}
		delete(s.companyFaults, companyID)
	}
	if !api || s.chaosRate <= 0 || s.chaosRand == nil || s.chaosRand.Float64() >= s.chaosRate {
		return Fault{}, false
	}
	switch s.chaosRand.IntN(4) {
	case 0:
		return Status(http.StatusTooManyRequests).WithRetryAfter(time.Second), true
	case 1:
		return Status(http.StatusInternalServerError), true
	case 2:
		return Timeout(s.chaosDelay), true
	default:
		return LoseResponse(), true
	}
}

// faultBody is a Pipedrive-like body for an injected status.
func faultBody(code int) any {
	switch code {
	case http.StatusBadRequest:
		return map[string]any{"status": "error", "success": false, "errors": map[string][]string{"request": {"invalid request"}}}
	case http.StatusUnauthorized:
		return unauthorizedBody
	case http.StatusForbidden:
		return map[string]any{"success": false, "message": "Forbidden"}
	case http.StatusNotFound:
		return notFoundBody
	case http.StatusUnprocessableEntity:
		return limitBody
	case http.StatusTooManyRequests:
		return map[string]any{"success": false, "error": "Request over limit", "errorCode": code}
	}
	return map[string]any{"success": false, "error": http.StatusText(code), "errorCode": code}
}

const blockPage = `<!DOCTYPE html>
<html lang="en"><head><title>Attention Required! | Cloudflare</title></head>
<body><h1>Sorry, you have been blocked</h1>
<p>You are unable to access pipedrive.com</p></body></html>
`
