package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
)

// ids makes trace and span ids from math/rand/v2's per-thread generator.
// The SDK's default generator serialises every span on one mutex, which
// shows at a few thousand requests a second on two cores; ids need to be
// unique, not secret.
type ids struct{}

func (ids) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	var t trace.TraceID
	for t == (trace.TraceID{}) {
		binary.NativeEndian.PutUint64(t[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t, newSpanID()
}

func (ids) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var s trace.SpanID
	for s == (trace.SpanID{}) {
		binary.NativeEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}
