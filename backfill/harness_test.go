package backfill

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

// fakeClock never sleeps: Sleep moves the time on and records the wait.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}

// staticCompanies is a fixed set of connected companies.
type staticCompanies struct {
	mu      sync.Mutex
	targets map[int64]Target
	// connectedAt is when a company was connected; unset: long before.
	connectedAt map[int64]time.Time
	lists       int // CompanyIDs calls
}

func (s *staticCompanies) CompanyIDs(context.Context) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	var ids []int64
	for id := range s.targets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *staticCompanies) ConnectedAt(_ context.Context, id int64) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.targets[id]; !ok {
		return time.Time{}, ErrNotConnected
	}
	return s.connectedAt[id], nil
}

func (s *staticCompanies) Target(_ context.Context, id int64) (Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[id]
	if !ok {
		return Target{}, ErrNotConnected
	}
	return t, nil
}

type harness struct {
	t         *testing.T
	ctx       context.Context
	ns        *natstest.Server
	relay     *relay.Relay
	js        jetstream.JetStream
	clock     *fakeClock
	companies *staticCompanies
	plan      Plan
	opts      Options
	b         *Backfill
	unhealthy bool
}

const testCompany = 9912345

func newHarness(t *testing.T, plan Plan, tune ...func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, ctx: t.Context(), ns: natstest.Run(t), clock: newFakeClock(), plan: plan,
		companies: &staticCompanies{targets: map[int64]Target{testCompany: {CompanyID: testCompany, Domain: "acme"}}}}
	cfg, err := config.Load(h.ctx, envconfig.MapLookuper(map[string]string{
		"NATS_URL": h.ns.ClientURL(), "STATE_KEY": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
	}))
	if err != nil {
		t.Fatal(err)
	}
	h.relay, err = relay.New(h.ctx, cfg, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.relay.Close(context.Background()) })
	h.js = h.relay.JetStream()
	h.opts = Options{Bucket: "TEST_GAPS", Clock: h.clock, Poll: 20 * time.Millisecond}
	for _, f := range tune {
		f(&h.opts)
	}
	h.start()
	return h
}

// start makes a Backfill over the same bucket (a new process, or replica).
func (h *harness) start() *Backfill {
	h.t.Helper()
	b, err := New(h.ctx, h.opts, h.js, h.relay, h.companies, h.plan, func(context.Context) error {
		if h.unhealthy {
			return errUnhealthy
		}
		return nil
	}, testlog.New(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	h.b = b
	return b
}

var errUnhealthy = errorString("unhealthy")

type errorString string

func (e errorString) Error() string { return string(e) }

func (h *harness) gaps() []Gap {
	h.t.Helper()
	gs, err := h.b.Gaps(h.ctx, testCompany)
	if err != nil {
		h.t.Fatal(err)
	}
	return gs
}

// lead runs the leader's work until the test ends.
func (h *harness) lead(b *Backfill) context.CancelFunc {
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Lead(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

// waitGap waits until the company has a gap matching f.
func (h *harness) waitGap(what string, f func(Gap) bool) Gap {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for _, g := range h.gaps() {
			if f(g) {
				return g
			}
		}
		h.b.Poke()
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("no gap %s; gaps: %s", what, mustJSON(h.gaps()))
	return Gap{}
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// stored is one message in the stream.
type stored struct {
	Subject string
	Header  map[string][]string
	Body    map[string]any
}

// messages returns what the stream holds on subjects matching filter.
func (h *harness) messages(filter string) []stored {
	h.t.Helper()
	cons, err := h.js.OrderedConsumer(h.ctx, "PIPEDRIVE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []stored
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			h.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var body map[string]any
			_ = json.Unmarshal(m.Data(), &body)
			out = append(out, stored{Subject: m.Subject(), Header: m.Headers(), Body: body})
		}
		if n == 0 {
			return out
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func contextWithTimeout(h *harness, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, d)
}

// waitConnected waits until the relay can publish again.
func waitConnected(t *testing.T, h *harness) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for h.relay.Ready(h.ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("relay not ready after the NATS restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
