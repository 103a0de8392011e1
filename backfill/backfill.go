// Package backfill makes the event stream complete: it finds the windows in
// which Pipedrive dropped a company's events (gaps), and recovers them from
// the Pipedrive API as marked events on the usual subjects (SPEC §8).
//
// Every replica collects evidence: the gateway's delivery observer
// (Delivered), the reconciler's findings (Webhook), and the gateway-wide
// healthy_through watermark it advances while it serves (Run). The leader
// recovers the gaps (Lead), one run per company at a time, checkpointed in
// NATS KV so that the next leader resumes.
package backfill

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// ErrNotConnected is returned by Companies.Target for a company that is not
// connected (any more).
var ErrNotConnected = errors.New("company not connected")

// Publisher stores events; *relay.Relay is one.
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) (event.Ack, error)
}

// Companies is what the backfill needs from the company store.
type Companies interface {
	// CompanyIDs lists the connected companies.
	CompanyIDs(ctx context.Context) ([]int64, error)
	// Target returns a company's domain and API credentials (a fresh OAuth
	// token), or an error wrapping ErrNotConnected.
	Target(ctx context.Context, id int64) (Target, error)
	// ConnectedAt tells when the company was connected (its record
	// created), or an error wrapping ErrNotConnected.
	ConnectedAt(ctx context.Context, id int64) (time.Time, error)
}

// Clock tells the time and waits; tests use a fake one that never sleeps.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Options configure the backfill. Zero values take the defaults of SPEC §8.
type Options struct {
	// Bucket is the KV bucket of gaps and watermarks (<STREAM_NAME>_GAPS).
	Bucket   string
	Replicas int
	// MaxTokens is BACKFILL_MAX_TOKENS: the most API tokens one run spends.
	MaxTokens int
	// Margin widens every gap on both sides (60 s): clock skew and
	// whole-second timestamps.
	Margin time.Duration
	// BanWindow is how long Pipedrive's ban lasts (30 min): a failed first
	// attempt keeps its gap open that long.
	BanWindow time.Duration
	// SecondPass is when, after an outage, the window after it is read
	// again (35 min), in case a ban outlived the outage.
	SecondPass time.Duration
	// Horizon is how far back the API can recover anything (29 days: one
	// day short of the 30-day purge of deleted objects, the 30 days of
	// status=deleted deals and the month of /v1/recents).
	Horizon time.Duration
	// WatermarkInterval is how often healthy_through is written (15 s);
	// StaleAfter how old it may be before a restart counts as an outage
	// (75 s).
	WatermarkInterval time.Duration
	StaleAfter        time.Duration
	// BudgetFloor is the share of the company's daily token budget a run
	// leaves to everyone else (0.2).
	BudgetFloor float64
	// Concurrency bounds the companies recovered at once (32).
	Concurrency int
	// Poll is how often the leader looks for gaps that became due (5 s).
	Poll time.Duration
	// Keep is how long ended gaps are kept (30 days).
	Keep    time.Duration
	Clock   Clock
	Metrics Metrics
}

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.Margin, time.Minute)
	set(&o.BanWindow, 30*time.Minute)
	set(&o.SecondPass, 35*time.Minute)
	set(&o.Horizon, 29*24*time.Hour)
	set(&o.WatermarkInterval, 15*time.Second)
	set(&o.StaleAfter, 5*o.WatermarkInterval)
	set(&o.Poll, 5*time.Second)
	set(&o.Keep, 30*24*time.Hour)
	if o.MaxTokens <= 0 {
		o.MaxTokens = 5000
	}
	if o.BudgetFloor <= 0 {
		o.BudgetFloor = 0.2
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Bucket == "" {
		o.Bucket = "PIPEDRIVE_GAPS"
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
}

// Backfill finds and recovers gaps.
type Backfill struct {
	opts      Options
	store     *Store
	pub       Publisher
	companies Companies
	plan      Plan
	healthy   func(context.Context) error
	clock     Clock
	metrics   Metrics
	log       *slog.Logger

	det   detector
	first firstSeen
	lead  leader
}

// New opens the gap bucket. healthy reports nil while this replica serves
// webhooks and JetStream acks (the relay's readiness); only then does the
// watermark advance.
func New(ctx context.Context, opts Options, js jetstream.JetStream, pub Publisher, companies Companies, plan Plan, healthy func(context.Context) error, log *slog.Logger) (*Backfill, error) {
	opts.defaults()
	store, err := OpenStore(ctx, js, opts.Bucket, opts.Replicas)
	if err != nil {
		return nil, err
	}
	if plan.Probe == nil {
		return nil, errors.New("backfill plan has no probe")
	}
	b := &Backfill{
		opts: opts, store: store, pub: pub, companies: companies, plan: plan, healthy: healthy,
		clock: opts.Clock, metrics: opts.Metrics, log: log,
	}
	b.det.b = b
	b.lead.init()
	return b, nil
}

// Run advances the watermark and writes the delivery evidence every
// WatermarkInterval until ctx ends. Every replica runs it.
func (b *Backfill) Run(ctx context.Context) error {
	t := time.NewTicker(b.opts.WatermarkInterval)
	defer t.Stop()
	for {
		b.flush(ctx)
		select {
		case <-ctx.Done():
			// What is still buffered is lost with the process; the stale
			// watermark covers it at the next start.
			return nil
		case <-t.C:
		}
	}
}

// record admits evidence and announces the gaps it opened.
func (b *Backfill) record(ctx context.Context, ev Evidence) error {
	created, err := b.store.admit(ctx, ev, b.clock.Now())
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("cannot record a gap", "company_id", ev.CompanyID, "reason", ev.Reason, "error", err)
		}
		return err
	}
	for _, r := range created {
		b.log.Info("gap opened", "company_id", r.CompanyID, "gap_id", r.ID, "from", r.From, "until", r.Until, "reason", r.Reason)
		b.metrics.GapOpened(r.CompanyID, ev.Reason)
		b.announce(ctx, r)
	}
	b.lead.poke()
	return nil
}

// announce publishes a gap's state on <prefix>.gap.company. A lost status
// event is logged, not retried: the GAP stays readable in the admin API.
func (b *Backfill) announce(ctx context.Context, r *record) {
	ev, err := statusEvent(r, b.clock.Now())
	if err == nil {
		_, err = b.pub.Publish(ctx, ev)
	}
	if err != nil && ctx.Err() == nil {
		b.log.Warn("cannot publish gap status", "company_id", r.CompanyID, "gap_id", r.ID, "state", r.State, "error", err)
	}
}
