package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// events are reused between requests: an event only lives until its
// publish returns.
var events = sync.Pool{New: func() any { return new(event.Event) }}

var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// spanName is the server span's name: the route template, never the raw path.
const spanName = "POST /webhooks/pipedrive/{company_id}"

// handleWebhook is the ingress: ingest decides, and answer (outcome.go) is
// the one place that turns the decision into the status, the metrics, the
// log line, the span and the observer's call.
func (g *Gateway) handleWebhook(c echo.Context) error {
	d := delivery{start: time.Now(), companyID: c.Param("company_id"), size: -1}
	req := c.Request()
	ctx, span := g.tracer.Start(g.remoteParent(req), spanName, serverSpan)
	defer span.End()
	d.rej = g.ingest(ctx, req, &d)
	return g.answer(ctx, c.Response(), span, &d)
}

// remoteParent is the context a delivery is handled in. It is not the
// request's: either JetStream gets the event or it does not, never half,
// so a client hanging up must not cancel the publish. (context.WithoutCancel
// would do, but each Value lookup through it allocates, and a publish makes
// four: BenchmarkHandler, 4 allocs/op more.)
//
// Pipedrive sends no trace context; anyone else reaching the public ingress
// may hand us a trace id, but not tracestate or baggage: those would travel
// on to every consumer.
func (g *Gateway) remoteParent(req *http.Request) context.Context {
	ctx := context.Background()
	// Looked up without the key canonicalisation (and its allocation)
	// that Extract would do.
	if req.Header["Traceparent"] == nil {
		return ctx
	}
	sc := trace.SpanContextFromContext(g.prop.Extract(ctx, propagation.HeaderCarrier(req.Header)))
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
}

// ingest authenticates, reads and parses one delivery and publishes its
// event. It answers nothing and records nothing: it returns the rejection,
// or nil when JetStream acknowledged (d.ack), and notes in d what it learnt
// on the way.
func (g *Gateway) ingest(ctx context.Context, req *http.Request, d *delivery) *rejection {
	if !canonicalID(d.companyID) {
		return reject(http.StatusNotFound, reasonNotFound, "company id must be a canonical decimal number")
	}
	// Credentials first: an unauthenticated caller never makes us read a body.
	switch g.authorize(req, d.companyID) {
	case authDenied:
		return reject(http.StatusUnauthorized, reasonUnauthorized, "missing or wrong credentials")
	case authUnreadable:
		// A managed company whose credentials cannot be read: Pipedrive
		// retries a 503; a 401 would count as wrong credentials, and the
		// static ones must never stand in for its own.
		return reject(http.StatusServiceUnavailable, reasonUnreadable, "this company's credentials cannot be checked right now; retry later")
	}
	d.authenticated = true
	if req.ContentLength > g.opts.MaxBodyBytes {
		return tooLarge(g.opts.MaxBodyBytes)
	}
	buf := g.getBuf()
	defer g.bufs.Put(buf)
	n, err := readBody(buf, req.Body, g.opts.MaxBodyBytes+1)
	if err != nil {
		return reject(http.StatusBadRequest, reasonInvalid, "failed to read body: "+err.Error())
	}
	if n > g.opts.MaxBodyBytes {
		return tooLarge(g.opts.MaxBodyBytes)
	}
	d.size = n
	ev := events.Get().(*event.Event)
	defer func() { *ev = event.Event{}; events.Put(ev) }()
	attempt, err := parseInto(ev, buf.Bytes(), d.companyID)
	d.attempt = attempt
	if err != nil {
		var mismatch *CompanyMismatchError
		var payload *PayloadError
		switch {
		case errors.As(err, &mismatch):
			return reject(http.StatusBadRequest, reasonMismatch, err.Error())
		case errors.As(err, &payload) && payload.Ambiguous:
			return reject(http.StatusBadRequest, reasonAmbiguous, err.Error())
		}
		return reject(http.StatusBadRequest, reasonInvalid, err.Error())
	}
	g.domain(ev)
	d.parsed, d.action, d.object, d.eventID = true, ev.Action, ev.Object, ev.ID
	start := time.Now()
	d.ack, d.err = g.pub.Publish(ctx, ev)
	d.took = time.Since(start)
	if d.err != nil {
		return reject(http.StatusServiceUnavailable, reasonUnavailable, "event not stored, retry later")
	}
	return nil
}

// domain names a managed company's own domain as the event's host, when the
// credential store knows it (ce-source, SPEC §4).
func (g *Gateway) domain(ev *event.Event) {
	if h, ok := g.creds.(Hosts); ok {
		if host, ok := h.CompanyHost(ev.CompanyID); ok && pipedriveHost(host) {
			ev.Host = host
		}
	}
}

// Hosts is an optional interface of Credentials: the Pipedrive host of a
// managed company (acme.pipedrive.com). With it, ce-source names the
// company's own domain whatever meta.host says.
type Hosts interface {
	CompanyHost(companyID string) (host string, ok bool)
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

func tooLarge(limit int64) *rejection {
	return reject(http.StatusRequestEntityTooLarge, reasonTooLarge,
		"body larger than MAX_BODY_BYTES ("+strconv.FormatInt(limit, 10)+" bytes)")
}
