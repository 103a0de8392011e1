// Package subscriptions is the Pipedrive side of the gateway: the company
// store (NATS KV, secrets sealed with STATE_KEY), the reconciler that keeps
// exactly one webhook registered at every connected company, the leader
// lease that makes one replica reconcile, and the admin and OAuth routes.
package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// Options configure the manager.
type Options struct {
	PublicURL      string
	WebhookName    string
	ResyncInterval time.Duration
	APITokens      []string // connected at every start
	AdminToken     string
	OAuthEnabled   bool
	// StreamName scopes the buckets and the command subject, so that
	// several gateways can share one NATS.
	StreamName string
	Replicas   int
	StateKey   []byte
	// LeaseTTL bounds how long a dead leader blocks the others (default 15s).
	LeaseTTL time.Duration
	// ReplicaID names this replica in the lease (default hostname + random).
	ReplicaID string
	Clock     Clock
	Metrics   Metrics
	Tracer    trace.TracerProvider
}

// Manager runs the subscription side.
type Manager struct {
	opts  Options
	nc    *nats.Conn
	api   *pipedrive.Client
	store *Store
	cache *Cache
	lease *Lease
	sched *scheduler
	rec   *reconciler
	log   *slog.Logger
}

// New opens the store and the lease bucket.
func New(ctx context.Context, opts Options, nc *nats.Conn, js jetstream.JetStream, api *pipedrive.Client, log *slog.Logger) (*Manager, error) {
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	if opts.Tracer == nil {
		opts.Tracer = tracenoop.NewTracerProvider()
	}
	if opts.ReplicaID == "" {
		host, _ := os.Hostname()
		opts.ReplicaID = host + "-" + randomHex(4)
	}
	store, err := OpenStore(ctx, js, opts.StreamName+"_COMPANIES", opts.Replicas, opts.StateKey)
	if err != nil {
		return nil, err
	}
	lease, err := OpenLease(ctx, js, opts.StreamName+"_LEADER", opts.Replicas, opts.ReplicaID, opts.LeaseTTL, log)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, nc: nc, api: api, store: store, lease: lease, log: log}
	m.cache = NewCache(store, log)
	m.rec = &reconciler{
		store: store, api: api, publicURL: opts.PublicURL, name: opts.WebhookName,
		now: opts.Clock.Now, log: log, metrics: opts.Metrics,
		tracer: opts.Tracer.Tracer("github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"),
	}
	m.sched = newScheduler(opts.Clock, opts.ResyncInterval, m.rec.reconcile)
	lease.onChange = opts.Metrics.Leader
	return m, nil
}

// Credentials is the in-memory credential cache for the gateway.
func (m *Manager) Credentials() *Cache { return m.cache }

// Ready reports nil once the credential cache holds every company.
func (m *Manager) Ready(context.Context) error {
	if !m.cache.Synced() {
		return errors.New("company credentials not loaded yet")
	}
	return nil
}

// Run keeps the credential cache current and campaigns for the lead until
// ctx ends. Every replica serves webhooks; only the leader reconciles.
func (m *Manager) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.cache.Run(gctx) })
	g.Go(func() error { return m.lease.Run(gctx, m.lead) })
	return g.Wait()
}

// storeSync is how often the leader looks for companies it has not
// scheduled (connected through another replica while a command was lost).
const storeSync = 30 * time.Second

// lead is the leader's work: connect the configured tokens, schedule every
// company, answer commands, and run the scheduler.
func (m *Manager) lead(ctx context.Context) {
	sub, err := m.nc.Subscribe(m.commandSubject(), m.handleCommand)
	if err != nil {
		m.log.Error("cannot listen for commands", "error", err)
	} else {
		defer sub.Unsubscribe()
	}
	// Wait for the scheduler's runs before giving up the lead: a run still
	// writing at Pipedrive must not overlap with the next leader's.
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); m.sched.Run(ctx) }()
	defer func() { <-schedDone }()
	m.connectConfigured(ctx)
	for {
		m.syncSchedule(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.opts.Clock.At(m.opts.Clock.Now().Add(storeSync)):
		}
	}
}

// syncSchedule adds every stored company to the scheduler; new ones run
// now, spread over a few seconds so that a restart does not burst.
func (m *Manager) syncSchedule(ctx context.Context) {
	companies, err := m.store.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot list companies", "error", err)
		}
		return
	}
	for i, c := range companies {
		m.sched.Ensure(c.ID, time.Duration(i)*100*time.Millisecond)
	}
	m.opts.Metrics.Companies(companies)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (m *Manager) commandSubject() string { return "_PDGW." + m.opts.StreamName + ".command" }

var errNoLeader = errors.New("no leader is reconciling right now; retry in a few seconds")

func wrapNoLeader(err error) error {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", errNoLeader, err)
	}
	return err
}
