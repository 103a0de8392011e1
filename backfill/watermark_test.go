package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
)

// countingKV counts a store's KV operations and can refuse gap writes.
type countingKV struct {
	jetstream.KeyValue

	mu            sync.Mutex
	reads, writes int
	failGaps      bool
}

var errRefused = errors.New("gap write refused by the test")

func (c *countingKV) count(write bool, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !write {
		c.reads++
		return nil
	}
	c.writes++
	if c.failGaps && strings.HasPrefix(key, "gap.") {
		return errRefused
	}
	return nil
}

// ops returns the reads and writes so far and starts counting again.
func (c *countingKV) ops() (reads, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reads, writes, c.reads, c.writes = c.reads, c.writes, 0, 0
	return reads, writes
}

func (c *countingKV) refuseGaps(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failGaps = v
}

func (c *countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	_ = c.count(false, key)
	return c.KeyValue.Get(ctx, key)
}

func (c *countingKV) Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	_ = c.count(false, keys)
	return c.KeyValue.Watch(ctx, keys, opts...)
}

func (c *countingKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := c.count(true, key); err != nil {
		return 0, err
	}
	return c.KeyValue.Put(ctx, key, value)
}

func (c *countingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if err := c.count(true, key); err != nil {
		return 0, err
	}
	return c.KeyValue.Create(ctx, key, value, opts...)
}

func (c *countingKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	if err := c.count(true, key); err != nil {
		return 0, err
	}
	return c.KeyValue.Update(ctx, key, value, revision)
}

func (c *countingKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if err := c.count(true, key); err != nil {
		return err
	}
	return c.KeyValue.Delete(ctx, key, opts...)
}

// counted makes b's store count its KV operations.
func counted(b *Backfill) *countingKV {
	c := &countingKV{KeyValue: b.store.kv}
	b.store.kv = c
	return c
}

// connect makes n companies connected (testCompany among them) and
// returns their ids, ordered.
func (h *harness) connect(n int) []int64 {
	h.companies.mu.Lock()
	for i := range n - 1 {
		id := int64(1000 + i)
		h.companies.targets[id] = Target{CompanyID: id, Domain: "c" + itoa(id)}
	}
	h.companies.mu.Unlock()
	ids, _ := h.companies.CompanyIDs(h.ctx)
	return ids
}

// lists returns how often the connected companies were listed so far, and
// starts counting again.
func (h *harness) lists() int {
	h.companies.mu.Lock()
	defer h.companies.mu.Unlock()
	n := h.companies.lists
	h.companies.lists = 0
	return n
}

