package service

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-envconfig"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
)

// start runs the service on the embedded defaults with tel.
func start(t *testing.T, tel *telemetry.Telemetry) *Service {
	t.Helper()
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"DATA_DIR": t.TempDir(), "HTTP_ADDR": "127.0.0.1:0", "OPS_ADDR": "127.0.0.1:0",
		"EMBEDDED_NATS_LISTEN": "127.0.0.1:0", "WEBHOOK_USER": "pipedrive", "WEBHOOK_PASSWORD": "change-me",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, slog.New(telemetry.LogHandler{Handler: testlog.New(t).Handler()}), WithTelemetry(tel))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func deliver(t *testing.T, s *Service, body []byte, user, pass string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.IngressAddr().String()+"/webhooks/pipedrive/9912345", bytes.NewReader(body))
	req.SetBasicAuth(user, pass)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func sample(t *testing.T, id string) []byte {
	b, err := os.ReadFile("../../testdata/v2-change-deal.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(b, []byte("c41d7e22-9b0a-4f3c-8e61-5a2b7d9c0e14"), []byte(id), 1)
}

func lastMessage(t *testing.T, s *Service) *jetstream.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), "PIPEDRIVE")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), "pipedrive.change.deal")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTracePropagation: one request yields a server span and a producer
// span in one trace, continuing the caller's traceparent, and the message
// carries a traceparent of that trace for the consumer.
func TestTracePropagation(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }, SpanProcessor: rec})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, tel)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := deliver(t, s, sample(t, "trace-1"), "pipedrive", "change-me", http.Header{"Traceparent": {parent}}); got != 200 {
		t.Fatalf("status %d", got)
	}
	var server, producer sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch sp.SpanKind() {
		case trace.SpanKindServer:
			server = sp
		case trace.SpanKindProducer:
			producer = sp
		}
	}
	if server == nil || producer == nil {
		t.Fatalf("spans: server %v, producer %v", server, producer)
	}
	if got := server.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("server span trace %s does not continue the incoming traceparent", got)
	}
	if producer.Parent().SpanID() != server.SpanContext().SpanID() || producer.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Error("producer span is not a child of the server span")
	}
	attrs := map[string]string{}
	for _, kv := range producer.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["messaging.system"] != "nats" || attrs["messaging.destination.name"] != "pipedrive.change.deal" || attrs["messaging.message.id"] != "trace-1" {
		t.Errorf("producer attributes = %v", attrs)
	}
	for _, kv := range server.Attributes() {
		if strings.Contains(kv.Value.String(), "change-me") {
			t.Error("a span attribute carries the password")
		}
	}
	tp := lastMessage(t, s).Header.Get("traceparent")
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + producer.SpanContext().SpanID().String() + "-01"
	if tp != want {
		t.Errorf("message traceparent = %q, want %q", tp, want)
	}
}

// TestNoExporter: with no OTEL_* endpoint nothing is recorded or exported,
// yet every message still carries a valid traceparent.
func TestNoExporter(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Exporting {
		t.Fatal("exporting without an endpoint")
	}
	_, span := tel.Tracer.Tracer("t").Start(context.Background(), "x")
	if span.IsRecording() || !span.SpanContext().IsValid() {
		t.Errorf("span recording=%v valid=%v, want a valid, non-recording span", span.IsRecording(), span.SpanContext().IsValid())
	}
	s := start(t, tel)
	if got := deliver(t, s, sample(t, "no-exporter"), "pipedrive", "change-me", nil); got != 200 {
		t.Fatalf("status %d", got)
	}
	if tp := lastMessage(t, s).Header.Get("traceparent"); len(tp) != 55 || !strings.HasPrefix(tp, "00-") {
		t.Errorf("traceparent = %q", tp)
	}
}

func TestExporterSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		export  bool
		wantErr bool
	}{
		{"http_endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, false},
		{"grpc_endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, false},
		{"disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}, false, false},
		{"bad_protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(k string) string { return tc.env[k] }})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if tel.Exporting != tc.export {
				t.Errorf("exporting = %v, want %v", tel.Exporting, tc.export)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = tel.Shutdown(ctx) // an unreachable collector must not hang shutdown
		})
	}
}

// TestMetrics checks exact counter values after known traffic.
func TestMetrics(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, tel)
	retry := bytes.Replace(sample(t, "m-1"), []byte(`"attempt": 1`), []byte(`"attempt": 2`), 1)
	for _, d := range []struct {
		body       []byte
		user, pass string
		want       int
	}{
		{sample(t, "m-1"), "pipedrive", "change-me", 200},
		{retry, "pipedrive", "change-me", 200}, // duplicate, first attempt failed
		{sample(t, "m-2"), "pipedrive", "change-me", 200},
		{sample(t, "m-3"), "pipedrive", "wrong", 401},
		{[]byte("{"), "pipedrive", "change-me", 400},
		{bytes.Replace(sample(t, "m-4"), []byte(`"company_id": "9912345"`), []byte(`"company_id": "1"`), 1), "pipedrive", "change-me", 400},
	} {
		if got := deliver(t, s, d.body, d.user, d.pass, nil); got != d.want {
			t.Fatalf("status %d, want %d", got, d.want)
		}
	}
	var text string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + s.OpsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The lease is taken right after start; wait for it, not for luck.
		if text = string(b); strings.Contains(text, "pipedrive_gateway_leader 1\n") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		`pipedrive_gateway_webhook_requests_total{status="200"} 3`,
		`pipedrive_gateway_webhook_requests_total{status="401"} 1`,
		`pipedrive_gateway_webhook_requests_total{status="400"} 2`,
		`pipedrive_gateway_events_received_total{action="change",object="deal"} 3`,
		`pipedrive_gateway_events_published_total{action="change",duplicate="false",object="deal"} 2`,
		`pipedrive_gateway_events_published_total{action="change",duplicate="true",object="deal"} 1`,
		`pipedrive_gateway_events_rejected_total{reason="unauthorized"} 1`,
		`pipedrive_gateway_events_rejected_total{reason="invalid_payload"} 1`,
		`pipedrive_gateway_events_rejected_total{reason="company_mismatch"} 1`,
		`pipedrive_gateway_publish_duration_seconds_count{outcome="ok"} 3`,
		`pipedrive_gateway_request_size_bytes_count 5`,
		// The unreadable body ("{", attempt unknown) and the company
		// mismatch (attempt 1) are first attempts answered 400.
		`pipedrive_gateway_first_attempt_failures_total{company_id="9912345"} 2`,
		`pipedrive_gateway_events_rejected_total{reason="ambiguous_payload"} 0`,
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="200",http_route="/webhooks/pipedrive/{company_id}",url_scheme="http"} 3`,
		`pipedrive_gateway_leader 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "m-1") || strings.Contains(text, "/webhooks/pipedrive/9912345") {
		t.Error("/metrics carries event ids or raw paths")
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestPortInUse: a taken port is a clear start-up error, not a panic, and
// the embedded NATS server started before it is stopped again.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, name := range []string{"HTTP_ADDR", "OPS_ADDR"} {
		env := map[string]string{
			"DATA_DIR": t.TempDir(), "HTTP_ADDR": "127.0.0.1:0", "OPS_ADDR": "127.0.0.1:0", "EMBEDDED_NATS_LISTEN": "127.0.0.1:0",
		}
		env[name] = ln.Addr().String()
		cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(context.Background(), cfg, testlog.New(t))
		if err == nil || !strings.Contains(err.Error(), "failed to listen") {
			t.Errorf("%s busy: err = %v, want a listen error", name, err)
		}
	}
}
