package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pipedrive-gateway/pipedrive-gateway/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Subject is the subject an event is published on: <prefix>.<action>.<object>.
func (r *Relay) Subject(ev *event.Event) string { return r.names.get(r.cfg.SubjectPrefix, ev).subject }

// Publish sends the event to JetStream and returns after the PubAck, or
// with an error wrapping ErrUnavailable once PUBLISH_TIMEOUT has passed or
// NATS cannot take the message; at once while the monitor knows that no
// publish can succeed (a store that keeps a write error).
func (r *Relay) Publish(ctx context.Context, ev *event.Event) (event.Ack, error) {
	if down := r.health.down.Load(); down != nil {
		return event.Ack{}, fmt.Errorf("%w: %w", ErrUnavailable, *down)
	}
	names := r.names.get(r.cfg.SubjectPrefix, ev)
	ctx, span := r.tracer.Start(ctx, names.spanName, producerSpan)
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()

	out := getMsg()
	defer putMsg(out)
	out.msg.Subject, out.msg.Data = names.subject, ev.Body
	out.fill(ev, names.ceType)
	// Set here rather than through jetstream.WithMsgID, which would
	// allocate an option and a header slice per message.
	out.set(jetstream.MsgIDHeader, ev.ID)
	// Every message carries a sampled traceparent (a consumer on the
	// OpenTelemetry defaults must record), and a NATS server that sees one
	// parses all headers of the message into a map to check for message
	// tracing: 45 allocations a message, in the gateway's own process with
	// the embedded server. This NATS-defined value turns that off; NATS's
	// own message tracing of these publishes goes with it.
	out.set(traceDestHeader, traceDestDisabled)
	// The consumer continues the trace from these headers.
	r.prop.Inject(ctx, out)
	ack, err := r.js.PublishMsg(ctx, &out.msg)
	if span.IsRecording() {
		// One SetAttributes call: each call grows the span's slice.
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs,
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "publish"),
			attribute.String("messaging.destination.name", names.subject),
			attribute.String("messaging.message.id", ev.ID),
			attribute.Int("messaging.message.body.size", len(ev.Body)),
		)
		if err == nil {
			attrs = append(attrs, attribute.Int64("messaging.nats.stream.sequence", int64(ack.Sequence)), attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
		}
		span.SetAttributes(attrs...)
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		if errors.Is(err, nats.ErrMaxPayload) {
			return event.Ack{}, fmt.Errorf("event too large for NATS: %w", err)
		}
		r.health.publishFailed(err)
		return event.Ack{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.health.published()
	return event.Ack{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

var producerSpan = trace.WithSpanKind(trace.SpanKindProducer)

// The header and value with which nats-server marks a message that it must
// not trace (server.MsgTraceDest, server.MsgTraceDestDisabled).
const (
	traceDestHeader   = "Nats-Trace-Dest"
	traceDestDisabled = "trace disabled"
)

// Headers builds the binary CloudEvents headers plus the Pipedrive specifics
// (Nats-Msg-Id and the trace context are added by Publish).
func Headers(ev *event.Event) nats.Header {
	var o outMsg
	o.msg.Header = make(nats.Header, len(o.vals))
	o.fill(ev, "com.pipedrive."+ev.Object+"."+ev.Action)
	return o.msg.Header
}
