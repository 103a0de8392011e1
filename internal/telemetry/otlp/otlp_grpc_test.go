package otlp

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the collector decompresses
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

// grpcCall is one Export call a grpcCollector served.
type grpcCall struct {
	req         *coltracepb.ExportTraceServiceRequest
	md          metadata.MD
	compression string
	deadline    time.Duration // 0 without one
	at          time.Time
}

// grpcCollector is a real grpc-go TraceService on 127.0.0.1 that records
// calls and answers the nth (from 1) with reply, or OK.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	calls []grpcCall
	// compression of the call being served, from the stats handler.
	compression map[string]string
	reply       func(n int) (*coltracepb.ExportTraceServiceResponse, error)
	addr        string
}

type compressionKey struct{}

// startGRPCCollector serves on 127.0.0.1, with TLS when cert is set.
func startGRPCCollector(t *testing.T, cert *tls.Certificate, reply func(n int) (*coltracepb.ExportTraceServiceResponse, error)) *grpcCollector {
	t.Helper()
	c := &grpcCollector{reply: reply}
	opts := []grpc.ServerOption{grpc.StatsHandler(c)}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	}
	srv := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(srv, c)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c
}

func (c *grpcCollector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	call := grpcCall{req: req, md: md, at: time.Now()}
	if comp, ok := ctx.Value(compressionKey{}).(*string); ok {
		call.compression = *comp
	}
	if d, ok := ctx.Deadline(); ok {
		call.deadline = time.Until(d)
	}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	n := len(c.calls)
	c.mu.Unlock()
	if c.reply != nil {
		return c.reply(n)
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// The stats handler tells the compression a request arrived with.
func (c *grpcCollector) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, compressionKey{}, new(string))
}

func (c *grpcCollector) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok {
		if comp, ok := ctx.Value(compressionKey{}).(*string); ok {
			*comp = h.Compression
		}
	}
}

func (c *grpcCollector) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (c *grpcCollector) HandleConn(context.Context, stats.ConnStats) {}

func (c *grpcCollector) served() []grpcCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]grpcCall(nil), c.calls...)
}

// TestOTLPGRPC: over plaintext HTTP/2 and TLS, with and without gzip, a
// grpc-go collector receives the request the official exporter encodes,
// the headers as metadata and a deadline from TIMEOUT.
func TestOTLPGRPC(t *testing.T) {
	t.Parallel()
	spans := richSpans(t)
	want := canonical(officialRequest(t, spans, false))
	ca := newTestCA(t)
	serverCert, _, _ := ca.issue(t, "collector", false)
	for _, tc := range []struct {
		name     string
		tls      bool
		endpoint func(addr string) string
		gzip     bool
	}{
		{"h2c", false, func(a string) string { return "http://" + a }, false},
		{"h2c_gzip", false, func(a string) string { return "http://" + a }, true},
		{"tls", true, func(a string) string { return "https://" + a }, false},
		{"tls_gzip", true, func(a string) string { return "https://" + a }, true},
		{"tls_host_port", true, func(a string) string { return a }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cert *tls.Certificate
			if tc.tls {
				cert = &serverCert
			}
			c := startGRPCCollector(t, cert, nil)
			env := map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":       tc.endpoint(c.addr),
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer%20token,x-tenant=acme",
				"OTEL_EXPORTER_OTLP_TIMEOUT":        "7000",
			}
			if tc.tls {
				env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = ca.pemFile
			}
			if tc.gzip {
				env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
			}
			e := fastExporter(t, true, env)
			if err := e.ExportSpans(exportCtx(t), spans); err != nil {
				t.Fatal(err)
			}
			calls := c.served()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			call := calls[0]
			got := proto.Clone(call.req).(*coltracepb.ExportTraceServiceRequest)
			checkLinkTraceState(t, spans, got)
			if !proto.Equal(canonical(got), want) {
				t.Errorf("request differs from the official encoding (-official +ours):\n%s", gocmp.Diff(want, canonical(got), protocmp.Transform()))
			}
			if a, x := call.md.Get("authorization"), call.md.Get("x-tenant"); len(a) != 1 || a[0] != "Bearer token" || len(x) != 1 || x[0] != "acme" {
				t.Errorf("metadata %v", call.md)
			}
			if ua := call.md.Get("user-agent"); len(ua) != 1 || !strings.HasPrefix(ua[0], "pipedrive-gateway/test") {
				t.Errorf("user-agent %q", ua)
			}
			if wantComp := map[bool]string{true: "gzip"}[tc.gzip]; call.compression != wantComp {
				t.Errorf("compression %q, want %q", call.compression, wantComp)
			}
			if call.deadline <= 0 || call.deadline > 7*time.Second {
				t.Errorf("deadline in %v, want within the 7 s timeout", call.deadline)
			}
		})
	}
}

