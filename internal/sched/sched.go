// Package sched is a coalescing work queue keyed by an id: one run per key
// at a time, repeated triggers merge into one run, failures back off per
// key, and every key runs again about every resync interval. It must not
// know what a run does: the caller's job and its result decide.
//
// It is sized for 100,000 keys: one dispatcher goroutine and one timer for
// all of them, a min-heap of due times (O(log n) per dispatch), a goroutine
// only per run in progress, and about a hundred bytes per idle key.
package sched

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
)

// Back-off after failures that may pass and name no wait of their own:
// 5 s doubling to 10 min, with jitter.
const (
	backoffBase = 5 * time.Second
	backoffMax  = 10 * time.Minute
)

// Result is what the scheduler reads from the outcome of a run.
type Result interface {
	// Gone reports that the key no longer exists: it is forgotten, unless
	// a trigger is waiting for its next run.
	Gone() bool
	// Retry reports a failure that may pass, and the wait asked for (a
	// Retry-After): the key runs again after exactly that wait, or, when
	// it is 0, after an exponential back-off with jitter. Any other outcome
	// waits for the next resync.
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

// item is one key in the scheduler. Most keys only wait for their next
// resync, so what only a triggered key needs lives in ext.
type item[R Result] struct {
	key      int64
	next     time.Time
	index    int // in the due heap; -1 while running
	failures int32
	running  bool
	dirty    bool // triggered while running: run again right after
	ext      *waiters[R]
}

type waiters[R Result] struct {
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
	due   dueHeap[R]
	busy  int // runs in progress
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
	it := s.item(key)
	if it.ext == nil {
		it.ext = &waiters[R]{}
	}
	it.ext.waiting = append(it.ext.waiting, ch)
	if op != nil {
		it.ext.op = op
	}
	s.soon(it)
	s.mu.Unlock()
	s.poke()
	return ch
}

// Kick runs the key next: before every key that is due already (after its
// current run, if any), adding it if it is new, without waiting for the
// result. A company just connected has no webhook yet; nothing due is more
// urgent, and its record is still in the store's cache.
func (s *Scheduler[R]) Kick(key int64) {
	s.mu.Lock()
	it := s.item(key)
	if it.running {
		it.dirty = true
	} else {
		at := s.opts.Clock.Now()
		if len(s.due) > 0 && !s.due[0].next.After(at) {
			at = s.due[0].next.Add(-time.Nanosecond)
		}
		switch {
		case it.index < 0:
			it.next = at
			s.due.push(it)
		case at.Before(it.next):
			it.next = at
			s.due.fix(it.index)
		}
	}
	s.mu.Unlock()
	s.poke()
}

// Ensure adds a key that is not scheduled yet, to run after delay; a key
// already known keeps its time.
func (s *Scheduler[R]) Ensure(key int64, delay time.Duration) {
	s.mu.Lock()
	if _, ok := s.items[key]; !ok {
		it := &item[R]{key: key, next: s.opts.Clock.Now().Add(delay)}
		s.items[key] = it
		s.due.push(it)
	}
	s.mu.Unlock()
	s.poke()
}

// Len is the number of keys known.
func (s *Scheduler[R]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// item returns the key's item, adding a new one (not yet due) if needed.
// Callers hold s.mu.
func (s *Scheduler[R]) item(key int64) *item[R] {
	it, ok := s.items[key]
	if !ok {
		it = &item[R]{key: key, index: -1}
		s.items[key] = it
	}
	return it
}

// soon makes the key due now, or after its current run. Callers hold s.mu.
func (s *Scheduler[R]) soon(it *item[R]) {
	if it.running {
		it.dirty = true
		return
	}
	now := s.opts.Clock.Now()
	switch {
	case it.index < 0: // new
		it.next = now
		s.due.push(it)
	case it.next.After(now):
		it.next = now
		s.due.fix(it.index)
	}
}

func (s *Scheduler[R]) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches due keys to at most Workers runs at once until ctx ends,
// then waits for the runs in progress. It may be called again afterwards
// (a replica that leads again): the keys keep their times.
func (s *Scheduler[R]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var (
		timer   <-chan time.Time
		armedAt time.Time
	)
	for {
		s.mu.Lock()
		now := s.opts.Clock.Now()
		for s.busy < s.opts.Workers && len(s.due) > 0 && !s.due[0].next.After(now) {
			it := s.due.pop()
			op := s.start(it)
			s.busy++
			wg.Add(1)
			go func(key int64) {
				defer wg.Done()
				s.finish(key, op(ctx, key))
			}(it.key)
		}
		// With every worker busy a finishing run pokes us; no timer needed.
		var next time.Time
		if s.busy < s.opts.Workers && len(s.due) > 0 {
			next = s.due[0].next
		}
		s.mu.Unlock()
		// One timer for all keys, armed again only when the earliest due
		// time moves earlier: a timer that fires early just loops.
		if !next.IsZero() && (timer == nil || next.Before(armedAt)) {
			timer, armedAt = s.opts.Clock.At(next), next
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer:
			timer = nil
		}
	}
}

// start marks a popped item running and returns the job to run. Callers
// hold s.mu.
func (s *Scheduler[R]) start(it *item[R]) Job[R] {
	it.running, it.dirty = true, false
	op := s.run
	if x := it.ext; x != nil {
		x.inflight, x.waiting = x.waiting, nil
		if x.op != nil {
			op, x.op = x.op, nil
		}
	}
	return op
}

func (s *Scheduler[R]) finish(key int64, res R) {
	s.mu.Lock()
	s.busy--
	it := s.items[key]
	it.running = false
	var told []chan R
	if x := it.ext; x != nil {
		told, x.inflight = x.inflight, nil
		if len(x.waiting) == 0 && x.op == nil {
			it.ext = nil
		}
	}
	now := s.opts.Clock.Now()
	retry, after := res.Retry()
	if res.Gone() && it.ext == nil {
		delete(s.items, key)
	} else {
		switch {
		case it.dirty:
			it.dirty = false
			it.next = now
		case !retry:
			it.failures = 0
			it.next = now.Add(jitter(s.opts.Resync, 0.1))
		case after > 0:
			// Pipedrive named the wait (Retry-After): more would only
			// delay the company, less would be refused again.
			it.failures++
			it.next = now.Add(after)
		default:
			it.failures++
			it.next = now.Add(backoff(int(it.failures)))
		}
		s.due.push(it)
	}
	s.mu.Unlock()
	// Waiters hear the result only after the next run is scheduled.
	for _, ch := range told {
		ch <- res
	}
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
