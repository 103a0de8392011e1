package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// The answers to Pipedrive on success, encoded once.
var (
	answerOK        = []byte(`{"status":"ok"}` + "\n")
	answerDuplicate = []byte(`{"status":"ok","duplicate":true}` + "\n")
)

// events are reused between requests: an event only lives until its
// publish returns.
var events = sync.Pool{New: func() any { return new(event.Event) }}

var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// spanName is the server span's name: the route template, never the raw path.
const spanName = "POST /webhooks/pipedrive/{company_id}"

func (g *Gateway) handleWebhook(c echo.Context) error {
	req := c.Request()
	companyID := c.Param("company_id")
	ctx := req.Context()
	// Pipedrive sends no trace context; look for it without the key
	// canonicalisation (and its allocation) that Extract would do.
	if req.Header["Traceparent"] != nil || req.Header["Baggage"] != nil {
		ctx = g.prop.Extract(ctx, propagation.HeaderCarrier(req.Header))
	}
	ctx, span := g.tracer.Start(ctx, spanName, serverSpan)
	defer span.End()

	var note spanNote
	status, err := g.serveWebhook(ctx, c, &note, companyID)
	g.metrics.status(ctx, status)
	if span.IsRecording() {
		// One SetAttributes call: each call grows the span's slice.
		attrs := make([]attribute.KeyValue, 0, 9)
		attrs = append(attrs,
			attribute.String("http.request.method", http.MethodPost),
			attribute.String("http.route", "/webhooks/pipedrive/{company_id}"),
			attribute.Int("http.response.status_code", status),
			attribute.String("pipedrive.company_id", companyID),
		)
		if note.outcome != "" {
			attrs = append(attrs, attribute.String("pipedrive.outcome", note.outcome))
		}
		if note.action != "" {
			attrs = append(attrs,
				attribute.String("pipedrive.action", note.action),
				attribute.String("pipedrive.object", note.object),
				attribute.String("pipedrive.event_id", note.eventID),
				attribute.Int("pipedrive.attempt", note.attempt),
			)
		}
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	return err
}

// spanNote is what serveWebhook learns for the server span.
type spanNote struct {
	outcome                 string // published, duplicate, failed, rejected
	action, object, eventID string
	attempt                 int
}

// serveWebhook does the work and returns the status it answered.
func (g *Gateway) serveWebhook(ctx context.Context, c echo.Context, note *spanNote, companyID string) (int, error) {
	req := c.Request()
	if !numericID(companyID) {
		g.metrics.reject(ctx, "not_found")
		return http.StatusNotFound, echo.NewHTTPError(http.StatusNotFound, "company id must be numeric")
	}
	// Credentials first: an unauthenticated caller never makes us read a body.
	if !g.authorize(req, companyID) {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="pipedrive-gateway"`)
		g.reject(ctx, note, companyID, "unauthorized", http.StatusUnauthorized, "bad credentials")
		return http.StatusUnauthorized, echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong credentials")
	}
	if req.ContentLength > g.opts.MaxBodyBytes {
		return g.tooLarge(ctx, note, companyID)
	}
	buf := g.getBuf()
	defer g.bufs.Put(buf)
	n, err := readBody(buf, req.Body, g.opts.MaxBodyBytes+1)
	if err != nil {
		g.reject(ctx, note, companyID, "invalid_payload", http.StatusBadRequest, "unreadable body")
		return http.StatusBadRequest, echo.NewHTTPError(http.StatusBadRequest, "failed to read body: "+err.Error())
	}
	if n > g.opts.MaxBodyBytes {
		return g.tooLarge(ctx, note, companyID)
	}
	g.metrics.size.Record(ctx, n)
	ev := events.Get().(*event.Event)
	defer func() { *ev = event.Event{}; events.Put(ev) }()
	if err := parseInto(ev, buf.Bytes(), companyID); err != nil {
		reason := "invalid_payload"
		var mismatch *CompanyMismatchError
		if errors.As(err, &mismatch) {
			reason = "company_mismatch"
		}
		g.reject(ctx, note, companyID, reason, http.StatusBadRequest, err.Error())
		return http.StatusBadRequest, echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	pair := g.metrics.pair(ev.Action, ev.Object)
	g.metrics.received.Add(ctx, 1, pair.plain...)
	if ev.Attempt == 2 {
		g.metrics.retry(companyID, time.Now())
	}
	note.action, note.object, note.eventID, note.attempt = ev.Action, ev.Object, ev.ID, ev.Attempt
	start := time.Now()
	ack, err := g.pub.Publish(detach(ctx, trace.SpanFromContext(ctx)), ev)
	took := time.Since(start)
	if err != nil {
		g.metrics.failedEvent(ctx, pair, took)
		note.outcome = "failed"
		g.log.WarnContext(ctx, "publish failed", "company_id", companyID, "event_id", ev.ID,
			"action", ev.Action, "object", ev.Object, "error", err)
		return http.StatusServiceUnavailable, echo.NewHTTPError(http.StatusServiceUnavailable, "event not stored, retry later")
	}
	g.metrics.publishedEvent(ctx, pair, ack.Duplicate, took)
	note.outcome = "published"
	if ack.Duplicate {
		note.outcome = "duplicate"
	}
	if g.log.Enabled(ctx, slog.LevelDebug) {
		g.log.DebugContext(ctx, "event published", "company_id", companyID, "event_id", ev.ID, "action", ev.Action,
			"object", ev.Object, "attempt", ev.Attempt, "seq", ack.Sequence, "duplicate", ack.Duplicate)
	}
	body := answerOK
	if ack.Duplicate {
		body = answerDuplicate
	}
	w := c.Response()
	w.Header()["Content-Type"] = contentTypeJSON // canonical already: no Set, no allocation
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return http.StatusOK, err
}

var contentTypeJSON = []string{"application/json"}

// detach gives the publish a context that a client hanging up cannot
// cancel (either JetStream gets the event or it does not, never half) and
// that carries the span and any baggage. context.WithoutCancel would do,
// but every Value lookup through it allocates, and the publish path makes
// several.
func detach(ctx context.Context, span trace.Span) context.Context {
	out := context.Background()
	if b := baggage.FromContext(ctx); b.Len() > 0 {
		out = baggage.ContextWithBaggage(out, b)
	}
	return trace.ContextWithSpan(out, span)
}

func (g *Gateway) reject(ctx context.Context, note *spanNote, companyID, reason string, status int, detail string) {
	g.metrics.reject(ctx, reason)
	note.outcome = "rejected"
	g.log.InfoContext(ctx, "webhook rejected", "company_id", companyID, "status", status, "reason", detail)
}

func (g *Gateway) tooLarge(ctx context.Context, note *spanNote, companyID string) (int, error) {
	g.reject(ctx, note, companyID, "too_large", http.StatusRequestEntityTooLarge, "body too large")
	return http.StatusRequestEntityTooLarge, echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		"body larger than MAX_BODY_BYTES ("+strconv.FormatInt(g.opts.MaxBodyBytes, 10)+" bytes)")
}

// readBody reads at most limit bytes of r into buf (io.LimitReader would
// cost an allocation per request).
func readBody(buf *bytes.Buffer, r io.Reader, limit int64) (int64, error) {
	var n int64
	for n < limit {
		buf.Grow(int(min(limit-n, 32<<10)))
		b := buf.AvailableBuffer()
		b = b[:min(int64(cap(b)), limit-n)]
		m, err := r.Read(b)
		buf.Write(b[:m])
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (g *Gateway) getBuf() *bytes.Buffer {
	if b, ok := g.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return bytes.NewBuffer(make([]byte, 0, 8<<10))
}

func numericID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