// lastSeq is the bucket stream's last sequence: it moves once per write.
func (h *harness) lastSeq() uint64 {
	h.t.Helper()
	kv, err := h.js.KeyValue(h.ctx, h.opts.Bucket)
	if err != nil {
		h.t.Fatal(err)
	}
	st, err := kv.Status(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}

// health reads the gateway-wide watermark as stored.
func (h *harness) health() *health {
	h.t.Helper()
	kv, err := h.js.KeyValue(h.ctx, h.opts.Bucket)
	if err != nil {
		h.t.Fatal(err)
	}
	e, err := kv.Get(h.ctx, healthKey)
	if err != nil {
		h.t.Fatalf("gateway watermark: %v", err)
	}
	var w health
	if err := json.Unmarshal(e.Value(), &w); err != nil {
		h.t.Fatal(err)
	}
	w.revision = e.Revision()
	return &w
}

// companyGaps returns the gaps of every company in ids.
func (h *harness) companyGaps(ids []int64) map[int64][]Gap {
	h.t.Helper()
	out := map[int64][]Gap{}
	for _, id := range ids {
		gs, err := h.b.store.Gaps(h.ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		out[id] = gs
	}
	return out
}

// deliverAll reports a successful first attempt of every company at the
// fake clock's time.
func (h *harness) deliverAll(b *Backfill, ids []int64) {
	for _, id := range ids {
		b.Delivered(itoa(id), 1, 200, h.clock.Now())
	}
}

func TestFlushCostsConstantKVOperations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	ids := h.connect(500)
	kv := counted(h.b)
	h.b.flush(h.ctx) // a fresh install: the gateway-wide key is created
	if gs := h.companyGaps(ids); len(gs[testCompany]) != 0 {
		t.Fatalf("gaps after the first flush: %s", mustJSON(gs[testCompany]))
	}
	kv.ops()
	h.lists()
	for i := range 8 {
		h.clock.Advance(10 * time.Second)
		h.deliverAll(h.b, ids) // every company delivers between flushes
		seq := h.lastSeq()
		h.b.flush(h.ctx)
		reads, writes := kv.ops()
		if moved := h.lastSeq() - seq; reads > 1 || writes > 1 || moved > 1 {
			t.Fatalf("flush %d over %d companies: %d reads, %d writes, bucket moved %d; want at most 1 each", i, len(ids), reads, writes, moved)
		}
	}
	if n := h.lists(); n != 0 {
		t.Errorf("the companies were listed %d times with nothing to record", n)
	}

	// An outage: one gap per company, and one first delivery each after it.
	last := h.health().HealthyThrough
	h.clock.Advance(10 * time.Minute)
	recovery := h.clock.Now()
	h.deliverAll(h.b, ids)
	h.b.flush(h.ctx)
	_, writes := kv.ops()
	for id, gs := range h.companyGaps(ids) {
		if len(gs) != 1 || gs[0].Reason != ReasonOutage || !gs[0].From.Equal(last.Add(-time.Minute)) {
			t.Fatalf("company %d: gaps %s, want one outage from %s", id, mustJSON(gs), last.Add(-time.Minute))
		}
	}
	if want := 2*len(ids) + 1; writes != want {
		t.Errorf("the flush after the outage made %d writes, want %d (a gap and a first delivery per company, the watermark)", writes, want)
	}
	// The first deliveries are written once: the next flushes cost as
	// little as before, on this replica and, the earliest kept, on another.
	kv.ops()
	for i := range 3 {
		h.clock.Advance(10 * time.Second)
		h.deliverAll(h.b, ids)
		h.b.flush(h.ctx)
		if reads, writes := kv.ops(); reads > 1 || writes > 1 {
			t.Fatalf("flush %d after the outage: %d reads, %d writes", i, reads, writes)
		}
	}
	if n := h.lists(); n != 1 {
		t.Errorf("the companies were listed %d times after the outage, want once (its flush)", n)
	}
	other := h.start()
	okv := counted(other)
	h.clock.Advance(10 * time.Second)
	h.deliverAll(other, ids)
	other.flush(h.ctx)
	if _, writes := okv.ops(); writes > 1 {
		t.Errorf("another replica's first flush wrote %d times, want the watermark at most", writes)
	}
	for _, id := range []int64{ids[0], testCompany, ids[len(ids)-1]} {
		w, err := h.b.store.watermark(h.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !w.Recovered.Equal(recovery) || !w.FirstDelivery.Equal(recovery) {
			t.Errorf("company %d: watermark %+v, want the first delivery at %s after the outage", id, w, recovery)
		}
	}
}

func TestStaleWatermarkOutageForEveryCompany(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	ids := h.connect(3)
	kv := counted(h.b)
	h.b.flush(h.ctx)
	last := h.clock.Now()
	h.clock.Advance(10 * time.Minute)

	// The gaps cannot be stored: the watermark stays as it was.
	before := h.health()
	kv.refuseGaps(true)
	h.b.flush(h.ctx)
	if after := h.health(); after.revision != before.revision || !after.HealthyThrough.Equal(last) {
		t.Fatalf("watermark moved to %+v (revision %d → %d) though no gap was stored", after, before.revision, after.revision)
	}
	// The next flush finds it stale still, and stores them.
	kv.refuseGaps(false)
	h.clock.Advance(15 * time.Second)
	now := h.clock.Now()
	h.b.flush(h.ctx)
	for id, gs := range h.companyGaps(ids) {
		if len(gs) != 1 || gs[0].Reason != ReasonOutage || !gs[0].From.Equal(last.Add(-time.Minute)) || !gs[0].Until.Equal(now.Add(time.Minute)) {
			t.Errorf("company %d: gaps %s, want one outage from %s to %s", id, mustJSON(gs), last.Add(-time.Minute), now.Add(time.Minute))
		}
	}
	if w := h.health(); !w.HealthyThrough.Equal(now) || !w.Recovered.Equal(now) || !w.DownSince.Equal(last) {
		t.Errorf("watermark %+v, want healthy through and recovered %s, down since %s", w, now, last)
	}
	// Fresh again: nothing more.
	h.clock.Advance(15 * time.Second)
	h.b.flush(h.ctx)
	for id, gs := range h.companyGaps(ids) {
		if len(gs) != 1 {
			t.Errorf("company %d: %d gaps after the outage was stored", id, len(gs))
		}
	}
}

// putLegacy stores a wm.<company> entry of the per-company format.
func (h *harness) putLegacy(company int64, v map[string]time.Time) {
	h.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := h.b.store.kv.Put(h.ctx, wmKey(company), b); err != nil {
		h.t.Fatal(err)
	}
}

func TestUpgradeFromPerCompanyWatermarks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		newest time.Duration // before now: when a replica last served
		outage bool
	}{
		{"stale", 10 * time.Minute, true},
		{"fresh", 20 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, emptyPlan())
			ids := h.connect(3)
			now := h.clock.Now()
			newest := now.Add(-tc.newest)
			// The last outage the old format found, with its first delivery.
			oldRecovered, oldDown := now.Add(-2*time.Hour), now.Add(-3*time.Hour)
			for i, id := range ids {
				// The replica stopped in the middle of a flush: the
				// companies' watermarks differ by a few seconds.
				h.putLegacy(id, map[string]time.Time{
					"healthy_through": newest.Add(-time.Duration(i) * 5 * time.Second),
					"recovered":       oldRecovered, "down_since": oldDown, "first_delivery": oldRecovered.Add(time.Second),
					"webhook_seen": now.Add(-time.Hour),
				})
			}
			h.start().flush(h.ctx)

			w := h.health()
			if !w.HealthyThrough.Equal(now) {
				t.Errorf("derived watermark %+v, want healthy through %s", w, now)
			}
			for id, gs := range h.companyGaps(ids) {
				switch {
				case !tc.outage && len(gs) != 0:
					t.Errorf("company %d: gaps %s, want none (a replica served %s ago)", id, mustJSON(gs), tc.newest)
				case tc.outage && (len(gs) != 1 || gs[0].Reason != ReasonOutage || !gs[0].From.Equal(newest.Add(-time.Minute))):
					t.Errorf("company %d: gaps %s, want one outage from %s", id, mustJSON(gs), newest.Add(-time.Minute))
				}
			}
			if tc.outage && (!w.Recovered.Equal(now) || !w.DownSince.Equal(newest)) {
				t.Errorf("watermark %+v, want the outage since %s", w, newest)
			}
			if !tc.outage && (!w.Recovered.Equal(oldRecovered) || !w.DownSince.Equal(oldDown)) {
				t.Errorf("watermark %+v, want the old format's last outage %s–%s kept", w, oldDown, oldRecovered)
			}

			// Derived once: the key is read from now on.
			kv := counted(h.b)
			h.clock.Advance(15 * time.Second)
			h.b.flush(h.ctx)
			if reads, writes := kv.ops(); reads != 1 || writes != 1 {
				t.Errorf("flush after the upgrade: %d reads, %d writes; want 1 each", reads, writes)
			}
		})
	}
}

