package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// richSpans covers what an exporter has to carry: every attribute type
// (zero values and nesting included), events and links with attributes,
// trace state, remote and local parents and links, every span kind,
// statuses, dropped counts, three resources (one nil) and three scopes
// (one the zero scope), interleaved so that grouping has work to do.
func richSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	ts, err := trace.ParseTraceState("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	if err != nil {
		t.Fatal(err)
	}
	linkTS, err := trace.ParseTraceState("vendor=link-state")
	if err != nil {
		t.Fatal(err)
	}
	tid := func(b byte) trace.TraceID { return trace.TraceID{b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, b} }
	sid := func(b byte) trace.SpanID { return trace.SpanID{b, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, b} }
	sc := func(tb, sb byte, flags trace.TraceFlags, state trace.TraceState, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid(tb), SpanID: sid(sb), TraceFlags: flags, TraceState: state, Remote: remote})
	}
	all := []attribute.KeyValue{
		attribute.Bool("bool", true),
		attribute.Bool("bool.false", false),
		attribute.Int64("int", -42),
		attribute.Int64("int.zero", 0),
		attribute.Int("int.big", 1<<62),
		attribute.Float64("float", 3.25),
		attribute.Float64("float.zero", 0),
		attribute.String("string", "héllo"),
		attribute.String("string.empty", ""),
		attribute.BoolSlice("bools", []bool{true, false, true}),
		attribute.Int64Slice("ints", []int64{1, -2, 0, 1 << 40}),
		attribute.Float64Slice("floats", []float64{0.5, -1.5, 0}),
		attribute.StringSlice("strings", []string{"a", "", "c"}),
		attribute.StringSlice("strings.empty", []string{}),
		attribute.ByteSlice("bytes", []byte{0, 1, 0xff}),
		attribute.ByteSlice("bytes.empty", []byte{}),
		attribute.Slice("slice", attribute.StringValue("x"), attribute.Int64Value(7), attribute.Value{},
			attribute.SliceValue(attribute.BoolValue(false)), attribute.MapValue(attribute.String("k", "v"))),
		attribute.Map("map", attribute.Int("n", 1), attribute.Map("inner", attribute.Float64("f", 2)),
			attribute.StringSlice("list", []string{"q"})),
		{Key: "empty"},
		attribute.String(strings.Repeat("long", 40), strings.Repeat("value ", 50)),
	}
	res1 := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "pipedrive-gateway"), attribute.Int("replica", 2), attribute.StringSlice("zones", []string{"a", "b"}))
	res2 := resource.NewSchemaless(attribute.String("service.name", "other"), attribute.Bool("canary", true))
	scope1 := instrumentation.Scope{Name: "github.com/pipedrive-gateway/webhook", Version: "1.2.3",
		SchemaURL: "https://opentelemetry.io/schemas/1.24.0", Attributes: attribute.NewSet(attribute.String("scope.attr", "a"), attribute.Int64("n", 7))}
	scope2 := instrumentation.Scope{Name: "github.com/pipedrive-gateway/publish", Version: "0.1.0"}
	at := func(s int) time.Time { return time.Unix(1_700_000_000+int64(s), 123_456_789) }
	stubs := tracetest.SpanStubs{
		{
			Name:        "webhook",
			SpanContext: sc(1, 1, trace.FlagsSampled, ts, false),
			Parent:      sc(1, 0xf1, trace.FlagsSampled, ts, true),
			SpanKind:    trace.SpanKindServer,
			StartTime:   at(0), EndTime: at(1),
			Attributes: all,
			Events: []sdktrace.Event{
				{Name: "received", Time: at(0), Attributes: all[:5]},
				{Name: "dropped some", Time: at(1), Attributes: []attribute.KeyValue{attribute.String("why", "limit")}, DroppedAttributeCount: 3},
				{Name: "bare", Time: at(1)},
			},
			Links: []sdktrace.Link{
				{SpanContext: sc(9, 9, trace.FlagsSampled, linkTS, true), Attributes: all[5:9], DroppedAttributeCount: 2},
				{SpanContext: sc(8, 8, 0, trace.TraceState{}, false)},
			},
			Status:            sdktrace.Status{Code: codes.Error, Description: "boom"},
			DroppedAttributes: 4, DroppedEvents: 5, DroppedLinks: 6,
			Resource: res1, InstrumentationScope: scope1,
		},
		{
			Name:        "publish",
			SpanContext: sc(2, 2, trace.FlagsSampled, trace.TraceState{}, false),
			Parent:      sc(2, 0xf2, trace.FlagsSampled, trace.TraceState{}, false),
			SpanKind:    trace.SpanKindClient,
			StartTime:   at(2), EndTime: at(3),
			Attributes: []attribute.KeyValue{attribute.String("messaging.system", "nats")},
			Status:     sdktrace.Status{Code: codes.Ok},
			Resource:   res2, InstrumentationScope: scope2,
		},
		{
			Name: "produce", SpanContext: sc(3, 3, 0, trace.TraceState{}, false), SpanKind: trace.SpanKindProducer,
			StartTime: at(4), EndTime: at(5), Resource: res1, InstrumentationScope: scope2,
		},
		{
			Name: "consume", SpanContext: sc(4, 4, trace.FlagsSampled, ts, false), Parent: sc(4, 0xf4, 0, trace.TraceState{}, true),
			SpanKind: trace.SpanKindConsumer, StartTime: at(6), EndTime: at(7), Resource: res1, InstrumentationScope: scope1,
			Links: []sdktrace.Link{{SpanContext: sc(7, 7, trace.FlagsSampled, linkTS, false), Attributes: []attribute.KeyValue{attribute.Int("i", 1)}}},
		},
		{
			Name: "internal", SpanContext: sc(5, 5, trace.FlagsSampled, trace.TraceState{}, false), SpanKind: trace.SpanKindInternal,
			StartTime: at(8), EndTime: at(9), Resource: res2,
		},
		{
			Name: "unspecified", SpanContext: sc(6, 6, trace.FlagsSampled, trace.TraceState{}, false), SpanKind: trace.SpanKindUnspecified,
			Status: sdktrace.Status{Code: codes.Unset, Description: "ignored"}, Resource: res1, InstrumentationScope: scope1,
		},
		{
			Name: "no resource", SpanContext: sc(10, 10, trace.FlagsSampled, trace.TraceState{}, false), SpanKind: trace.SpanKindInternal,
			StartTime: at(10), EndTime: at(11), InstrumentationScope: scope2,
		},
	}
	return stubs.Snapshots()
}

