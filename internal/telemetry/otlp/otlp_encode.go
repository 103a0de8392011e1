package otlp

import (
	"errors"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP messages an export carries, from
// opentelemetry/proto/{collector/trace,trace,common,resource}/v1/*.proto.
// Fields are written in field-number order, as the protobuf runtime does.
const (
	// ExportTraceServiceRequest
	fReqResourceSpans protowire.Number = 1

	// ResourceSpans
	fRSResource   protowire.Number = 1
	fRSScopeSpans protowire.Number = 2
	fRSSchemaURL  protowire.Number = 3

	// Resource
	fResAttributes protowire.Number = 1

	// ScopeSpans
	fSSScope     protowire.Number = 1
	fSSSpans     protowire.Number = 2
	fSSSchemaURL protowire.Number = 3

	// InstrumentationScope
	fScopeName       protowire.Number = 1
	fScopeVersion    protowire.Number = 2
	fScopeAttributes protowire.Number = 3

	// Span
	fSpanTraceID           protowire.Number = 1
	fSpanSpanID            protowire.Number = 2
	fSpanTraceState        protowire.Number = 3
	fSpanParentSpanID      protowire.Number = 4
	fSpanName              protowire.Number = 5
	fSpanKind              protowire.Number = 6
	fSpanStartTime         protowire.Number = 7 // fixed64
	fSpanEndTime           protowire.Number = 8 // fixed64
	fSpanAttributes        protowire.Number = 9
	fSpanDroppedAttributes protowire.Number = 10
	fSpanEvents            protowire.Number = 11
	fSpanDroppedEvents     protowire.Number = 12
	fSpanLinks             protowire.Number = 13
	fSpanDroppedLinks      protowire.Number = 14
	fSpanStatus            protowire.Number = 15
	fSpanFlags             protowire.Number = 16 // fixed32

	// Span.Event
	fEventTime              protowire.Number = 1 // fixed64
	fEventName              protowire.Number = 2
	fEventAttributes        protowire.Number = 3
	fEventDroppedAttributes protowire.Number = 4

	// Span.Link
	fLinkTraceID           protowire.Number = 1
	fLinkSpanID            protowire.Number = 2
	fLinkTraceState        protowire.Number = 3
	fLinkAttributes        protowire.Number = 4
	fLinkDroppedAttributes protowire.Number = 5
	fLinkFlags             protowire.Number = 6 // fixed32

	// Status
	fStatusMessage protowire.Number = 2
	fStatusCode    protowire.Number = 3

	// KeyValue
	fKVKey   protowire.Number = 1
	fKVValue protowire.Number = 2

	// AnyValue (a oneof: the member present is written even when zero)
	fAnyString protowire.Number = 1
	fAnyBool   protowire.Number = 2
	fAnyInt    protowire.Number = 3
	fAnyDouble protowire.Number = 4 // fixed64
	fAnyArray  protowire.Number = 5
	fAnyKVList protowire.Number = 6
	fAnyBytes  protowire.Number = 7

	// ArrayValue and KeyValueList
	fListValues protowire.Number = 1

	// ExportTraceServiceResponse and ExportTracePartialSuccess
	fRespPartialSuccess protowire.Number = 1
	fPartialRejected    protowire.Number = 1
	fPartialMessage     protowire.Number = 2
)

// OTLP enum values.
const (
	otlpStatusUnset = 0
	otlpStatusOK    = 1
	otlpStatusError = 2

	// SpanFlags: bits 0-7 carry the W3C trace flags, bit 8 says whether
	// the remoteness of the parent (or linked) context is known, bit 9 that
	// it is remote.
	otlpFlagHasIsRemote = 0x100
	otlpFlagIsRemote    = 0x200
)

// appendTraceRequest appends the protobuf encoding of an
// ExportTraceServiceRequest holding spans to b. Spans are grouped by
// resource, then by instrumentation scope; groups keep the order in which
// their first span comes, spans keep theirs. Nil spans are skipped; no
// spans give an empty message.
func appendTraceRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	type scopeGroup struct {
		scope instrumentation.Scope
		spans []sdktrace.ReadOnlySpan
	}
	type resourceGroup struct {
		res    *resource.Resource
		scopes []*scopeGroup
	}
	type scopeKey struct {
		res   attribute.Distinct
		scope instrumentation.Scope
	}
	var groups []*resourceGroup
	byResource := map[attribute.Distinct]*resourceGroup{}
	byScope := map[scopeKey]*scopeGroup{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		// Resources with the same attributes share one ResourceSpans,
		// described by the first of them.
		rk := s.Resource().Equivalent()
		rg := byResource[rk]
		if rg == nil {
			rg = &resourceGroup{res: s.Resource()}
			byResource[rk] = rg
			groups = append(groups, rg)
		}
		sk := scopeKey{rk, s.InstrumentationScope()}
		sg := byScope[sk]
		if sg == nil {
			sg = &scopeGroup{scope: sk.scope}
			byScope[sk] = sg
			rg.scopes = append(rg.scopes, sg)
		}
		sg.spans = append(sg.spans, s)
	}

	for _, rg := range groups {
		var rs int
		b, rs = beginMessage(b, fReqResourceSpans)
		if rg.res != nil {
			var m int
			b, m = beginMessage(b, fRSResource)
			b = appendAttributeIter(b, fResAttributes, rg.res.Iter())
			b = endMessage(b, m)
		}
		for _, sg := range rg.scopes {
			var ss int
			b, ss = beginMessage(b, fRSScopeSpans)
			if sg.scope != (instrumentation.Scope{}) {
				var m int
				b, m = beginMessage(b, fSSScope)
				b = appendString(b, fScopeName, sg.scope.Name)
				b = appendString(b, fScopeVersion, sg.scope.Version)
				b = appendAttributeIter(b, fScopeAttributes, sg.scope.Attributes.Iter())
				b = endMessage(b, m)
			}
			for _, s := range sg.spans {
				var m int
				b, m = beginMessage(b, fSSSpans)
				b = appendSpan(b, s)
				b = endMessage(b, m)
			}
			b = appendString(b, fSSSchemaURL, sg.scope.SchemaURL)
			b = endMessage(b, ss)
		}
		if rg.res != nil {
			b = appendString(b, fRSSchemaURL, rg.res.SchemaURL())
		}
		b = endMessage(b, rs)
	}
	return b
}

