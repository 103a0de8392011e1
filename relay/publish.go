package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Event is one Pipedrive event ready to publish. The gateway fills it from
// the webhook payload; Body is published byte for byte.
type Event struct {
	Action    string // create, change or delete
	Object    string // deal, person, … (a safe subject token)
	ID        string // dedupe id, becomes Nats-Msg-Id and ce-id
	CompanyID string
	WebhookID string
	Version   string // "2.0" or "1.0"
	Attempt   int    // 1 = first delivery
	EntityID  string
	Time      time.Time
	Host      string // meta.host, e.g. acme.pipedrive.com; may be empty
	Body      []byte
}

// Ack is JetStream's acknowledgement of a publish.
type Ack struct {
	Stream    string
	Sequence  uint64
	Duplicate bool
}

// Header names of SPEC §4. NATS headers are case-sensitive, so these are
// written exactly as consumers read them.
const (
	HeaderCompanyID      = "Pipedrive-Company-Id"
	HeaderWebhookID      = "Pipedrive-Webhook-Id"
	HeaderWebhookVersion = "Pipedrive-Webhook-Version"
	HeaderAttempt        = "Pipedrive-Attempt"
)

// Subject is the subject an event is published on: <prefix>.<action>.<object>.
func (r *Relay) Subject(ev *Event) string {
	return r.cfg.SubjectPrefix + "." + ev.Action + "." + ev.Object
}

// Publish sends the event to JetStream and returns after the PubAck, or
// with an error wrapping ErrUnavailable once PUBLISH_TIMEOUT has passed or
// NATS cannot take the message.
func (r *Relay) Publish(ctx context.Context, ev *Event) (Ack, error) {
	subject := r.Subject(ev)
	ctx, span := r.tracer.Start(ctx, "publish "+subject, trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout.D)
	defer cancel()
	msg := &nats.Msg{
		Subject: subject,
		Data:    ev.Body,
		Header:  Headers(ev),
	}
	// The consumer continues the trace from these headers.
	r.prop.Inject(ctx, headerCarrier(msg.Header))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "publish"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", ev.ID),
			attribute.Int("messaging.message.body.size", len(ev.Body)),
		)
	}
	ack, err := r.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(r.cfg.Name))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		if errors.Is(err, nats.ErrMaxPayload) {
			return Ack{}, fmt.Errorf("event too large for NATS: %w", err)
		}
		return Ack{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int64("messaging.nats.stream.sequence", int64(ack.Sequence)), attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
	}
	return Ack{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// headerCarrier lets the propagator write NATS headers with their exact,
// lower-case W3C names (nats.Header is case-sensitive).
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h headerCarrier) Set(key, value string) { h[key] = []string{value} }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// HeaderCarrier adapts NATS headers for propagators, for consumers that
// continue the trace: prop.Extract(ctx, relay.HeaderCarrier(msg.Headers())).
func HeaderCarrier(h nats.Header) propagation.TextMapCarrier { return headerCarrier(h) }

// Headers builds the binary CloudEvents headers plus the Pipedrive specifics.
// Nats-Msg-Id is added by the publish itself.
func Headers(ev *Event) nats.Header {
	h := make(nats.Header, 14)
	h["ce-specversion"] = []string{"1.0"}
	h["ce-id"] = []string{ev.ID}
	h["ce-type"] = []string{"com.pipedrive." + ev.Object + "." + ev.Action}
	if ev.Host != "" {
		h["ce-source"] = []string{"https://" + ev.Host}
	} else {
		h["ce-source"] = []string{"pipedrive://company/" + ev.CompanyID}
	}
	if ev.EntityID != "" {
		h["ce-subject"] = []string{ev.EntityID}
	}
	if !ev.Time.IsZero() {
		h["ce-time"] = []string{ev.Time.UTC().Format(time.RFC3339Nano)}
	}
	h["Content-Type"] = []string{"application/json"}
	h[HeaderCompanyID] = []string{ev.CompanyID}
	if ev.WebhookID != "" {
		h[HeaderWebhookID] = []string{ev.WebhookID}
	}
	h[HeaderWebhookVersion] = []string{ev.Version}
	h[HeaderAttempt] = []string{strconv.Itoa(ev.Attempt)}
	return h
}
