package lease

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
)

// TestOneLeaderAndHandOver: of two replicas one leads; when it stops, it
// releases the key and the other leads well before the key could expire.
func TestOneLeaderAndHandOver(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	var leading atomic.Int32
	var maxSeen atomic.Int32
	open := func(id string) *Lease {
		_, js := ns.Connect(t)
		l, err := Open(context.Background(), js, Options{
			Bucket: "TEST_LEADER", Replicas: 1, ID: id, TTL: 10 * time.Second, Clock: clock.Real(), Log: testlog.New(t),
			OnChange: func(on bool) {
				if on {
					n := leading.Add(1)
					for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
					}
				} else {
					leading.Add(-1)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	run := func(l *Lease, who chan<- string, id string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = l.Run(ctx, func(ctx context.Context) {
				who <- id
				<-ctx.Done()
			})
		})
		return func() { cancel(); wg.Wait() }
	}
	who := make(chan string, 2)
	stopA := run(open("a"), who, "a")
	if got := <-who; got != "a" {
		t.Fatalf("first leader %q, want a", got)
	}
	stopB := run(open("b"), who, "b")
	defer stopB()
	select {
	case got := <-who:
		t.Fatalf("%q leads while a holds the lease", got)
	case <-time.After(2 * time.Second):
	}
	stopA()
	start := time.Now()
	select {
	case got := <-who:
		if got != "b" {
			t.Fatalf("next leader %q, want b", got)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("b did not take over")
	}
	// A released key is taken at b's next campaign (every TTL/3); an
	// expired one would take the better part of the TTL.
	t.Logf("hand-over after %v", time.Since(start))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hand-over took %v: the lease was not released", took)
	}
	if maxSeen.Load() != 1 {
		t.Errorf("saw %d leaders at once", maxSeen.Load())
	}
}
