package otlp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

func fastExporter(t *testing.T, grpc bool, env map[string]string) *Exporter {
	t.Helper()
	e, err := New(func(k string) string { return env[k] }, grpc, "pipedrive-gateway/test (OTLP trace exporter)")
	if err != nil {
		t.Fatal(err)
	}
	e.backoffInitial, e.backoffMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

func exportCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestOTLPHTTPMatchesOfficial: the request body equals what the official
// otlptracehttp exporter sends for the same spans, with and without gzip.
func TestOTLPHTTPMatchesOfficial(t *testing.T) {
	t.Parallel()
	spans := richSpans(t)
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "none", true: "gzip"}[compress], func(t *testing.T) {
			t.Parallel()
			want := canonical(officialRequest(t, spans, compress))
			c := &httpCollector{}
			srv := httptest.NewServer(c)
			defer srv.Close()
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}
			if compress {
				env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
			}
			e := fastExporter(t, false, env)
			if err := e.ExportSpans(exportCtx(t), spans); err != nil {
				t.Fatal(err)
			}
			reqs := c.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if got := reqs[0].header.Get("Content-Encoding") == "gzip"; got != compress {
				t.Errorf("Content-Encoding %q, compress %v", reqs[0].header.Get("Content-Encoding"), compress)
			}
			if ct := reqs[0].header.Get("Content-Type"); ct != "application/x-protobuf" {
				t.Errorf("Content-Type %q", ct)
			}
			got := unmarshalRequest(t, reqs[0].body)
			if n := len(got.ResourceSpans); n != 3 {
				t.Errorf("%d resource spans, want 3", n)
			}
			checkLinkTraceState(t, spans, got)
			// Ours keeps the order of the spans; only the official's needs
			// sorting.
			if !proto.Equal(got, canonical(got)) {
				t.Error("resource spans not in the order of their first span")
			}
			if !proto.Equal(got, want) {
				t.Errorf("request differs from the official exporter's (-official +ours):\n%s", gocmp.Diff(want, got, protocmp.Transform()))
			}
		})
	}
}

// grpcSpans is a small batch for the protocol tests.
func grpcSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	return richSpans(t)[:2]
}

func TestOTLPHTTPHeaders(t *testing.T) {
	t.Parallel()
	c := &httpCollector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	e := fastExporter(t, false, map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/custom/path",
		"OTEL_EXPORTER_OTLP_HEADERS":         "api-key=secret%20value, x-tenant = acme ,",
	})
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	h := reqs[0].header
	if h.Get("Api-Key") != "secret value" || h.Get("X-Tenant") != "acme" {
		t.Errorf("headers %v", h)
	}
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "pipedrive-gateway/test") {
		t.Errorf("User-Agent %q", ua)
	}
}

func TestOTLPHTTPRetry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		retryAfter string
		wantCalls  int
		wantGap    time.Duration // the least time between the calls
		wantErr    string
	}{
		{"503_retry_after_0", 503, "0", 2, 0, ""},
		{"503_retry_after_past_date", 503, time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 2, 0, ""},
		{"503_retry_after_1", 503, "1", 2, time.Second, ""},
		{"503", 503, "", 2, 0, ""},
		{"429", 429, "", 2, 0, ""},
		{"502", 502, "", 2, 0, ""},
		{"504", 504, "", 2, 0, ""},
		{"400", 400, "", 1, 0, "400 Bad Request: bad spans"},
		{"500", 500, "", 1, 0, "500 Internal Server Error: bad spans"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &httpCollector{reply: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, "  bad spans\n")
				}
			}}
			srv := httptest.NewServer(c)
			defer srv.Close()
			e := fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
			err := e.ExportSpans(exportCtx(t), grpcSpans(t))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			reqs := c.requests()
			if len(reqs) != tc.wantCalls {
				t.Fatalf("%d requests, want %d", len(reqs), tc.wantCalls)
			}
			if tc.wantGap > 0 {
				if gap := reqs[1].at.Sub(reqs[0].at); gap < tc.wantGap {
					t.Errorf("retried after %v, want Retry-After's %v at least", gap, tc.wantGap)
				}
			}
		})
	}
}

