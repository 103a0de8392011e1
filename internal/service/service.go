// Package service wires the gateway's parts into one runnable service:
// the relay, the subscription manager, the ingress and the two HTTP
// listeners. The serve command and the end-to-end tests both start it
// through New. It must not hold logic of its own beyond building the parts
// from the configuration and the order in which they start and stop.
package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pipedrive-gateway/pipedrive-gateway/backfill"
	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/gateway"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/httpapi"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/lease"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/serving"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// Service is the wired gateway: relay, subscription manager, ingress and
// ops listener.
type Service struct {
	cfg     *config.Config
	log     *slog.Logger
	relay   *relay.Relay
	subs    *subscriptions.Manager
	bf      *backfill.Backfill // nil with BACKFILL=off
	bfLease *lease.Lease
	ingress *serving.Server
	ops     *serving.Server
	// stopping is set on SIGTERM: /readyz fails from then on, while the
	// listeners keep serving for SHUTDOWN_DELAY.
	stopping atomic.Bool
}

// Option tunes what the environment does not set; tests use them to make
// faults happen within seconds.
type Option func(*options)

type options struct {
	apiTimeout time.Duration
	leaseTTL   time.Duration
	tel        *telemetry.Telemetry
	backfill   func(*backfill.Options)
}

// WithTelemetry gives the service its tracer and meter providers (main
// builds them from OTEL_*; tests use an in-memory span recorder).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// WithPipedriveTimeout sets the timeout of each Pipedrive API request
// (default 15s).
func WithPipedriveTimeout(d time.Duration) Option { return func(o *options) { o.apiTimeout = d } }

// WithLeaseTTL sets the leader lease TTL (default 15s).
func WithLeaseTTL(d time.Duration) Option { return func(o *options) { o.leaseTTL = d } }

// WithBackfill tunes the backfill beyond its settings (tests shorten the
// ban window, the margins and the watermark's pace).
func WithBackfill(f func(*backfill.Options)) Option { return func(o *options) { o.backfill = f } }

// pipedriveTimeout is the timeout of one Pipedrive API request.
func (o options) pipedriveTimeout() time.Duration {
	if o.apiTimeout > 0 {
		return o.apiTimeout
	}
	return pipedrive.DefaultTimeout
}

// IngressAddr is the bound webhook listener.
func (a *Service) IngressAddr() net.Addr { return a.ingress.Addr() }

// OpsAddr is the bound ops listener.
func (a *Service) OpsAddr() net.Addr { return a.ops.Addr() }

// NATSURL is where consumers reach the embedded NATS server; empty with an
// external one.
func (a *Service) NATSURL() string { return a.relay.ClientURL() }

// New starts NATS (embedded or connected), binds both listeners and
// returns the service ready to run. On error everything started is stopped.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (_ *Service, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.tel == nil {
		// No telemetry given: spans for propagation only, metrics served
		// but not exported anywhere else.
		if o.tel, err = telemetry.Setup(ctx, telemetry.Options{Getenv: func(string) string { return "" }}); err != nil {
			return nil, err
		}
	}
	// a, not a named result: "return nil, err" must not hide what the
	// deferred clean-up has to stop.
	a := &Service{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.closeListeners()
			a.close()
		}
	}()
	a.relay, err = relay.New(ctx, cfg, log.With("component", "relay"), relay.WithTracing(o.tel.Tracer, o.tel.Propagator), relay.WithMeter(o.tel.Meter))
	if err != nil {
		return nil, err
	}
	api, subsMetrics := newAPI(cfg, o)
	a.subs, err = newSubscriptions(ctx, cfg, a.relay, api, subsMetrics, o, a.webhookFinding, log.With("component", "subscriptions"))
	if err != nil {
		return nil, err
	}
	if err = a.newBackfill(ctx, cfg, api, o, log.With("component", "backfill")); err != nil {
		return nil, err
	}
	gwOpts := gateway.Options{
		MaxBodyBytes:   int64(cfg.HTTP.MaxBodyBytes),
		StaticUser:     cfg.HTTP.WebhookUser,
		StaticPassword: cfg.HTTP.WebhookPassword,
		Tracer:         o.tel.Tracer,
		Meter:          o.tel.Meter,
		Propagator:     o.tel.Propagator,
	}
	if a.bf != nil {
		gwOpts.Deliveries = a.bf // the gap detector hears every delivery's outcome
	}
	gw := gateway.New(gwOpts, a.relay, a.subs, log.With("component", "gateway"))
	routes := httpapi.Options{
		Webhook:   gw.Webhook,
		PublicURL: publicURL(cfg),
		Ready: func(ctx context.Context) error {
			if a.stopping.Load() {
				return errShuttingDown
			}
			if err := a.relay.Ready(ctx); err != nil {
				return err
			}
			return a.subs.Ready(ctx)
		},
		Metrics:    o.tel.Metrics,
		Admin:      a.subs,
		AdminToken: cfg.Admin.Token,
		// A connect waits for /users/me (or a code exchange and
		// /users/me) and then for the leader's reconcile.
		PipedriveWait: 2*o.pipedriveTimeout() + subscriptions.CommandTimeout + 5*time.Second,
		OpenInstall:   cfg.Pipedrive.OAuthInstall == config.OAuthOpen,
		Log:           log.With("component", "http"),
	}
	if a.bf != nil {
		routes.Gaps = a.bf
	}
	if cfg.Pipedrive.OAuthEnabled() {
		routes.OAuth = a.subs
	}
	a.ingress, err = serving.Listen("ingress", cfg.HTTP.Addr, httpapi.Public(routes), serving.Options{
		// Long enough for the slowest publish plus reading a large body.
		WriteTimeout: cfg.Stream.PublishTimeout + 10*time.Second,
	}, log)
	if err != nil {
		return nil, err
	}
	a.ops, err = serving.Listen("ops", cfg.HTTP.OpsAddr, httpapi.Ops(routes), serving.Options{}, log)
	if err != nil {
		return nil, err
	}
	return a, nil
}