// recorded is one request a test collector received.
type recorded struct {
	header http.Header
	body   []byte // decompressed
	// peer is the client certificate's subject, for mutual TLS.
	peer string
	at   time.Time
}

// httpCollector records OTLP/HTTP requests and answers each with reply
// (the nth request, from 1), or 200 with an empty body.
type httpCollector struct {
	mu    sync.Mutex
	reqs  []recorded
	reply func(n int, w http.ResponseWriter, r *http.Request)
}

func (c *httpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	rec := recorded{header: r.Header.Clone(), body: body, at: time.Now()}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		rec.peer = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, rec)
	n := len(c.reqs)
	c.mu.Unlock()
	if c.reply != nil {
		c.reply(n, w, r)
	}
}

func (c *httpCollector) requests() []recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

func unmarshalRequest(t *testing.T, body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		t.Fatalf("unmarshal ExportTraceServiceRequest: %v", err)
	}
	return req
}

// officialRequest is what the official otlptracehttp exporter sends for
// spans.
func officialRequest(t *testing.T, spans []sdktrace.ReadOnlySpan, compress bool) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	c := &httpCollector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(srv.URL + "/v1/traces"), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
	if compress {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 1 {
		t.Fatalf("official exporter made %d requests, want 1", len(reqs))
	}
	return unmarshalRequest(t, reqs[0].body)
}

// canonical orders the resource spans, which the official exporter sends
// in map order (the protocol gives their order no meaning), by their first
// span.
func canonical(req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceRequest {
	req = proto.Clone(req).(*coltracepb.ExportTraceServiceRequest)
	first := func(i int) []byte { return req.ResourceSpans[i].ScopeSpans[0].Spans[0].SpanId }
	idx := make([]int, len(req.ResourceSpans))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(first(a), first(b)) })
	sorted := slices.Clone(req.ResourceSpans)
	for i, j := range idx {
		sorted[i] = req.ResourceSpans[j]
	}
	req.ResourceSpans = sorted
	return req
}

// checkLinkTraceState checks that ours carries each link's trace state,
// which the official exporter leaves out, and clears it for comparison.
func checkLinkTraceState(t *testing.T, spans []sdktrace.ReadOnlySpan, req *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	want := map[string][]string{}
	for _, s := range spans {
		sid := s.SpanContext().SpanID()
		for _, l := range s.Links() {
			want[string(sid[:])] = append(want[string(sid[:])], l.SpanContext.TraceState().String())
		}
	}
	seen := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				var got []string
				for _, l := range s.Links {
					got = append(got, l.TraceState)
					l.TraceState = ""
					seen++
				}
				if !slices.Equal(got, want[string(s.SpanId)]) {
					t.Errorf("span %q: link trace states %q, want %q", s.Name, got, want[string(s.SpanId)])
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no links in the request")
	}
}

