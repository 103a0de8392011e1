package pipedrivetest

import (
	"context"
	"time"
)

// SetLatency delays every request by d before it is handled, as a distant
// API would; 0 turns it off. A client that gives up first gets no answer.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(max(d, 0))) }

// DelayFunc runs before an API call is handled, with the request's context
// and route (e.g. "GET /api/v2/deals"). An error drops the call unanswered.
type DelayFunc func(ctx context.Context, route string) error

// SetDelay installs f in place of the fixed latency (nil restores it): for
// per-route latency, or a test that holds calls until it has counted them.
func (s *Server) SetDelay(f DelayFunc) {
	if f == nil {
		s.delay.Store(nil)
		return
	}
	s.delay.Store(&f)
}

// wait applies the delay or latency; false when the call must be dropped.
func (s *Server) wait(ctx context.Context, route string) bool {
	if f := s.delay.Load(); f != nil {
		return (*f)(ctx, route) == nil
	}
	d := time.Duration(s.latency.Load())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// InFlight is the number of requests being handled right now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// MaxInFlight is the highest InFlight seen since the start or the last
// ResetMaxInFlight: with SetLatency it shows how many calls a caller really
// made at once, without timing anything.
func (s *Server) MaxInFlight() int { return int(s.maxInFlight.Load()) }

// ResetMaxInFlight sets MaxInFlight back to the current InFlight.
func (s *Server) ResetMaxInFlight() { s.maxInFlight.Store(s.inFlight.Load()) }
