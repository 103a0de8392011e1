// Package subscriptions keeps exactly one webhook registered at every
// connected Pipedrive company: it connects companies (API token or OAuth),
// reconciles their webhooks on the leader replica, disconnects them, and
// gives the ingress each company's webhook credentials from memory.
//
// It must not know HTTP: the admin API and the OAuth routes are built on
// its methods elsewhere, and the subscription URL of a company is given to
// it. Its records live in internal/store, the election in internal/lease,
// the work queue in internal/sched.
package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/lease"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/sched"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/grants"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// Options configure the manager.
type Options struct {
	// WebhookURL is the subscription URL of a company; nil when PUBLIC_URL
	// is not set, and then no webhook can be registered.
	WebhookURL func(companyID int64) string
	// OAuthRedirectURL is the redirect_uri of the OAuth install flow.
	OAuthRedirectURL string
	WebhookName      string
	ResyncInterval   time.Duration
	// Concurrency bounds the companies reconciled at once (default 4).
	Concurrency int
	APITokens   []string // connected at every start
	// StreamName scopes the buckets and the command subject, so that
	// several gateways can share one NATS.
	StreamName string
	Replicas   int
	StateKey   []byte
	// PreviousStateKeys are earlier keys (STATE_KEY_PREVIOUS): records
	// sealed with one are read and sealed again with StateKey, and commands
	// signed with one are accepted, so a rotation loses nothing.
	PreviousStateKeys [][]byte
	// OpenInstall lets anyone start an OAuth install (OAUTH_INSTALL=open);
	// otherwise an install needs a ticket from NewInstallTicket.
	OpenInstall bool
	// LeaseTTL bounds how long a dead leader blocks the others (default 15s).
	LeaseTTL time.Duration
	// ReplicaID names this replica in the lease (default hostname + random).
	ReplicaID string
	// Clock paces the scheduler (default the wall clock).
	Clock clock.Clock
	// OnWebhook, when set, is told after every reconcile that listed a
	// company's webhooks what it found (the gap detector).
	OnWebhook func(ctx context.Context, companyID int64, f WebhookFinding)
	Metrics   Metrics
	Tracer    trace.TracerProvider
}

// Manager runs the subscription side.
type Manager struct {
	opts  Options
	nc    *nats.Conn
	api   *pipedrive.Client
	keys  *keys.Ring
	store *store.Store
	// grants keeps install tickets and OAuth states.
	grants *grants.Grants
	// seen remembers the nonces of the commands the leader accepted.
	seen  *nonces
	cache *credentialCache
	lease *lease.Lease
	sched *sched.Scheduler[result]
	rec   *reconciler
	log   *slog.Logger
}

// New opens the store and the lease bucket.
func New(ctx context.Context, opts Options, nc *nats.Conn, js jetstream.JetStream, api *pipedrive.Client, log *slog.Logger) (*Manager, error) {
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 4
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
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
	ring, err := keys.New(opts.StateKey, opts.PreviousStateKeys...)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, js, opts.StreamName+"_COMPANIES", opts.Replicas, ring)
	if err != nil {
		return nil, err
	}
	gr, err := grants.Open(ctx, js, opts.StreamName+"_INSTALLS", opts.Replicas, ring)
	if err != nil {
		return nil, err
	}
	l, err := lease.Open(ctx, js, lease.Options{
		Bucket: opts.StreamName + "_LEADER", Replicas: opts.Replicas, ID: opts.ReplicaID, TTL: opts.LeaseTTL,
		// The key expires on the NATS server's wall clock, so renewals run
		// on it too, whatever clock paces the scheduler.
		Clock: clock.Real(), Log: log, OnChange: opts.Metrics.Leader,
	})
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, nc: nc, api: api, keys: ring, store: st, grants: gr, seen: newNonces(), lease: l, log: log, cache: newCredentialCache(st, log)}
	m.rec = &reconciler{
		store: st, api: api, webhookURL: opts.WebhookURL, name: opts.WebhookName,
		now: opts.Clock.Now, log: log, metrics: opts.Metrics, onWebhook: opts.OnWebhook,
		tracer: opts.Tracer.Tracer("github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"),
	}
	m.sched = sched.New(sched.Options{Clock: opts.Clock, Resync: opts.ResyncInterval, Workers: opts.Concurrency}, m.rec.reconcile)
	return m, nil
}

// WebhookCredentials returns the Basic credentials of a managed company,
// from memory: the ingress asks on every request. A managed company whose
// credentials cannot be read (its record is unreadable, or the records are
// not loaded yet) has ok set and an empty user: its deliveries get 503,
// never 401 and never the static credentials.
func (m *Manager) WebhookCredentials(companyID string) (user, password string, ok bool) {
	return m.cache.lookup(companyID)
}

// Ready reports nil once the credentials of every company are loaded and
// every company record is readable; otherwise the reason, naming the
// unreadable records.
func (m *Manager) Ready(context.Context) error {
	if !m.cache.synced.Load() {
		return errors.New("company credentials not loaded yet")
	}
	return m.cache.unreadable()
}

// Run keeps the credentials current and campaigns for the lead until ctx
// ends. Every replica serves webhooks; only the leader reconciles.
func (m *Manager) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.cache.run(gctx) })
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
	companies, bad, err := m.store.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot list companies", "error", err)
		}
		return
	}
	// An unreadable record is not scheduled: its company is not reconciled
	// until the record is readable again.
	for i, c := range companies {
		m.sched.Ensure(c.ID, time.Duration(i)*100*time.Millisecond)
	}
	oldKey := m.sealAgain(ctx, companies)
	m.opts.Metrics.Companies(views(companies, bad))
	m.opts.Metrics.Records(oldKey, len(bad))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