// TestOTLPRetryGivesUp: retries end with retryFor, and when the next
// attempt would come after the context's deadline.
func TestOTLPRetryGivesUp(t *testing.T) {
	t.Parallel()
	c := &httpCollector{reply: func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }}
	srv := httptest.NewServer(c)
	defer srv.Close()

	e := fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	e.retryFor = 20 * time.Millisecond
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("err = %v, want giving up", err)
	}

	e = fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	e.backoffInitial, e.retryFor = time.Hour, 2*time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := len(c.requests())
	err := e.ExportSpans(ctx, grpcSpans(t))
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("err = %v, want giving up before the deadline", err)
	}
	if ctx.Err() != nil {
		t.Error("waited for the deadline instead of giving up")
	}
	if n := len(c.requests()) - before; n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestOTLPAttemptTimeout: TIMEOUT bounds each attempt, and an attempt that
// ran out of time is retried.
func TestOTLPAttemptTimeout(t *testing.T) {
	t.Parallel()
	c := &httpCollector{reply: func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
		}
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	e := fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "100"})
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(c.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// otelErrors catches what is reported to the OpenTelemetry error handler
// while a test runs; such tests do not run in parallel.
var otelErrors struct {
	once sync.Once
	mu   sync.Mutex
	sink *[]error
}

type otelErrorSink struct{}

func (otelErrorSink) Handle(err error) {
	otelErrors.mu.Lock()
	defer otelErrors.mu.Unlock()
	if otelErrors.sink == nil {
		log.Print(err)
		return
	}
	*otelErrors.sink = append(*otelErrors.sink, err)
}

func catchOTelErrors(t *testing.T) func() []error {
	otelErrors.once.Do(func() { otel.SetErrorHandler(otelErrorSink{}) })
	var errs []error
	otelErrors.mu.Lock()
	otelErrors.sink = &errs
	otelErrors.mu.Unlock()
	t.Cleanup(func() {
		otelErrors.mu.Lock()
		otelErrors.sink = nil
		otelErrors.mu.Unlock()
	})
	return func() []error {
		otelErrors.mu.Lock()
		defer otelErrors.mu.Unlock()
		return slices.Clone(errs)
	}
}

func partialSuccess(rejected int64, msg string) *coltracepb.ExportTraceServiceResponse {
	return &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: msg}}
}

func TestOTLPHTTPPartialSuccess(t *testing.T) {
	got := catchOTelErrors(t)
	body, err := proto.Marshal(partialSuccess(3, "spans too old"))
	if err != nil {
		t.Fatal(err)
	}
	c := &httpCollector{reply: func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(body)
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	e := fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
		t.Fatal(err)
	}
	errs := got()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "3 spans rejected: spans too old") {
		t.Errorf("reported %v, want the partial success", errs)
	}
}

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemFile string
	dir     string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := &testCA{cert: cert, key: key, dir: dir, pemFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, ca.pemFile, "CERTIFICATE", der)
	return ca
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue makes a server certificate for 127.0.0.1 or a client one named
// name, and writes it and its key to PEM files.
func (ca *testCA) issue(t *testing.T, name string, client bool) (cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses, tmpl.DNSNames = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOTLPHTTPTLS: an https endpoint is verified against CERTIFICATE; a
// certificate the exporter cannot verify fails at once, without retries.
func TestOTLPHTTPTLS(t *testing.T) {
	t.Parallel()
	c := &httpCollector{}
	srv := httptest.NewUnstartedServer(c)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw)

	e := fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_CERTIFICATE": caFile})
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(c.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	e = fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	e.backoffInitial = 5 * time.Second
	err := e.ExportSpans(exportCtx(t), grpcSpans(t))
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("err = %v, want a certificate verification error", err)
	}
}

