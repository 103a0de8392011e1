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
	if co != nil {
		h.Set("x-daily-ratelimit-token-limit", strconv.Itoa(co.dailyLimit))
		h.Set("x-daily-ratelimit-token-remaining", strconv.Itoa(co.dailyRemaining))
	}
}
