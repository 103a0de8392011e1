package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	pgevent "github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
)

// TestHelp: --help prints the usage and creates nothing (NATS_URL points
// nowhere: connecting would fail or hang).
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		var out bytes.Buffer
		env := func(k string) string { return map[string]string{"NATS_URL": "nats://192.0.2.1:4222"}[k] }
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		code := realMain(ctx, []string{arg}, env, &out)
		cancel()
		if code != 0 || !strings.Contains(out.String(), "Usage: consumer") || strings.Contains(out.String(), "consuming") {
			t.Errorf("%s: exit %d, output %q; want 0 and the usage only", arg, code, out.String())
		}
	}
}

// post delivers the sample body to a running gateway.
func post(t *testing.T, svc *servicetest.Running, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, svc.IngressURL()+"/webhooks/pipedrive/9912345", bytes.NewReader(body))
	req.SetBasicAuth(servicetest.User, servicetest.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: status %d", resp.StatusCode)
	}
}

func sampleBody(t *testing.T) []byte {
	t.Helper()
	body, err := os.ReadFile("../../testdata/v2-change-deal.json")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// consumeOne runs this consumer with tp until it handled one event.
func consumeOne(t *testing.T, svc *servicetest.Running, tp trace.TracerProvider) Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	got := make(chan Event, 1)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	cfg := config{url: svc.NATSURL(), stream: "PIPEDRIVE", filter: "pipedrive.>", durable: "test"}
	go run(ctx, cfg, tp, prop, log, func(ev Event) { got <- ev })
	post(t, svc, sampleBody(t))
	select {
	case ev := <-got:
		return ev
	case <-time.After(15 * time.Second):
		t.Fatal("consumer got nothing")
	}
	return Event{}
}

// consumerSpan waits for the consumer's span to end (after the callback).
func consumerSpan(t *testing.T, rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, sp := range rec.Ended() {
			if sp.SpanKind() == trace.SpanKindConsumer && strings.HasPrefix(sp.Name(), "process ") {
				return sp
			}
		}
	}
	t.Fatal("no consumer span")
	return nil
}

// TestOneTrace runs the gateway and this consumer with one span recorder:
// the consumer's span must sit in the trace that the webhook request began.
func TestOneTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }, SpanProcessor: rec})
	if err != nil {
		t.Fatal(err)
	}
	svc := servicetest.Start(t, servicetest.Env(t), slog.LevelWarn, service.WithTelemetry(tel))
	consumeOne(t, svc, tel.Tracer)
	consumer := consumerSpan(t, rec)
	var server sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.SpanKind() == trace.SpanKindServer {
			server = sp
		}
	}
	if server == nil {
		t.Fatal("no server span")
	}
	if consumer.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Errorf("consumer trace %s, want the request's %s", consumer.SpanContext().TraceID(), server.SpanContext().TraceID())
	}
}

// TestTraceWithSDKDefaults: the gateway as `go run .` starts it (no
// exporter: its spans are not sampled) and a consumer on the OpenTelemetry
// SDK's defaults (parent-based sampler) that reads the headers through
// event.HeaderCarrier. The consumer must record its span, as a child of
// the message's traceparent; the idiomatic http.Header carrier would not
// find traceparent at all.
func TestTraceWithSDKDefaults(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	svc := servicetest.Start(t, servicetest.Env(t), slog.LevelWarn, service.WithTelemetry(tel))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)) // the SDK's default sampler
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	consumeOne(t, svc, tp)
	span := consumerSpan(t, rec)
	if !span.SpanContext().IsSampled() {
		t.Error("consumer span not sampled")
	}
	// The parent is what the message says.
	nc, err := nats.Connect(svc.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "PIPEDRIVE")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), "pipedrive.change.deal")
	if err != nil {
		t.Fatal(err)
	}
	tp0 := m.Header.Get("traceparent")
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.Parent().SpanID().String() + "-01"
	if tp0 != want {
		t.Errorf("message traceparent %q, consumer span continues %q", tp0, want)
	}
	if m.Header.Get("baggage") != "" {
		t.Error("baggage on a message")
	}
	prop := propagation.TraceContext{}
	if sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.HeaderCarrier(http.Header(m.Header)))); sc.IsValid() {
		t.Error("propagation.HeaderCarrier found traceparent: the README's reason for event.HeaderCarrier is gone")
	}
	if sc := trace.SpanContextFromContext(prop.Extract(context.Background(), pgevent.HeaderCarrier(m.Header))); !sc.IsValid() {
		t.Error("event.HeaderCarrier did not find traceparent")
	}
}