// TestOTLPEncodeBytesMatchOfficial: where the official exporter's output
// is deterministic (one resource) and carries all we do (no links), the
// bytes are the same: fields come in the same order and with the same
// presence.
func TestOTLPEncodeBytesMatchOfficial(t *testing.T) {
	t.Parallel()
	var spans []sdktrace.ReadOnlySpan
	for _, s := range richSpans(t) {
		if s.Resource() != nil && s.Resource().SchemaURL() != "" {
			stub := tracetest.SpanStubFromReadOnlySpan(s)
			stub.Links = nil
			spans = append(spans, stub.Snapshot())
		}
	}
	c := &httpCollector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	official, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer official.Shutdown(ctx)
	if err := official.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	if got := appendTraceRequest(nil, spans); !bytes.Equal(got, reqs[0].body) {
		t.Errorf("encoding differs from the official one:\nofficial %x\nours     %x", reqs[0].body, got)
	}
}

// TestOTLPEncodeGroupsInOrder: scopes within a resource come in the order
// of their first span, and spans keep theirs.
func TestOTLPEncodeGroupsInOrder(t *testing.T) {
	t.Parallel()
	req := unmarshalRequest(t, appendTraceRequest(nil, richSpans(t)))
	var got []string
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				got = append(got, ss.GetScope().GetName()+"/"+s.Name)
			}
		}
	}
	const w, p = "github.com/pipedrive-gateway/webhook/", "github.com/pipedrive-gateway/publish/"
	want := []string{w + "webhook", w + "consume", w + "unspecified", p + "produce", p + "publish", "/internal", p + "no resource"}
	if !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	if len(appendTraceRequest(nil, nil)) != 0 || len(appendTraceRequest(nil, []sdktrace.ReadOnlySpan{nil})) != 0 {
		t.Error("no spans give a non-empty request")
	}
}

// TestOTLPEncodeLength: messages whose length takes one, two and three
// bytes of varint are framed right.
func TestOTLPEncodeLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 70000} {
		spans := tracetest.SpanStubs{{Name: strings.Repeat("x", n), SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})}}.Snapshots()
		req := unmarshalRequest(t, appendTraceRequest(nil, spans))
		if got := req.ResourceSpans[0].ScopeSpans[0].Spans[0].Name; len(got) != n {
			t.Errorf("name of %d bytes came back with %d", n, len(got))
		}
	}
}

// TestOTLPEncodeMatchesOfficial: the encoded request equals, as protobuf,
// what the official exporter sends for the same spans, once the resource
// spans are in the same order and the link trace states, which only ours
// carries, are checked and set aside.
func TestOTLPEncodeMatchesOfficial(t *testing.T) {
	t.Parallel()
	spans := richSpans(t)
	want := canonical(officialRequest(t, spans, false))
	got := unmarshalRequest(t, appendTraceRequest(nil, spans))
	checkLinkTraceState(t, spans, got)
	if !proto.Equal(canonical(got), want) {
		t.Errorf("encoding differs from the official one (-official +ours):\n%s", gocmp.Diff(want, canonical(got), protocmp.Transform()))
	}
}

func TestOTLPDecodePartialSuccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		resp     *coltracepb.ExportTraceServiceResponse
		rejected int64
		msg      string
	}{
		{&coltracepb.ExportTraceServiceResponse{}, 0, ""},
		{&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{}}, 0, ""},
		{&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 12, ErrorMessage: "too big"}}, 12, "too big"},
		{&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{ErrorMessage: "warning only"}}, 0, "warning only"},
	} {
		b, err := proto.Marshal(tc.resp)
		if err != nil {
			t.Fatal(err)
		}
		// A field this decoder does not know is skipped.
		b = append(b, 0x7a, 2, 'h', 'i') // field 15, length-delimited
		n, msg, err := decodePartialSuccess(b)
		if err != nil || n != tc.rejected || msg != tc.msg {
			t.Errorf("%v: got %d, %q, %v", tc.resp, n, msg, err)
		}
	}
	if _, _, err := decodePartialSuccess([]byte{0x0a, 5, 1}); err == nil {
		t.Error("a truncated response decoded")
	}
}