func TestSecondPassEndsAtFirstDeliveryOfALaterFlush(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.lead(f.b)
	f.b.flush(f.ctx)
	f.clock.Advance(10 * time.Minute)
	f.b.flush(f.ctx) // the outage is found; nothing delivered yet
	recovery := f.clock.Now()
	f.clock.Advance(10 * time.Second)
	f.b.flush(f.ctx)
	// Pipedrive delivers again 40 s after the recovery, to another replica
	// as well; the later deliveries change nothing.
	first := recovery.Add(40 * time.Second)
	f.clock.Advance(25 * time.Second)
	this := f.b
	other := f.start()
	other.Delivered(itoa(testCompany), 1, 200, first.Add(5*time.Second))
	this.Delivered(itoa(testCompany), 1, 200, first)
	other.flush(f.ctx)
	this.flush(f.ctx)
	this.Delivered(itoa(testCompany), 1, 200, first.Add(10*time.Second))
	other.Delivered(itoa(testCompany), 1, 200, first.Add(10*time.Second))
	f.b = this
	f.serve(2 * time.Minute)
	second := f.waitGap("second pass ended", func(g Gap) bool { return g.Reason == ReasonSecondPass && g.Ended() })
	if want := first.Add(time.Minute); second.State != StateRecovered || !second.Until.Equal(want) {
		t.Errorf("second pass = %s, want recovered until %s", mustJSON(second), want)
	}
}

// offsetClock is a replica's clock off by d from the others'.
type offsetClock struct {
	*fakeClock
	d time.Duration
}

func (c offsetClock) Now() time.Time { return c.fakeClock.Now().Add(c.d) }

