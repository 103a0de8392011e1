package sched

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock/clocktest"
)

type res struct {
	gone  bool
	retry time.Duration // > 0: a failure that may pass, retry after
}

func (r res) Gone() bool                   { return r.gone }
func (r res) Retry() (bool, time.Duration) { return r.retry > 0, r.retry }

// runs counts the runs of each key and answers with next.
type runs struct {
	mu   sync.Mutex
	n    map[int64]int
	next res
	gate chan struct{} // when set, every run waits for it
}

func (r *runs) job(_ context.Context, key int64) res {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[key]++
	return r.next
}

func (r *runs) count(key int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

func start(t *testing.T, r *runs) (*Scheduler[res], *clocktest.Fake) {
	clk := clocktest.New()
	s := New(Options{Clock: clk, Resync: time.Hour, Workers: 2}, r.job)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return s, clk
}

// settle gives the dispatcher a moment to act on what the clock did.
func settle() { time.Sleep(50 * time.Millisecond) }

func TestTriggersCoalesce(t *testing.T) {
	t.Parallel()
	r := &runs{n: map[int64]int{}, gate: make(chan struct{})}
	s, _ := start(t, r)
	first := s.Trigger(1)
	settle() // the first run has started and waits at the gate
	more := []<-chan res{s.Trigger(1), s.Trigger(1), s.Trigger(1)}
	close(r.gate)
	for _, ch := range append(more, first) {
		<-ch
	}
	if got := r.count(1); got != 2 {
		t.Errorf("four triggers made %d runs, want 2 (the running one and one more)", got)
	}
}

func TestResyncAndBackoff(t *testing.T) {
	t.Parallel()
	r := &runs{n: map[int64]int{}}
	s, clk := start(t, r)
	s.Ensure(1, time.Second)
	settle()
	if r.count(1) != 0 {
		t.Fatal("ran before its delay")
	}
	clk.Advance(time.Second)
	waitRuns(t, r, 1, 1)
	clk.Advance(50 * time.Minute) // before the resync (1h ± 10 %)
	settle()
	if r.count(1) != 1 {
		t.Fatalf("resynced after 50 minutes: %d runs", r.count(1))
	}
	r.mu.Lock()
	r.next = res{retry: 2 * time.Minute}
	r.mu.Unlock()
	clk.Advance(20 * time.Minute)
	waitRuns(t, r, 1, 2)
	clk.Advance(100 * time.Second) // before Retry-After
	settle()
	if r.count(1) != 2 {
		t.Fatalf("retried before the wait asked for: %d runs", r.count(1))
	}
	clk.Advance(30 * time.Second)
	waitRuns(t, r, 1, 3)
}

func TestGoneIsForgotten(t *testing.T) {
	t.Parallel()
	r := &runs{n: map[int64]int{}, next: res{gone: true}}
	s, clk := start(t, r)
	if got := <-s.Trigger(1); !got.gone {
		t.Fatalf("result %+v", got)
	}
	clk.Advance(2 * time.Hour)
	settle()
	if r.count(1) != 1 {
		t.Errorf("a gone key ran again: %d runs", r.count(1))
	}
}

func TestEnqueueRunsTheGivenJobOnce(t *testing.T) {
	t.Parallel()
	r := &runs{n: map[int64]int{}}
	s, _ := start(t, r)
	var other atomic.Int32
	<-s.Enqueue(1, func(context.Context, int64) res { other.Add(1); return res{} })
	<-s.Trigger(1)
	if other.Load() != 1 || r.count(1) != 1 {
		t.Errorf("given job ran %d times, default job %d times; want 1 and 1", other.Load(), r.count(1))
	}
}

func waitRuns(t *testing.T, r *runs, key int64, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.count(key) < want {
		if time.Now().After(deadline) {
			t.Fatalf("key %d: %d runs, want %d", key, r.count(key), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
