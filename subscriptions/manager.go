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
	"sync"
	"sync/atomic"
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
	seen   *nonces
	cache  *credentialCache
	tokens *apiTokens
	lease  *lease.Lease
	sched  *sched.Scheduler[result]
	rec    *reconciler
	log    *slog.Logger
	// leading is set while this replica leads.
	leading atomic.Bool

	// oldKey holds the companies whose record the watch last saw sealed
	// under a previous STATE_KEY (or in the first format): the leader seals
	// them again at once and every storeSync, without scanning the store.
	oldKeyMu sync.Mutex
	oldKey   map[int64]struct{}
	reseal   chan int64
	// recount asks the leader to report the records by key again: a change
	// the watch delivered may have moved one out of (or into) the old-key or
	// unreadable sets, whoever wrote it.
	recount chan struct{}
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
	m := &Manager{
		opts: opts, nc: nc, api: api, keys: ring, store: st, grants: gr, seen: newNonces(), lease: l, log: log,
		tokens: newAPITokens(opts.APITokens, st.TokenHash), oldKey: map[int64]struct{}{}, reseal: make(chan int64, 1024),
		recount: make(chan struct{}, 1),
	}
	m.cache = newCredentialCache(st, log, m.observe)
	m.rec = &reconciler{
		store: st, api: api, webhookURL: opts.WebhookURL, name: opts.WebhookName,
		now: opts.Clock.Now, log: log, metrics: opts.Metrics, onWebhook: opts.OnWebhook, pauses: newPauses(),
		tracer: opts.Tracer.Tracer("github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"),
	}
	m.sched = sched.New(sched.Options{Clock: opts.Clock, Resync: opts.ResyncInterval, Workers: opts.Concurrency}, m.work)
	opts.Metrics.APITokens(m.tokens.counts)
	return m, nil
}

// work is the scheduler's job: a company id is reconciled, a negative key
// is a PIPEDRIVE_API_TOKENS entry to connect. Both share the workers, so
// RECONCILE_CONCURRENCY bounds connects and reconciles together.
func (m *Manager) work(ctx context.Context, key int64) result {
	if i, ok := entryOf(key); ok {
		return m.connectEntry(ctx, i)
	}
	return m.rec.reconcile(ctx, key)
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

// lead is the leader's work: schedule every company and every
// PIPEDRIVE_API_TOKENS entry not connected yet, answer commands, seal
// records again after a STATE_KEY rotation, and run the scheduler until
// ctx ends.
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
	// From now on the store watch schedules companies that appear.
	m.leading.Store(true)
	defer m.leading.Store(false)
	// It schedules from the records the watch delivered: a leader elected
	// while this replica starts waits for them (they also decide which
	// PIPEDRIVE_API_TOKENS entries are connected already).
	select {
	case <-ctx.Done():
		return
	case <-m.cache.loaded:
	}
	m.scheduleAll(ctx, true)
	resync := m.opts.Clock.At(m.opts.Clock.Now().Add(m.opts.ResyncInterval))
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync:
			m.scheduleAll(ctx, false)
			resync = m.opts.Clock.At(m.opts.Clock.Now().Add(m.opts.ResyncInterval))
		case id := <-m.reseal:
			m.sealAgainIDs(ctx, []int64{id})
			m.reportRecords()
		case <-m.recount:
			m.reportRecords()
		case <-m.opts.Clock.At(m.opts.Clock.Now().Add(storeSync)):
			m.sealAgainIDs(ctx, m.oldKeyIDs())
			m.reportRecords()
		}
	}
}

const (
	// storeSync is how often the leader seals again the records the watch
	// saw under an old key that are left (a replica not yet rotated wrote
	// one, or it changed while being sealed); none: no work.
	storeSync = 30 * time.Second
	// restartSpacing spreads the first reconcile of the companies a leader
	// finds at its start: N companies over N × restartSpacing (at most
	// RESYNC_INTERVAL), so a restart costs one list per company at an even
	// pace instead of a burst of N lists.
	restartSpacing = 50 * time.Millisecond
	// watchDelay is how long a company that appears in the store waits for
	// the command that normally asks for its first reconcile, before the
	// leader runs it anyway (a command lost between replicas).
	watchDelay = 10 * time.Second
)

