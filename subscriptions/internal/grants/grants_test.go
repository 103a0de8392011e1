package grants

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
)

func open(t *testing.T, current byte, previous ...byte) (*Grants, jetstream.KeyValue, jetstream.JetStream) {
	t.Helper()
	ns := natstest.Run(t)
	_, js := ns.Connect(t)
	g := openOn(t, js, current, previous...)
	kv, _ := js.KeyValue(context.Background(), "TEST_INSTALLS")
	return g, kv, js
}

func openOn(t *testing.T, js jetstream.JetStream, current byte, previous ...byte) *Grants {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, 32))
	}
	ring, err := keys.New(bytes.Repeat([]byte{current}, 32), prev...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Open(context.Background(), js, "TEST_INSTALLS", 1, ring)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestTicketOnce: of many concurrent redemptions of one ticket exactly one
// wins; the bucket holds neither the ticket nor a readable grant; entries
// expire on the server.
func TestTicketOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g, kv, _ := open(t, 1)
	if !g.keyTTL {
		t.Error("per-entry expiry not enabled on a server that has it")
	}
	now := time.Now()
	ticket, err := g.NewTicket(ctx, Ticket{CompanyID: 42, ExpiresAt: now.Add(TicketLifetime)})
	if err != nil {
		t.Fatal(err)
	}
	names, _ := kv.Keys(ctx)
	for _, n := range names {
		e, _ := kv.Get(ctx, n)
		if bytes.Contains([]byte(n), []byte(ticket)) || bytes.Contains(e.Value(), []byte(ticket)) || bytes.Contains(e.Value(), []byte("company_id")) {
			t.Errorf("bucket shows the ticket or its grant: %s = %q", n, e.Value())
		}
	}
	if got, err := g.PeekTicket(ctx, ticket, now); err != nil || got.CompanyID != 42 {
		t.Fatalf("peek: %+v %v", got, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			if _, err := g.UseTicket(ctx, ticket, now); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("use: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d redemptions won, want 1", wins)
	}
	if _, err := g.PeekTicket(ctx, ticket, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("peek after use: %v", err)
	}
	expired, _ := g.NewTicket(ctx, Ticket{ExpiresAt: now.Add(time.Second)})
	if _, err := g.UseTicket(ctx, expired, now.Add(2*time.Second)); !errors.Is(err, ErrInvalid) {
		t.Errorf("expired ticket: %v", err)
	}
}

// TestStateBrowserAndRotation: a state is redeemed only with its browser's
// secret, and one made under K1 is still redeemed after STATE_KEY moved to
// K2 with K1 as a previous key.
func TestStateBrowserAndRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g1, _, js := open(t, 1)
	now := time.Now()
	state, browser, err := g1.NewState(ctx, State{CompanyID: 7, ExpiresAt: now.Add(StateLifetime)})
	if err != nil {
		t.Fatal(err)
	}
	g2 := openOn(t, js, 2, 1)
	if _, err := g2.UseState(ctx, state, "another browser", now); !errors.Is(err, ErrInvalid) {
		t.Errorf("another browser: %v", err)
	}
	if got, err := g2.UseState(ctx, state, browser, now); err != nil || got.CompanyID != 7 {
		t.Fatalf("its browser, after rotation: %+v %v", got, err)
	}
	if _, err := g2.UseState(ctx, state, browser, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("reused: %v", err)
	}
}