func TestReplicasShareTheWatermark(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	ids := h.connect(20)
	// A second replica, its clock 5 s behind.
	opts := h.opts
	opts.Clock = offsetClock{h.clock, -5 * time.Second}
	late, err := New(h.ctx, opts, h.js, h.relay, h.companies, h.plan, func(context.Context) error { return nil }, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	both := func() {
		var wg sync.WaitGroup
		for _, b := range []*Backfill{h.b, late} {
			wg.Go(func() { b.flush(h.ctx) })
		}
		wg.Wait()
	}
	both()
	var prev time.Time
	for i := range 12 {
		h.clock.Advance(10 * time.Second)
		seq := h.lastSeq()
		both()
		w := h.health()
		if w.HealthyThrough.Before(prev) {
			t.Fatalf("round %d: the watermark moved back from %s to %s", i, prev, w.HealthyThrough)
		}
		if h.clock.Now().Sub(w.HealthyThrough) > h.b.opts.WatermarkInterval {
			t.Fatalf("round %d: watermark %s, now %s", i, w.HealthyThrough, h.clock.Now())
		}
		if moved := h.lastSeq() - seq; moved > 2 {
			t.Fatalf("round %d: %d writes by two replicas", i, moved)
		}
		prev = w.HealthyThrough
	}

	// An outage: both find the watermark stale at once; each company gets
	// one outage gap.
	h.clock.Advance(10 * time.Minute)
	both()
	for id, gs := range h.companyGaps(ids) {
		if len(gs) != 1 || gs[0].Reason != ReasonOutage || !gs[0].From.Equal(prev.Add(-time.Minute)) {
			t.Errorf("company %d: gaps %s, want one outage from %s", id, mustJSON(gs), prev.Add(-time.Minute))
		}
	}
	if w := h.health(); !w.DownSince.Equal(prev) || w.HealthyThrough.Before(prev) {
		t.Errorf("watermark %+v, want down since %s", w, prev)
	}
	h.clock.Advance(10 * time.Second)
	both()
	for id, gs := range h.companyGaps(ids) {
		if len(gs) != 1 {
			t.Errorf("company %d: %d gaps once the outage was stored", id, len(gs))
		}
	}
}

func TestShrinkMatchesTheLastOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	now := h.clock.Now()
	down, recovered := now.Add(-20*time.Minute), now.Add(-10*time.Minute)
	gw := &health{HealthyThrough: now, Recovered: recovered, DownSince: down}
	first := recovered.Add(30 * time.Second)
	for i, tc := range []struct {
		name     string
		recovery time.Time // the second pass's
		tag, fd  time.Time // the company's first delivery and its outage
		want     bool
	}{
		{"the outage", recovered, recovered, first, true},
		{"recorded later by another replica", recovered.Add(5 * time.Second), recovered, first, true},
		{"an earlier outage", recovered.Add(-time.Hour), recovered, first, false},
		{"an outage not written yet", now.Add(time.Minute), recovered, first, false},
		{"first delivery of an earlier outage", recovered, recovered.Add(-time.Hour), first, false},
		{"no first delivery", recovered, time.Time{}, time.Time{}, false},
	} {
		company := int64(2000 + i)
		if !tc.fd.IsZero() {
			err := h.b.store.modifyWatermark(h.ctx, company, func(w *watermark) (bool, error) {
				w.Recovered, w.FirstDelivery = tc.tag, tc.fd
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		r := &record{Gap: Gap{ID: "g-" + itoa(company), CompanyID: company, Reason: ReasonSecondPass, State: StateOpen,
			From: tc.recovery.Add(-time.Minute), Until: tc.recovery.Add(35 * time.Minute)}, Recovery: tc.recovery}
		if err := h.b.store.put(h.ctx, r); err != nil {
			t.Fatal(err)
		}
		until := r.Until
		got := h.b.shrink(h.ctx, r, func() (*health, error) { return gw, nil })
		if got != tc.want {
			t.Errorf("%s: shrunk %t, want %t", tc.name, got, tc.want)
		}
		if want := maxTime(r.From, first.Add(time.Minute)); got && !r.Until.Equal(want) {
			t.Errorf("%s: until %s, want %s", tc.name, r.Until, want)
		}
		if !got && !r.Until.Equal(until) {
			t.Errorf("%s: until moved to %s", tc.name, r.Until)
		}
	}
}

// TestOutageStartsAtConnect: a company connected while no replica served
// (a configured token connected at start, before the first flush) gets an
// outage gap from its connect on, not from the stale watermark: what came
// before was never its stream's.
func TestOutageStartsAtConnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, emptyPlan())
	ids := h.connect(3)
	h.b.flush(h.ctx)
	last := h.clock.Now()
	h.clock.Advance(10 * time.Minute)
	connected := h.clock.Now().Add(-30 * time.Second)
	h.companies.mu.Lock()
	h.companies.connectedAt = map[int64]time.Time{ids[2]: connected, ids[1]: last.Add(-time.Hour)}
	h.companies.mu.Unlock()
	now := h.clock.Now()
	h.b.flush(h.ctx)
	for id, gs := range h.companyGaps(ids) {
		from := last
		if id == ids[2] {
			from = connected
		}
		if len(gs) != 1 || gs[0].Reason != ReasonOutage || !gs[0].From.Equal(from.Add(-time.Minute)) || !gs[0].Until.Equal(now.Add(time.Minute)) {
			t.Errorf("company %d: gaps %s, want one outage from %s to %s", id, mustJSON(gs), from.Add(-time.Minute), now.Add(time.Minute))
		}
	}
}
