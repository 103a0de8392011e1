package telemetry

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// deferredSampling is the W3C trace-context propagator of a gateway that
// exports no spans. Its own spans are never sampled, which keeps them
// nearly free; but the context it writes onto messages says "sampled"
// (flags 01). Without that, a consumer that does export, with the
// OpenTelemetry SDK's default sampler (parent-based), would follow a
// decision the gateway never really made and record nothing. What it
// means: the consumer's trace starts at a parent span that no backend
// holds (the gateway's publish span, never exported), and the sampling
// decision is the consumer's. A gateway that exports writes its real
// decision, so that its traces and the consumers' stay whole.
type deferredSampling struct{ propagation.TraceContext }

// Inject writes traceparent (and tracestate) as TraceContext does, with
// the sampled flag set; one allocation, like TraceContext's.
func (deferredSampling) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	if ts := sc.TraceState().String(); ts != "" {
		carrier.Set("tracestate", ts)
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [55]byte // 00-<32 hex>-<16 hex>-01
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	copy(b[52:], "-01")
	carrier.Set("traceparent", string(b[:]))
}
