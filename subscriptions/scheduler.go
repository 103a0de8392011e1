package subscriptions

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Clock is the time source of the scheduler; tests use a fake one.
type Clock interface {
	Now() time.Time
	// At fires once the clock reaches t. An absolute time, not a duration,
	// so that time passing between reading Now and arming the timer is not
	// added to the wait.
	At(t time.Time) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// Back-off after errors that may pass: 5 s doubling to 10 min, with jitter.
const (
	backoffBase = 5 * time.Second
	backoffMax  = 10 * time.Minute
	workers     = 4
)

// job is what a worker runs for a company: a reconcile or a disconnect.
type job func(ctx context.Context, id int64) result

// item is one company in the scheduler.
type item struct {
	next     time.Time
	running  bool
	dirty    bool // triggered while running: run again right after
	failures int
	// waiting are told the result of the next run that starts; running
	// are told the result of the run in progress.
	waiting, inflight []chan result
	// op replaces the reconcile for the next run (a disconnect).
	op job
}

// scheduler is a coalescing work queue keyed by company id: one run per
// company at a time, repeated triggers merge into one run, failures back off
// per company, and every company is resynced about every RESYNC_INTERVAL.
type scheduler struct {
	clock  Clock
	resync time.Duration
	run    job

	mu    sync.Mutex
	items map[int64]*item
	wake  chan struct{}
}

func newScheduler(clock Clock, resync time.Duration, run job) *scheduler {
	return &scheduler{clock: clock, resync: resync, run: run, items: map[int64]*item{}, wake: make(chan struct{}, 1)}
}

func (s *scheduler) get(id int64) *item {
	it, ok := s.items[id]
	if !ok {
		it = &item{next: s.clock.Now()}
		s.items[id] = it
	}
	return it
}

// Trigger runs the company as soon as possible (after its current run, if
// any) and returns a channel that receives that run's result.
func (s *scheduler) Trigger(id int64) <-chan result {
	return s.enqueue(id, nil)
}

// enqueue schedules op (nil = reconcile) for the company now.
func (s *scheduler) enqueue(id int64, op job) <-chan result {
	ch := make(chan result, 1)
	s.mu.Lock()
	it := s.get(id)
	it.waiting = append(it.waiting, ch)
	if op != nil {
		it.op = op
	}
	if it.running {
		it.dirty = true
	} else {
		it.next = s.clock.Now()
	}
	s.mu.Unlock()
	s.poke()
	return ch
}

// Ensure adds a company that is not scheduled yet, to run after delay.
func (s *scheduler) Ensure(id int64, delay time.Duration) {
	s.mu.Lock()
	if _, ok := s.items[id]; !ok {
		s.items[id] = &item{next: s.clock.Now().Add(delay)}
	}
	s.mu.Unlock()
	s.poke()
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches due companies to at most `workers` goroutines until ctx
// ends, then waits for the runs in progress.
func (s *scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, workers)
	for {
		s.mu.Lock()
		now := s.clock.Now()
		wait := time.Duration(-1)
		for id, it := range s.items {
			if it.running {
				continue
			}
			if d := it.next.Sub(now); d > 0 {
				if wait < 0 || d < wait {
					wait = d
				}
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // all workers busy; a finishing one pokes us
			}
			it.running, it.dirty = true, false
			it.inflight, it.waiting = it.waiting, nil
			op := it.op
			it.op = nil
			if op == nil {
				op = s.run
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := op(ctx, id)
				<-sem
				s.finish(id, res)
			}()
		}
		s.mu.Unlock()
		var timer <-chan time.Time
		if wait >= 0 {
			timer = s.clock.At(now.Add(wait))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer:
		}
	}
}

func (s *scheduler) finish(id int64, res result) {
	s.mu.Lock()
	it := s.items[id]
	it.running = false
	// Waiters hear the result only after the next run is scheduled.
	defer func(waiters []chan result) {
		for _, ch := range waiters {
			ch <- res
		}
	}(it.inflight)
	it.inflight = nil
	now := s.clock.Now()
	switch {
	case res.gone && len(it.waiting) == 0:
		delete(s.items, id)
	case it.dirty:
		it.next = now
	case res.err == nil || res.permanent:
		it.failures = 0
		it.next = now.Add(jitter(s.resync, 0.1))
	default:
		it.failures++
		it.next = now.Add(max(res.retryAfter, backoff(it.failures)))
	}
	s.mu.Unlock()
	s.poke()
}

// backoff is exponential with full jitter in its upper half.
func backoff(failures int) time.Duration {
	d := backoffBase << min(failures-1, 10)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

// jitter spreads d by ±frac so that companies do not resync in lockstep.
func jitter(d time.Duration, frac float64) time.Duration {
	spread := time.Duration(float64(d) * frac)
	if spread <= 0 {
		return d
	}
	return d - spread + rand.N(2*spread+1)
}