// appendSpan appends the fields of one Span message.
func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, fSpanTraceID, tid[:])
	b = appendBytes(b, fSpanSpanID, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, fSpanParentSpanID, psid[:])
	}
	b = appendString(b, fSpanName, s.Name())
	b = appendVarint(b, fSpanKind, uint64(otlpSpanKind(s.SpanKind())))
	b = appendFixed64(b, fSpanStartTime, unixNano(s.StartTime()))
	b = appendFixed64(b, fSpanEndTime, unixNano(s.EndTime()))
	b = appendAttributes(b, fSpanAttributes, s.Attributes())
	b = appendVarint(b, fSpanDroppedAttributes, count(s.DroppedAttributes()))
	for _, ev := range s.Events() {
		var m int
		b, m = beginMessage(b, fSpanEvents)
		b = appendFixed64(b, fEventTime, unixNano(ev.Time))
		b = appendString(b, fEventName, ev.Name)
		b = appendAttributes(b, fEventAttributes, ev.Attributes)
		b = appendVarint(b, fEventDroppedAttributes, count(ev.DroppedAttributeCount))
		b = endMessage(b, m)
	}
	b = appendVarint(b, fSpanDroppedEvents, count(s.DroppedEvents()))
	for _, l := range s.Links() {
		var m int
		b, m = beginMessage(b, fSpanLinks)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = appendBytes(b, fLinkTraceID, ltid[:])
		b = appendBytes(b, fLinkSpanID, lsid[:])
		b = appendString(b, fLinkTraceState, l.SpanContext.TraceState().String())
		b = appendAttributes(b, fLinkAttributes, l.Attributes)
		b = appendVarint(b, fLinkDroppedAttributes, count(l.DroppedAttributeCount))
		b = appendFixed32(b, fLinkFlags, otlpFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()))
		b = endMessage(b, m)
	}
	b = appendVarint(b, fSpanDroppedLinks, count(s.DroppedLinks()))
	// The status is always present, if only as an empty message.
	var m int
	b, m = beginMessage(b, fSpanStatus)
	st := s.Status()
	b = appendString(b, fStatusMessage, st.Description)
	b = appendVarint(b, fStatusCode, otlpStatusCode(st.Code))
	b = endMessage(b, m)
	return appendFixed32(b, fSpanFlags, otlpFlags(sc.TraceFlags(), parent.IsRemote()))
}

// otlpFlags gives Span.flags and Link.flags: the trace flags, and that the
// remoteness of the parent (for a span) or of the linked context is known,
// and whether it is remote.
func otlpFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | otlpFlagHasIsRemote
	if remote {
		f |= otlpFlagIsRemote
	}
	return f
}

