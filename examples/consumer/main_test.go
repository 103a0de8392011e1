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

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
)

// TestOneTrace runs the gateway and this consumer with one span recorder:
// the consumer's span must sit in the trace that the webhook request began.
func TestOneTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }, SpanProcessor: rec})
	if err != nil {
		t.Fatal(err)
	}
	env := servicetest.Env(t)
	svc := servicetest.Start(t, env, slog.LevelWarn, service.WithTelemetry(tel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	got := make(chan jetstream.Msg, 1)
	go run(ctx, svc.NATSURL(), "pipedrive.>", "test", tel.Tracer, tel.Propagator, log, func(m jetstream.Msg) { got <- m })

	body, _ := os.ReadFile("../../testdata/v2-change-deal.json")
	req, _ := http.NewRequest(http.MethodPost, "http://"+svc.IngressAddr().String()+"/webhooks/pipedrive/9912345", bytes.NewReader(body))
	req.SetBasicAuth(servicetest.User, servicetest.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("post: %v %v", resp, err)
	}
	select {
	case <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("consumer got nothing")
	}
	time.Sleep(50 * time.Millisecond) // the consumer span ends after the callback
	var server, consumer sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch {
		case sp.SpanKind() == trace.SpanKindServer:
			server = sp
		case sp.SpanKind() == trace.SpanKindConsumer && strings.HasPrefix(sp.Name(), "process "):
			consumer = sp
		}
	}
	if server == nil || consumer == nil {
		t.Fatalf("server span %v, consumer span %v", server, consumer)
	}
	if consumer.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Errorf("consumer trace %s, want the request's %s", consumer.SpanContext().TraceID(), server.SpanContext().TraceID())
	}
}