// scheduleAll adds every readable company to the scheduler, and every
// PIPEDRIVE_API_TOKENS entry that no record connects; it seals again the
// records under an old key and reports the records by key. At a leader's
// start the companies already reconciled once are spread over a window;
// pending ones (never reconciled) run at once. Later calls (every
// RESYNC_INTERVAL) only catch what the watch may have missed. It works from
// the records the watch has loaded (the cache's summary of each): no record
// is read again, so a leader's start costs NATS nothing per company (only
// those under an old key are read, to seal them again).
func (m *Manager) scheduleAll(ctx context.Context, start bool) {
	known := m.cache.companies()
	window := min(m.opts.ResyncInterval, time.Duration(len(known))*restartSpacing)
	for i, c := range known {
		var ue *store.UnreadableError
		if c.bad != nil {
			// Not scheduled until the record is readable again (the watch
			// sees it then).
			if errors.As(c.bad, &ue) {
				m.opts.Metrics.Company(unreadableView(ue))
			}
			continue
		}
		m.opts.Metrics.Company(c.view(c.id))
		delay := time.Duration(0)
		if start && c.reconciled {
			delay = window * time.Duration(i) / time.Duration(len(known))
		}
		m.sched.Ensure(c.id, delay)
	}
	for _, i := range m.tokens.toConnect() {
		m.sched.Ensure(entryKey(i), 0)
	}
	m.sealAgainIDs(ctx, m.oldKeyIDs())
	m.reportRecords()
}

// reportRecords reports the records under an old key and the unreadable
// ones as the watch last saw them. A record sealed again shows there once
// the watch delivers it; the change then asks for a report (recount), so
// the gauges settle on what the store holds, also when the re-seal lost a
// race to another write that sealed the record under the current key.
func (m *Manager) reportRecords() {
	m.oldKeyMu.Lock()
	old := len(m.oldKey)
	m.oldKeyMu.Unlock()
	m.opts.Metrics.Records(old, m.cache.badCount())
}

// observe follows every change of the store (on every replica): the
// configured entries it connects, the records under an old key and, on
// the leader, companies to schedule and the metrics of those that went.
func (m *Manager) observe(ch store.Change) {
	old := ch.Company != nil && m.store.OldKey(ch.Company)
	m.oldKeyMu.Lock()
	if old {
		m.oldKey[ch.ID] = struct{}{}
	} else {
		delete(m.oldKey, ch.ID)
	}
	m.oldKeyMu.Unlock()
	if ch.Company != nil {
		m.tokens.seen(ch.Company)
	} else if ch.Err == nil {
		m.tokens.gone(ch.ID)
	}
	// The initial values of the watch are the companies the leader lists
	// and spreads at its start; only later changes are new.
	if !m.leading.Load() || !m.cache.synced.Load() {
		return
	}
	select {
	case m.recount <- struct{}{}:
	default: // a report is asked for already
	}
	switch {
	case ch.Company != nil:
		m.sched.Ensure(ch.ID, watchDelay)
		if old {
			select {
			case m.reseal <- ch.ID:
			default: // the next storeSync takes it
			}
		}
	case ch.Err == nil:
		m.opts.Metrics.CompanyGone(ch.ID)
	}
}

// oldKeyIDs are the companies last seen under an old key.
func (m *Manager) oldKeyIDs() []int64 {
	m.oldKeyMu.Lock()
	defer m.oldKeyMu.Unlock()
	ids := make([]int64, 0, len(m.oldKey))
	for id := range m.oldKey {
		ids = append(ids, id)
	}
	return ids
}

// sealAgainIDs reads the companies and seals again those still under an
// old key.
func (m *Manager) sealAgainIDs(ctx context.Context, ids []int64) {
	for _, id := range ids {
		if c, err := m.store.Get(ctx, id); err == nil {
			m.sealAgain(ctx, c)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