func TestOTLPGRPCStatus(t *testing.T) {
	t.Parallel()
	retryInfo := func(c codes.Code) error {
		st, err := status.New(c, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(200 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		name      string
		first     error
		wantCalls int
		wantErr   string
	}{
		{"unavailable_then_ok", status.Error(codes.Unavailable, "restarting"), 2, ""},
		{"deadline_exceeded", status.Error(codes.DeadlineExceeded, "late"), 2, ""},
		{"aborted", status.Error(codes.Aborted, "conflict"), 2, ""},
		{"unavailable_retry_info", retryInfo(codes.Unavailable), 2, ""},
		{"resource_exhausted_retry_info", retryInfo(codes.ResourceExhausted), 2, ""},
		{"resource_exhausted", status.Error(codes.ResourceExhausted, "full"), 1, "RESOURCE_EXHAUSTED: full"},
		{"invalid_argument", status.Error(codes.InvalidArgument, "bad span: id 50%"), 1, "INVALID_ARGUMENT: bad span: id 50%"},
		{"unauthenticated", status.Error(codes.Unauthenticated, "who"), 1, "UNAUTHENTICATED: who"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startGRPCCollector(t, nil, func(n int) (*coltracepb.ExportTraceServiceResponse, error) {
				if n == 1 {
					return nil, tc.first
				}
				return &coltracepb.ExportTraceServiceResponse{}, nil
			})
			e := fastExporter(t, true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + c.addr})
			err := e.ExportSpans(exportCtx(t), grpcSpans(t))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			calls := c.served()
			if len(calls) != tc.wantCalls {
				t.Fatalf("%d calls, want %d", len(calls), tc.wantCalls)
			}
			// The delay of a RetryInfo is waited, however short the back-off.
			if strings.Contains(tc.name, "retry_info") {
				if gap := calls[1].at.Sub(calls[0].at); gap < 200*time.Millisecond {
					t.Errorf("retried after %v, want the RetryInfo's 200ms at least", gap)
				}
			}
		})
	}
}

// TestOTLPGRPCUnreachable: a refused connection is retried, as grpc-go's
// UNAVAILABLE, until the retry time runs out.
func TestOTLPGRPCUnreachable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	e := fastExporter(t, true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr})
	e.retryFor = 30 * time.Millisecond
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("err = %v, want retries that give up", err)
	}
}

func TestOTLPGRPCPartialSuccess(t *testing.T) {
	got := catchOTelErrors(t)
	for _, compress := range []string{"none", "gzip"} {
		c := startGRPCCollector(t, nil, func(int) (*coltracepb.ExportTraceServiceResponse, error) {
			return partialSuccess(2, "unknown attribute"), nil
		})
		e := fastExporter(t, true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + c.addr, "OTEL_EXPORTER_OTLP_COMPRESSION": compress})
		if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
			t.Fatal(err)
		}
	}
	errs := got()
	if len(errs) != 2 {
		t.Fatalf("reported %v, want two partial successes", errs)
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), "2 spans rejected: unknown attribute") {
			t.Errorf("reported %v", err)
		}
	}
}
