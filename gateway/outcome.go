package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// Deliveries is told the outcome of every authenticated delivery, once,
// after it is decided (the gap detector of SPEC §8 follows first-attempt
// failures and retries through it). attempt is 1 for a first delivery and
// 0 when the body could not be read far enough to tell; status is the
// answer Pipedrive gets; at is when the delivery arrived. Implementations
// must not block: they run on the request path.
type Deliveries interface {
	Delivered(companyID string, attempt int, status int, at time.Time)
}

// reason is why a delivery was not acknowledged: the label of the rejection
// metrics.
type reason string

const (
	reasonNotFound     reason = "not_found"
	reasonUnauthorized reason = "unauthorized"
	reasonTooLarge     reason = "too_large"
	reasonInvalid      reason = "invalid_payload"
	reasonMismatch     reason = "company_mismatch"
	reasonAmbiguous    reason = "ambiguous_payload"
	reasonUnavailable  reason = "unavailable" // publish failed: 503, counted as a publish error
	// reasonUnreadable: a managed company whose stored credentials cannot
	// be read (SPEC §5): 503, never 401, never the static credentials.
	reasonUnreadable reason = "credentials_unreadable"
)

// rejections are the reasons of the 4xx answers, each counted from start.
var rejections = []reason{reasonNotFound, reasonUnauthorized, reasonUnreadable, reasonTooLarge, reasonInvalid, reasonMismatch, reasonAmbiguous}

// code is the "error" of the JSON answer. A company mismatch is, to the
// sender, an invalid payload; the metric keeps the detail.
func (r reason) code() string {
	switch r {
	case reasonMismatch:
		return string(reasonInvalid)
	case reasonTooLarge:
		return "body_too_large"
	}
	return string(r)
}

// rejection is a delivery refused: the status, the reason and a message for
// the sender (never a secret).
type rejection struct {
	status  int
	reason  reason
	message string
}

// delivery is one webhook request as ingest saw it.
type delivery struct {
	start         time.Time
	companyID     string
	authenticated bool
	size          int64 // the body's, -1 until it was read
	attempt       int   // 0 = unknown

	// Set once the body parsed.
	parsed                  bool
	action, object, eventID string
	took                    time.Duration // the publish
	ack                     event.Ack
	err                     error // the publish error

	rej *rejection // what ingest returned; nil = acknowledged
}

func reject(status int, r reason, message string) *rejection {
	return &rejection{status: status, reason: r, message: message}
}

func (d *delivery) status() int {
	if d.rej != nil {
		return d.rej.status
	}
	return http.StatusOK
}

// The answers to Pipedrive on success, encoded once.
var (
	answerOK        = []byte(`{"status":"ok"}` + "\n")
	answerDuplicate = []byte(`{"status":"ok","duplicate":true}` + "\n")
	contentTypeJSON = []string{"application/json"}
)

// refusal is the JSON of every refusal: a stable code and a message, as
// the router's error handler writes them.
type refusal struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// answer is the one place that maps an ingest outcome to what follows from
// it: the HTTP answer, the metrics, the log line, the span and the
// delivery observer.
func (g *Gateway) answer(ctx context.Context, w *echo.Response, span trace.Span, d *delivery) error {
	status := d.status()
	g.record(ctx, d, status)
	g.logOutcome(ctx, d, status)
	if span.IsRecording() {
		g.annotate(span, d, status)
	}
	if d.authenticated && g.opts.Deliveries != nil {
		g.opts.Deliveries.Delivered(d.companyID, d.attempt, status, d.start)
	}
	w.Header()["Content-Type"] = contentTypeJSON // canonical already: no Set, no allocation
	if d.rej == nil {
		body := answerOK
		if d.ack.Duplicate {
			body = answerDuplicate
		}
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(body)
		return err
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="pipedrive-gateway"`)
	}
	b, err := json.Marshal(refusal{Error: d.rej.reason.code(), Message: d.rej.message})
	if err != nil {
		return err
	}
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// record counts the delivery.
func (g *Gateway) record(ctx context.Context, d *delivery, status int) {
	x := g.metrics
	x.answered(ctx, status, time.Since(d.start))
	if d.size >= 0 {
		x.size.Record(ctx, d.size)
	}
	if d.parsed {
		pair := x.pair(d.action, d.object)
		x.received.Add(ctx, 1, pair.plain...)
		if d.err != nil {
			x.failedEvent(ctx, pair, d.took)
		} else {
			x.publishedEvent(ctx, pair, d.ack.Duplicate, d.took)
		}
	}
	if d.rej != nil && d.rej.reason != reasonUnavailable {
		x.reject(ctx, d.rej.reason)
	}
	// Pipedrive bans a webhook after 10 failed first attempts. An attempt
	// the body did not tell is counted too: better a false alarm than a
	// missed ban.
	if d.authenticated && status >= 300 && d.attempt <= 1 {
		x.firstAttemptFailure(ctx, d.companyID)
	}
}

func (g *Gateway) logOutcome(ctx context.Context, d *delivery, status int) {
	switch {
	case d.err != nil:
		g.log.WarnContext(ctx, "publish failed", "company_id", d.companyID, "event_id", d.eventID,
			"action", d.action, "object", d.object, "attempt", d.attempt, "error", d.err)
	case d.rej != nil:
		g.log.InfoContext(ctx, "webhook rejected", "company_id", d.companyID, "status", status,
			"reason", string(d.rej.reason), "attempt", d.attempt, "message", d.rej.message)
	case g.log.Enabled(ctx, slog.LevelDebug):
		g.log.DebugContext(ctx, "event published", "company_id", d.companyID, "event_id", d.eventID, "action", d.action,
			"object", d.object, "attempt", d.attempt, "seq", d.ack.Sequence, "duplicate", d.ack.Duplicate)
	}
}

// annotate sets the server span's attributes in one call (each call grows
// the span's slice).
func (g *Gateway) annotate(span trace.Span, d *delivery, status int) {
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs,
		attribute.String("http.request.method", http.MethodPost),
		attribute.String("http.route", webhookRoute),
		attribute.Int("http.response.status_code", status),
		attribute.String("pipedrive.company_id", d.companyID),
	)
	outcome := "published"
	switch {
	case d.err != nil:
		outcome = "failed"
	case d.rej != nil:
		outcome = "rejected"
		attrs = append(attrs, attribute.String("pipedrive.reason", string(d.rej.reason)))
	case d.ack.Duplicate:
		outcome = "duplicate"
	}
	attrs = append(attrs, attribute.String("pipedrive.outcome", outcome))
	if d.parsed {
		attrs = append(attrs,
			attribute.String("pipedrive.action", d.action),
			attribute.String("pipedrive.object", d.object),
			attribute.String("pipedrive.event_id", d.eventID),
			attribute.Int("pipedrive.attempt", d.attempt),
		)
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// webhookRoute is WebhookPath as OpenTelemetry's http.route spells it.
const webhookRoute = "/webhooks/pipedrive/{company_id}"
