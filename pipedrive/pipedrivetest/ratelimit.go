package pipedrivetest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// The fake advertises Pipedrive's rate-limit headers on every answer: a
// rolling 2 s burst window per token (enforced only after SetBurstLimit) and
// the company's daily token budget (always enforced).

// hit counts a request in the token's rolling window. Callers hold s.mu.
func (s *Server) hit(token string) {
	now := time.Now()
	w := s.windows[token]
	if w == nil || now.Sub(w.start) >= burstWindow {
		w = &window{start: now}
		s.windows[token] = w
	}
	w.count++
}

// rateHeaders sets the documented rate-limit headers.
func (s *Server) rateHeaders(h http.Header, token string, co *company) {
	s.mu.Lock()
	defer s.mu.Unlock()
	remaining, reset := s.burstLimit, burstWindow
	if w := s.windows[token]; w != nil {
		remaining = max(s.burstLimit-w.count, 0)
		reset = max(burstWindow-time.Since(w.start), time.Second)
	}
	h.Set("x-ratelimit-limit", strconv.Itoa(s.burstLimit))
	h.Set("x-ratelimit-remaining", strconv.Itoa(remaining))
	h.Set("x-ratelimit-reset", strconv.Itoa(int(math.Ceil(reset.Seconds()))))
	if co != nil && !s.assume.NoDailyHeaders {
		h.Set("x-daily-ratelimit-token-limit", strconv.Itoa(co.dailyLimit))
		h.Set("x-daily-ratelimit-token-remaining", strconv.Itoa(co.dailyRemaining))
	}
}

// SetDailyBudget sets a company's remaining daily tokens (and the advertised
// limit when larger). Calls cost what Pipedrive documents (see Usage); at 0
// every call answers 429.
func (s *Server) SetDailyBudget(companyID int64, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.mustCompany(companyID)
	if co == nil {
		return
	}
	co.dailyRemaining = tokens
	co.dailyLimit = max(co.dailyLimit, tokens)
}

// DailyBudget returns a company's advertised daily limit and what is left.
func (s *Server) DailyBudget(companyID int64) (limit, remaining int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.mustCompany(companyID)
	if co == nil {
		return 0, 0
	}
	return co.dailyLimit, co.dailyRemaining
}

// ResetDailyBudgets refills every company's budget to its limit, as
// Pipedrive's midnight does. The fake never does it on its own: a test
// running across midnight must not change behaviour.
func (s *Server) ResetDailyBudgets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, co := range s.companies {
		co.dailyRemaining = co.dailyLimit
	}
}

// SetBurstLimit enforces a limit of n requests per token per 2 s with 429s;
// n <= 0 turns enforcement off (the default), keeping the headers.
func (s *Server) SetBurstLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.burstOn = n > 0
	s.burstLimit = defaultBurstLimit
	if n > 0 {
		s.burstLimit = n
	}
}
