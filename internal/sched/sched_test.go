package sched

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
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

// TestDueOrderAtScale gives 20,000 keys random due times within an hour and
// one worker: each key runs once, in the order of its due time, and only
// once the clock has reached it.
func TestDueOrderAtScale(t *testing.T) {
	t.Parallel()
	const n = 20_000
	clk := clocktest.New()
	start := clk.Now()
	var (
		mu    sync.Mutex
		order []int64
		late  []int64
	)
	due := map[int64]time.Duration{}
	s := New(Options{Clock: clk, Resync: 24 * time.Hour, Workers: 1}, func(_ context.Context, key int64) res {
		mu.Lock()
		defer mu.Unlock()
		if clk.Now().Sub(start) < due[key] {
			late = append(late, key) // ran before its time
		}
		order = append(order, key)
		return res{}
	})
	for k := int64(1); k <= n; k++ {
		due[k] = time.Duration(rand.Int64N(int64(time.Hour)))
		s.Ensure(k, due[k])
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	for step := 0; step < 60; step++ {
		clk.Advance(time.Minute)
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			ran := len(order)
			mu.Unlock()
			want := 0
			for _, d := range due {
				if d <= time.Duration(step+1)*time.Minute {
					want++
				}
			}
			if ran == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d minutes %d runs, want %d", step+1, ran, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(late) > 0 {
		t.Errorf("%d keys ran before their due time", len(late))
	}
	if len(order) != n {
		t.Fatalf("%d runs, want %d", len(order), n)
	}
	for i := 1; i < len(order); i++ {
		if due[order[i]] < due[order[i-1]] {
			t.Fatalf("key %d (due %v) ran after key %d (due %v)", order[i], due[order[i]], order[i-1], due[order[i-1]])
		}
	}
}

// TestWorkersBound runs 50 keys that all wait at a gate: never more than
// Workers at once, and all of them in the end.
func TestWorkersBound(t *testing.T) {
	t.Parallel()
	var cur, peak, done atomic.Int32
	gate := make(chan struct{})
	s := New(Options{Clock: clocktest.New(), Resync: time.Hour, Workers: 3}, func(context.Context, int64) res {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-gate
		cur.Add(-1)
		done.Add(1)
		return res{}
	})
	for k := int64(1); k <= 50; k++ {
		s.Kick(k)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	settle()
	if got := cur.Load(); got != 3 {
		t.Errorf("%d runs in progress, want 3", got)
	}
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for done.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if done.Load() != 50 || peak.Load() != 3 {
		t.Errorf("done %d, peak %d; want 50 and 3", done.Load(), peak.Load())
	}
}

// TestRetryAfterReleasesTheWorker: with one worker, a key that must wait a
// minute does not hold it; the others run meanwhile, and it runs again
// after exactly the wait.
func TestRetryAfterReleasesTheWorker(t *testing.T) {
	t.Parallel()
	r := &runs{n: map[int64]int{}}
	clk := clocktest.New()
	s := New(Options{Clock: clk, Resync: time.Hour, Workers: 1}, func(ctx context.Context, key int64) res {
		r.job(ctx, key)
		if key == 1 {
			return res{retry: time.Minute}
		}
		return res{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	<-s.Trigger(1)
	for k := int64(2); k <= 10; k++ {
		<-s.Trigger(k)
	}
	clk.Advance(59 * time.Second)
	settle()
	if r.count(1) != 1 {
		t.Fatalf("key 1 ran %d times before its minute passed", r.count(1))
	}
	clk.Advance(time.Second)
	waitRuns(t, r, 1, 2)
}

// BenchmarkIdleKeys reports the memory that 100,000 keys waiting for their
// resync hold, per key (go test -bench IdleKeys ./internal/sched).
func BenchmarkIdleKeys(b *testing.B) {
	const n = 100_000
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := New(Options{Clock: clocktest.New(), Resync: time.Hour}, func(context.Context, int64) res { return res{} })
		for k := int64(1); k <= n; k++ {
			s.Ensure(k, time.Duration(k)*time.Millisecond)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/key")
		runtime.KeepAlive(s)
	}
}

// TestKickGoesFirst: a kicked key runs before the keys that were due
// already.
func TestKickGoesFirst(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		order []int64
	)
	gate := make(chan struct{})
	s := New(Options{Clock: clocktest.New(), Resync: time.Hour, Workers: 1}, func(_ context.Context, key int64) res {
		if key == 1 {
			<-gate
		}
		mu.Lock()
		order = append(order, key)
		mu.Unlock()
		return res{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	s.Ensure(1, 0)
	wg.Go(func() { s.Run(ctx) })
	settle() // key 1 runs and waits at the gate
	for k := int64(2); k <= 5; k++ {
		s.Ensure(k, 0)
	}
	s.Kick(99)
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		if n == 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int64{1, 99, 2, 3, 4, 5}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}
