// Package sched is a coalescing work queue keyed by an id: one run per key
// at a time, repeated triggers merge into one run, failures back off per
// key, and every key runs again about every resync interval. It must not
// know what a run does: the caller's job and its result decide.
package sched

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
)

// Back-off after failures that may pass: 5 s doubling to 10 min, with jitter.
const (
	backoffBase = 5 * time.Second
	backoffMax  = 10 * time.Minute
)

// Result is what the scheduler reads from the outcome of a run.
type Result interface {
	// Gone reports that the key no longer exists: it is forgotten, unless
	// a trigger is waiting for its next run.
	Gone() bool
	// Retry reports a failure that may pass, and the least wait asked for;
	// any other outcome waits for the next resync.
	Retry() (retry bool, after time.Duration)
}

// Job runs one key.
type Job[R Result] func(ctx context.Context, key int64) R

// Options configure a scheduler.
type Options struct {
	Clock clock.Clock
	// Resync is how often every key runs again (±10 % jitter).
	Resync time.Duration
	// Workers bounds the runs in progress at once.
	Workers int
}

// item is one key in the scheduler.
type item[R Result] struct {
	next     time.Time
	running  bool
	dirty    bool // triggered while running: run again right after
	failures int
	// waiting are told the result of the next run that starts; inflight
	// are told the result of the run in progress.
	waiting, inflight []chan R
	// op replaces the job for the next run (a disconnect, say).
	op Job[R]
}

// Scheduler runs a job per key; see the package comment.
type Scheduler[R Result] struct {
	opts Options
	run  Job[R]

	mu    sync.Mutex
	items map[int64]*item[R]
	wake  chan struct{}
}

// New returns a scheduler that runs run for every key it is given.
func New[R Result](opts Options, run Job[R]) *Scheduler[R] {
	opts.Workers = max(opts.Workers, 1)
	return &Scheduler[R]{opts: opts, run: run, items: map[int64]*item[R]{}, wake: make(chan struct{}, 1)}
}

// Trigger runs the key as soon as possible (after its current run, if
// any) and returns a channel that receives that run's result.
func (s *Scheduler[R]) Trigger(key int64) <-chan R { return s.Enqueue(key, nil) }

// Enqueue is Trigger with op run instead of the job (nil: the job).
func (s *Scheduler[R]) Enqueue(key int64, op Job[R]) <-chan R {
	ch := make(chan R, 1)
	s.mu.Lock()
	it, ok := s.items[key]
	if !ok {
		it = &item[R]{next: s.opts.Clock.Now()}
		s.items[key] = it
	}
	it.waiting = append(it.waiting, ch)
	if op != nil {
		it.op = op
	}
	if it.running {
		it.dirty = true
	} else {
		it.next = s.opts.Clock.Now()
	}
	s.mu.Unlock()
	s.poke()
	return ch
}

// Ensure adds a key that is not scheduled yet, to run after delay.
func (s *Scheduler[R]) Ensure(key int64, delay time.Duration) {
	s.mu.Lock()
	if _, ok := s.items[key]; !ok {
		s.items[key] = &item[R]{next: s.opts.Clock.Now().Add(delay)}
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler[R]) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches due keys to at most Workers goroutines until ctx ends,
// then waits for the runs in progress.
func (s *Scheduler[R]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.opts.Workers)
	for {
		s.mu.Lock()
		now := s.opts.Clock.Now()
		wait := time.Duration(-1)
		for key, it := range s.items {
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
				res := op(ctx, key)
				<-sem
				s.finish(key, res)
			}()
		}
		s.mu.Unlock()
		var timer <-chan time.Time
		if wait >= 0 {
			timer = s.opts.Clock.At(now.Add(wait))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer:
		}
	}
}

func (s *Scheduler[R]) finish(key int64, res R) {
	s.mu.Lock()
	it := s.items[key]
	it.running = false
	// Waiters hear the result only after the next run is scheduled.
	defer func(waiters []chan R) {
		for _, ch := range waiters {
			ch <- res
		}
	}(it.inflight)
	it.inflight = nil
	now := s.opts.Clock.Now()
	retry, after := res.Retry()
	switch {
	case res.Gone() && len(it.waiting) == 0:
		delete(s.items, key)
	case it.dirty:
		it.next = now
	case !retry:
		it.failures = 0
		it.next = now.Add(jitter(s.opts.Resync, 0.1))
	default:
		it.failures++
		it.next = now.Add(max(after, backoff(it.failures)))
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

// jitter spreads d by ±frac so that keys do not resync in lockstep.
func jitter(d time.Duration, frac float64) time.Duration {
	spread := time.Duration(float64(d) * frac)
	if spread <= 0 {
		return d
	}
	return d - spread + rand.N(2*spread+1)
}
