// Package gateway is the public ingress: it authenticates Pipedrive's
// webhook deliveries, parses and normalises them, hands each event to the
// relay and answers only once JetStream has it.
//
// It must not know NATS (it hands an event.Event to a Publisher), where
// credentials are kept (it asks Credentials), or the routes: the router
// that serves Webhook is built in internal/httpapi.
package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// Publisher is what the gateway needs from the relay.
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) (event.Ack, error)
}

// Credentials gives the Basic credentials of a managed company. It is
// called on every request, so implementations answer from memory. ok with
// an empty user means a company whose credentials cannot be read right now
// (its stored record is unreadable, or not loaded yet): its deliveries get
// 503, so Pipedrive retries, and the static credentials are never accepted
// for it.
type Credentials interface {
	WebhookCredentials(companyID string) (user, password string, ok bool)
}

// Options configure the gateway.
type Options struct {
	MaxBodyBytes int64
	// StaticUser and StaticPassword, when set, are accepted for any company
	// that has no credentials of its own (webhooks made by hand).
	StaticUser, StaticPassword string
	// Telemetry; nil values mean no-op.
	Tracer     trace.TracerProvider
	Meter      metric.MeterProvider
	Propagator propagation.TextMapPropagator
	// Deliveries, when set, is told the outcome of every authenticated
	// delivery.
	Deliveries Deliveries
}

// Gateway answers Pipedrive's webhook deliveries; the router that serves
// it is built elsewhere.
type Gateway struct {
	opts  Options
	pub   Publisher
	creds Credentials
	log   *slog.Logger
	bufs  sync.Pool

	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	metrics *metrics
}

// New builds the gateway. creds may be nil (static credentials only).
func New(opts Options, pub Publisher, creds Credentials, log *slog.Logger) *Gateway {
	g := &Gateway{opts: opts, pub: pub, creds: creds, log: log, metrics: newMetrics(opts.Meter), prop: opts.Propagator}
	if opts.Tracer == nil {
		opts.Tracer = tracenoop.NewTracerProvider()
	}
	if g.prop == nil {
		g.prop = propagation.TraceContext{}
	}
	g.tracer = opts.Tracer.Tracer("github.com/pipedrive-gateway/pipedrive-gateway/gateway")
	return g
}

// Webhook handles one delivery: POST /webhooks/pipedrive/{company_id}, the
// id in the path parameter company_id. It writes its own answers, refusals
// included ({"error","message"}, as the router's error handler does).
func (g *Gateway) Webhook(c echo.Context) error { return g.handleWebhook(c) }

// authResult is what the credentials of a delivery allow.
type authResult int

const (
	authOK         authResult = iota
	authDenied                // 401
	authUnreadable            // 503: the company's credentials cannot be read
)

// authorize checks Basic credentials for companyID in constant time. A
// managed company accepts only its own credentials; any other company
// accepts the static ones when they are set.
func (g *Gateway) authorize(r *http.Request, companyID string) authResult {
	wantUser, wantPass, managed := "", "", false
	if g.creds != nil {
		wantUser, wantPass, managed = g.creds.WebhookCredentials(companyID)
	}
	if managed && wantUser == "" {
		return authUnreadable
	}
	var buf [512]byte
	user, pass, ok := basicAuth(r.Header.Get("Authorization"), buf[:])
	if !ok {
		return authDenied
	}
	if !managed {
		if g.opts.StaticUser == "" {
			return authDenied
		}
		wantUser, wantPass = g.opts.StaticUser, g.opts.StaticPassword
	}
	u := subtle.ConstantTimeCompare(user, []byte(wantUser))
	p := subtle.ConstantTimeCompare(pass, []byte(wantPass))
	if u&p != 1 {
		return authDenied
	}
	return authOK
}

// basicAuth decodes "Basic base64(user:password)" into buf, as
// Request.BasicAuth does but without allocating.
func basicAuth(header string, buf []byte) (user, pass []byte, ok bool) {
	const prefix = "Basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return nil, nil, false
	}
	enc := header[len(prefix):]
	var src [684]byte // base64 of 512 bytes
	if len(enc) > len(src) || base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return nil, nil, false
	}
	n, err := base64.StdEncoding.Decode(buf, src[:copy(src[:], enc)])
	if err != nil {
		return nil, nil, false
	}
	user, pass, ok = bytes.Cut(buf[:n], []byte{':'})
	if !ok {
		return nil, nil, false
	}
	return user, pass, true
}
