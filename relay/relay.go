// Package relay owns everything NATS: the embedded server that makes the
// gateway run with no infrastructure, the client connection, the stream, and
// publishing events with their dedupe id and headers.
//
// It must not know HTTP or Pipedrive: it stores the event.Event it is given.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
)

// ErrUnavailable means JetStream did not acknowledge in time or could not be
// reached; the gateway answers 503 so that Pipedrive retries.
var ErrUnavailable = errors.New("jetstream unavailable")

// Relay is a connection to NATS (embedded or external) with the stream set up.
type Relay struct {
	cfg     config.Stream
	dataDir string
	maxMsg  int64
	log     *slog.Logger

	srv      *server.Server // nil with an external NATS
	maxStore int64          // JetStream store limit given to the embedded server; 0 = the server's own
	nc       *nats.Conn
	js       jetstream.JetStream

	// started is set once nc and js are assigned: connection callbacks can
	// fire before nats.Connect returns and must not touch them before.
	started atomic.Bool
	// ensureMu keeps concurrent stream set-ups (start-up, monitor) from
	// racing each other; applied is set once the stream was made to follow
	// STREAM_MANAGE, which happens once per process.
	ensureMu sync.Mutex
	applied  bool
	fatal    chan error

	health health

	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	meter  metric.MeterProvider
	names  nameCache
}

// Option configures optional parts of the relay.
type Option func(*Relay)

// WithTracing makes Publish create a producer span and inject its context
// into the message headers (traceparent, tracestate).
func WithTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) Option {
	return func(r *Relay) {
		r.tracer = tp.Tracer("github.com/pipedrive-gateway/pipedrive-gateway/relay")
		r.prop = prop
	}
}

// WithMeter makes the relay report the stream's size, message count and
// limit as gauges.
func WithMeter(mp metric.MeterProvider) Option { return func(r *Relay) { r.meter = mp } }

// New starts the embedded server when cfg.NATS.URL is empty, connects, and
// sets the stream up as STREAM_MANAGE allows. With an external server that
// is not reachable yet, New still succeeds: the connection keeps retrying
// and Run finishes the set-up; until then Ready reports why it is not ready.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, options ...Option) (*Relay, error) {
	r := &Relay{
		cfg:     cfg.Stream,
		dataDir: cfg.NATS.DataDir,
		maxMsg:  int64(cfg.HTTP.MaxBodyBytes) + config.HeaderReserve,
		log:     log,
		fatal:   make(chan error, 1),
		tracer:  tracenoop.NewTracerProvider().Tracer(""),
		prop:    propagation.TraceContext{},
	}
	r.health.init()
	for _, o := range options {
		o(r)
	}
	opts := r.connOptions()
	url := cfg.NATS.URL
	if cfg.NATS.Embedded() {
		srv, maxStore, err := startEmbedded(cfg, r.maxMsg, log, r.health.kick)
		if err != nil {
			return nil, err
		}
		r.srv, r.maxStore = srv, maxStore
		url = srv.ClientURL()
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		extra, err := ExternalOptions(cfg.NATS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, extra...)
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		r.shutdownServer()
		return nil, fmt.Errorf("failed to connect to NATS: %w", err)
	}
	r.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("failed to create JetStream context: %w", err)
	}
	r.js = js
	r.started.Store(true)
	if err := r.ensureStream(ctx); err != nil {
		if errors.Is(err, errPayloadTooSmall) || (cfg.NATS.Embedded() && !errors.Is(err, errStreamOff)) {
			r.Close(ctx)
			return nil, err
		}
		log.Warn("stream not ready yet, will retry", "stream", r.cfg.Name, "error", err)
	}
	if err := r.registerMetrics(); err != nil {
		r.Close(ctx)
		return nil, err
	}
	// Readiness has an answer from the first probe on.
	r.health.set(r.check(ctx))
	return r, nil
}

func (r *Relay) connOptions() []nats.Option {
	return []nats.Option{
		nats.Name("pipedrive-gateway"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// No reconnect buffer: while disconnected a publish fails at once
		// and the gateway answers 503, instead of holding the message and
		// sending it after Pipedrive has already been told to retry.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on a deliberate drain or close
				r.log.Warn("disconnected from NATS", "error", err)
			}
		}),
		// A server that lost its store comes back without the stream: the
		// monitor looks at once.
		nats.ReconnectHandler(func(nc *nats.Conn) {
			r.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			r.health.kick()
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			r.log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted())
			r.health.kick()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			r.log.Warn("NATS error", "error", err)
		}),
	}
}

// Conn returns the NATS connection (for the company store and the tail command).
func (r *Relay) Conn() *nats.Conn { return r.nc }

// JetStream returns the JetStream handle.
func (r *Relay) JetStream() jetstream.JetStream { return r.js }

// ClientURL is where other processes reach the embedded server; empty with
// an external NATS.
func (r *Relay) ClientURL() string {
	if r.srv == nil {
		return ""
	}
	return r.srv.ClientURL()
}

// Run watches the path to storage until ctx ends (see monitor). It returns
// an error only for a problem that retrying cannot fix.
func (r *Relay) Run(ctx context.Context) error { return r.monitor(ctx) }

// Close drains the connection, then stops the embedded server. Bounded by ctx.
func (r *Relay) Close(ctx context.Context) {
	if r.nc != nil && !r.nc.IsClosed() {
		done := make(chan struct{})
		r.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := r.nc.Drain(); err != nil {
			r.nc.Close()
		}
		select {
		case <-done:
		case <-ctx.Done():
			r.nc.Close()
		}
	}
	r.shutdownServer()
}

func (r *Relay) shutdownServer() {
	if r.srv == nil {
		return
	}
	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	r.log.Info("embedded NATS server stopped")
}