func otlpSpanKind(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

func otlpStatusCode(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return otlpStatusOK
	case codes.Error:
		return otlpStatusError
	}
	return otlpStatusUnset
}

// unixNano gives a time as OTLP's unsigned nanoseconds; times before 1970
// (and the zero time) are 0, that is unset.
func unixNano(t time.Time) uint64 {
	return uint64(max(0, t.UnixNano()))
}

// count clamps a dropped count to the uint32 of the protocol.
func count(n int) uint64 {
	return uint64(min(max(n, 0), math.MaxUint32))
}

func appendAttributes(b []byte, num protowire.Number, kvs []attribute.KeyValue) []byte {
	for _, kv := range kvs {
		b = appendKeyValue(b, num, kv)
	}
	return b
}

func appendAttributeIter(b []byte, num protowire.Number, it attribute.Iterator) []byte {
	for it.Next() {
		b = appendKeyValue(b, num, it.Attribute())
	}
	return b
}

// appendKeyValue appends a KeyValue message as field num. Its value is
// always present, empty for an attribute.EMPTY value.
func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	b, m := beginMessage(b, num)
	b = appendString(b, fKVKey, string(kv.Key))
	b = appendAnyValue(b, fKVValue, kv.Value)
	return endMessage(b, m)
}

// appendAnyValue appends an AnyValue message as field num.
func appendAnyValue(b []byte, num protowire.Number, v attribute.Value) []byte {
	b, m := beginMessage(b, num)
	switch v.Type() {
	case attribute.EMPTY:
	case attribute.BOOL:
		b = protowire.AppendTag(b, fAnyBool, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, fAnyInt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		b = protowire.AppendString(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, fAnyBytes, protowire.BytesType)
		b = protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		b = appendArray(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		b = appendArray(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		b = appendArray(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		b = appendArray(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		b = appendArray(b, v.AsSlice(), func(v attribute.Value) attribute.Value { return v })
	case attribute.MAP:
		var l int
		b, l = beginMessage(b, fAnyKVList)
		b = appendAttributes(b, fListValues, v.AsMap())
		b = endMessage(b, l)
	default:
		// A type this encoder does not know: say so rather than drop it.
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		b = protowire.AppendString(b, "INVALID")
	}
	return endMessage(b, m)
}

// appendArray appends an ArrayValue as the array member of an AnyValue.
func appendArray[T any](b []byte, vals []T, value func(T) attribute.Value) []byte {
	b, m := beginMessage(b, fAnyArray)
	for _, v := range vals {
		b = appendAnyValue(b, fListValues, value(v))
	}
	return endMessage(b, m)
}

// beginMessage appends the tag of an embedded message and one byte for its
// length, and returns where the message's content starts, for endMessage.
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 0)
	return b, len(b)
}

// endMessage writes the length of the message whose content starts at
// start, moving the content when the length takes more than one byte.
func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if w := protowire.SizeVarint(uint64(n)); w > 1 {
		b = append(b, make([]byte, w-1)...)
		copy(b[start+w-1:], b[start:start+n])
	}
	protowire.AppendVarint(b[:start-1], uint64(n))
	return b
}

// The append helpers below leave out a zero value, as proto3 does for
// fields without presence.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

var errBadResponse = errors.New("malformed ExportTraceServiceResponse")

// decodePartialSuccess reads the partial_success of an
// ExportTraceServiceResponse: how many spans the collector rejected and
// why. Unknown fields are skipped.
func decodePartialSuccess(b []byte) (rejected int64, msg string, err error) {
	err = walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fRespPartialSuccess || typ != protowire.BytesType {
			return nil
		}
		return walkFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == fPartialRejected && typ == protowire.VarintType:
				n, l := protowire.ConsumeVarint(v)
				if l < 0 {
					return errBadResponse
				}
				rejected = int64(n)
			case num == fPartialMessage && typ == protowire.BytesType:
				msg = string(v)
			}
			return nil
		})
	})
	return rejected, msg, err
}

// walkFields calls fn with each field of the message b: its number, wire
// type and value (the content for length-delimited fields, the raw bytes
// otherwise).
func walkFields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errBadResponse
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return errBadResponse
		}
		v := b[:n]
		if typ == protowire.BytesType {
			var l int
			v, l = protowire.ConsumeBytes(v)
			if l < 0 {
				return errBadResponse
			}
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