// TestOTLPHTTPMutualTLS: CLIENT_CERTIFICATE and CLIENT_KEY are presented to
// a collector that requires a client certificate.
func TestOTLPHTTPMutualTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	serverCert, _, _ := ca.issue(t, "collector", false)
	_, clientCert, clientKey := ca.issue(t, "gateway", true)
	c := &httpCollector{}
	srv := httptest.NewUnstartedServer(c)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool()}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           srv.URL,
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        ca.pemFile,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": clientCert,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":         clientKey,
	}
	e := fastExporter(t, false, env)
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 1 || reqs[0].peer != "gateway" {
		t.Fatalf("requests %d, client certificate %q", len(reqs), reqs[0].peer)
	}

	delete(env, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
	delete(env, "OTEL_EXPORTER_OTLP_CLIENT_KEY")
	e = fastExporter(t, false, env)
	e.backoffInitial = 5 * time.Second
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err == nil || strings.Contains(err.Error(), "giving up") {
		t.Errorf("err = %v, want the refusal, not retried", err)
	}
	if n := len(c.requests()); n != 1 {
		t.Errorf("collector served %d requests, want only the authenticated one", n)
	}
}

func TestOTLPShutdown(t *testing.T) {
	t.Parallel()
	c := &httpCollector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	e := fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.ExportSpans(ctx, grpcSpans(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("export with a cancelled context: %v", err)
	}
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(exportCtx(t), grpcSpans(t)); !errors.Is(err, errExporterShutdown) {
		t.Errorf("export after shutdown: %v", err)
	}
	if n := len(c.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	// Shutdown ends an export that is waiting to retry.
	c.reply = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }
	e = fastExporter(t, false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	e.backoffInitial = time.Second
	done := make(chan error, 1)
	go func() { done <- e.ExportSpans(exportCtx(t), grpcSpans(t)) }()
	for len(c.requests()) < 2 {
		time.Sleep(time.Millisecond)
	}
	_ = e.Shutdown(context.Background())
	if err := <-done; !errors.Is(err, errExporterShutdown) {
		t.Errorf("export interrupted by shutdown: %v", err)
	}
}

func TestOTLPConfig(t *testing.T) {
	t.Parallel()
	type want struct {
		url     string
		tls     bool
		headers http.Header
		timeout time.Duration
		gzip    bool
	}
	const grpcPath = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	cases := []struct {
		name string
		grpc bool
		env  map[string]string
		want want
	}{
		{"http_generic", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want{url: "http://collector:4318/v1/traces", timeout: 10 * time.Second}},
		{"http_generic_slash", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
			want{url: "http://collector:4318/v1/traces", timeout: 10 * time.Second}},
		{"http_generic_path", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector/otlp/"},
			want{url: "https://collector/otlp/v1/traces", tls: true, timeout: 10 * time.Second}},
		{"http_traces_as_is", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector:4318/custom"},
			want{url: "https://collector:4318/custom", tls: true, timeout: 10 * time.Second}},
		{"http_traces_root", false, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318"},
			want{url: "http://collector:4318/", timeout: 10 * time.Second}},
		{"http_scheme_case", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "HTTP://collector:4318"},
			want{url: "http://collector:4318/v1/traces", timeout: 10 * time.Second}},
		{"http_host_port", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
			want{url: "http://collector:4318/v1/traces", timeout: 10 * time.Second}},
		{"grpc_http", true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317/ignored"},
			want{url: "http://collector:4317" + grpcPath, timeout: 10 * time.Second}},
		{"grpc_https", true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
			want{url: "https://collector:4317" + grpcPath, tls: true, timeout: 10 * time.Second}},
		{"grpc_host_port", true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"},
			want{url: "https://collector:4317" + grpcPath, tls: true, timeout: 10 * time.Second}},
		{"grpc_host_port_insecure", true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "TRUE"},
			want{url: "http://collector:4317" + grpcPath, timeout: 10 * time.Second}},
		{"grpc_traces_insecure_wins", true, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "127.0.0.1:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "false"},
			want{url: "https://127.0.0.1:4317" + grpcPath, tls: true, timeout: 10 * time.Second}},
		{"grpc_traces_endpoint_as_is", true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:2"},
			want{url: "http://b:2" + grpcPath, timeout: 10 * time.Second}},
		{"settings", false, map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":    "http://c:4318",
			"OTEL_EXPORTER_OTLP_HEADERS":     " a = b , c=d%3De%20f,,",
			"OTEL_EXPORTER_OTLP_TIMEOUT":     "2500",
			"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
		}, want{url: "http://c:4318/v1/traces", headers: http.Header{"A": {"b"}, "C": {"d=e f"}}, timeout: 2500 * time.Millisecond, gzip: true}},
		{"traces_settings_win", false, map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":           "http://c:4318",
			"OTEL_EXPORTER_OTLP_HEADERS":            "a=b",
			"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "x=y",
			"OTEL_EXPORTER_OTLP_TIMEOUT":            "2500",
			"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "0",
			"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
			"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
		}, want{url: "http://c:4318/v1/traces", headers: http.Header{"X": {"y"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := readOTLPConfig(func(k string) string { return tc.env[k] }, tc.grpc)
			if err != nil {
				t.Fatal(err)
			}
			got := want{url: cfg.url, tls: cfg.tls != nil, headers: cfg.headers, timeout: cfg.timeout, gzip: cfg.gzip}
			if diff := gocmp.Diff(tc.want, got, gocmp.AllowUnexported(want{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOTLPConfigErrors(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	_, clientCert, clientKey := ca.issue(t, "gateway", true)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const ep = "OTEL_EXPORTER_OTLP_ENDPOINT"
	cases := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"timeout_text", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"traces_timeout_negative", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "-1"}, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"},
		{"compression", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION"},
		{"traces_compression", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "deflate"}, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},
		{"certificate_missing", map[string]string{ep: "https://c", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{"certificate_not_pem", map[string]string{ep: "https://c", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": notPEM}, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"},
		{"client_key_missing", map[string]string{ep: "https://c", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": clientCert}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{"client_cert_missing", map[string]string{ep: "https://c", "OTEL_EXPORTER_OTLP_CLIENT_KEY": clientKey}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
		{"client_pair_mismatch", map[string]string{ep: "https://c", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": clientCert, "OTEL_EXPORTER_OTLP_CLIENT_KEY": notPEM}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{"headers", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"headers_escape", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=%zz"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{"headers_name", map[string]string{ep: "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "bad key=v"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"endpoint_scheme", map[string]string{ep: "ftp://c"}, ep},
		{"traces_endpoint_url", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://[::1"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"insecure", map[string]string{ep: "c:4317", "OTEL_EXPORTER_OTLP_INSECURE": "yes"}, "OTEL_EXPORTER_OTLP_INSECURE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, grpc := range []bool{false, true} {
				_, err := New(func(k string) string { return tc.env[k] }, grpc, "ua")
				if err == nil || !strings.Contains(err.Error(), tc.wantVar) {
					t.Errorf("grpc=%v: err = %v, want one naming %s", grpc, err, tc.wantVar)
				}
			}
		})
	}
}

func TestGRPCTimeoutHeader(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second:                   "1n",
		1500 * time.Nanosecond:         "1500n",
		10 * time.Second:               "10000000u",
		100 * time.Second:              "100000m",
		time.Duration(1<<63 - 1):       "2562048H",
		99999999 * time.Millisecond:    "99999999m",
		100000000*time.Millisecond + 1: "100001S",
	} {
		if got := grpcTimeout(d); got != want {
			t.Errorf("grpcTimeout(%v) = %q, want %q", d, got, want)
		}
	}
	if got := decodeGRPCMessage("bad%20spans%zz%4"); got != "bad spans%zz%4" {
		t.Errorf("decodeGRPCMessage = %q", got)
	}
}