var errShuttingDown = errors.New("shutting down")

// Run serves until ctx ends, then shuts down in reverse order: /readyz
// fails at once while everything keeps serving for SHUTDOWN_DELAY (a load
// balancer takes the pod out meanwhile), then the HTTP servers stop
// accepting and drain their in-flight requests (each acked or failed), then
// the NATS connection drains and the embedded server stops.
func (a *Service) Run(ctx context.Context) error {
	serving, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	go func() {
		select {
		case <-ctx.Done():
		case <-serving.Done():
			return
		}
		a.stopping.Store(true)
		if d := a.cfg.HTTP.ShutdownDelay; d > 0 {
			a.log.Info("shutting down: not ready, still serving for SHUTDOWN_DELAY", "shutdown_delay", d.String())
			select {
			case <-time.After(d):
			case <-serving.Done():
			}
		}
		stopServing()
	}()
	g, gctx := errgroup.WithContext(serving)
	g.Go(func() error { return a.ingress.Run(gctx) })
	g.Go(func() error { return a.ops.Run(gctx) })
	g.Go(func() error { return a.relay.Run(gctx) })
	g.Go(func() error { return a.subs.Run(gctx) })
	if a.bf != nil {
		g.Go(func() error { return a.bf.Run(gctx) })
		g.Go(func() error { return a.bfLease.Run(gctx, func(ctx context.Context) { _ = a.bf.Lead(ctx) }) })
	}
	err := g.Wait()
	a.close()
	if err != nil {
		return err
	}
	a.log.Info("stopped")
	return nil
}

// newSubscriptions opens the company store and the lease with the state
// key: STATE_KEY, or with the embedded default a key kept in DATA_DIR.
func newSubscriptions(ctx context.Context, cfg *config.Config, r *relay.Relay, api *pipedrive.Client, metrics *subscriptions.OTelMetrics,
	o options, onWebhook func(context.Context, int64, subscriptions.WebhookFinding), log *slog.Logger,
) (*subscriptions.Manager, error) {
	key := []byte(cfg.Admin.StateKey)
	var previous [][]byte
	for _, k := range cfg.Admin.PreviousStateKeys {
		previous = append(previous, k)
	}
	if len(key) == 0 {
		var err error
		if key, err = loadOrCreateKey(cfg.NATS.DataDir, log); err != nil {
			return nil, err
		}
	}
	if cfg.HTTP.PublicURL == "" {
		log.Warn("PUBLIC_URL is not set: webhooks cannot be registered; events from hand-made webhooks are still relayed")
	}
	return subscriptions.New(ctx, subscriptions.Options{
		WebhookURL:        httpapi.WebhookURL(publicURL(cfg)),
		OAuthRedirectURL:  httpapi.OAuthRedirectURL(publicURL(cfg)),
		WebhookName:       cfg.Pipedrive.WebhookName,
		ResyncInterval:    cfg.Pipedrive.ResyncInterval,
		Concurrency:       cfg.Pipedrive.ReconcileConcurrency,
		APITokens:         cfg.Pipedrive.APITokens,
		StreamName:        cfg.Stream.Name,
		Replicas:          cfg.Stream.Replicas,
		StateKey:          key,
		PreviousStateKeys: previous,
		OpenInstall:       cfg.Pipedrive.OAuthInstall == config.OAuthOpen,
		LeaseTTL:          o.leaseTTL,
		Metrics:           metrics,
		Tracer:            o.tel.Tracer,
		OnWebhook:         onWebhook,
	}, r.Conn(), r.JetStream(), api, log)
}

// newAPI is the Pipedrive client of the subscription manager and the
// backfill; its calls are counted in the subscription metrics.
func newAPI(cfg *config.Config, o options) (*pipedrive.Client, *subscriptions.OTelMetrics) {
	metrics := subscriptions.NewOTelMetrics(o.tel.Meter)
	// Keep a connection per worker: the default of two idle connections a
	// host closes and redials most of RECONCILE_CONCURRENCY calls to one API
	// host (PIPEDRIVE_API_URL, a proxy).
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Pipedrive.ReconcileConcurrency
	return pipedrive.New(pipedrive.Options{
		HTTPClient:   &http.Client{Transport: transport}, // each call has its own deadline
		Tracer:       o.tel.Tracer,
		OnResponse:   metrics.APIResponse,
		APIURL:       cfg.Pipedrive.APIURL,
		OAuthURL:     cfg.Pipedrive.OAuthURL,
		ClientID:     cfg.Pipedrive.ClientID,
		ClientSecret: cfg.Pipedrive.ClientSecret,
		Timeout:      o.apiTimeout,
	}), metrics
}

// publicURL is PUBLIC_URL without a trailing slash.
func publicURL(cfg *config.Config) string { return strings.TrimRight(cfg.HTTP.PublicURL, "/") }

// closeListeners frees the ports of servers that never ran.
func (a *Service) closeListeners() {
	for _, s := range []*serving.Server{a.ingress, a.ops} {
		if s != nil {
			_ = s.Close()
		}
	}
}

func (a *Service) close() {
	if a.relay != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.relay.Close(ctx)
	}
}
