// Command consumer is a minimal microservice that consumes Pipedrive events
// from the gateway's stream: a durable JetStream consumer that continues
// the gateway's trace from the message headers, handles each event and
// acks it.
//
//	go run ./examples/consumer                      # all events, embedded NATS
//	go run ./examples/consumer 'pipedrive.*.deal'   # deal events only
//
// NATS_URL selects the server (default nats://127.0.0.1:4222, the embedded
// server of `go run .`); OTEL_EXPORTER_OTLP_ENDPOINT exports its spans.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	pgevent "github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(telemetry.LogHandler{Handler: slog.NewTextHandler(os.Stderr, nil)})
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: "pipedrive-consumer-example"})
	if err != nil {
		log.Error("telemetry", "error", err)
		os.Exit(1)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	filter := "pipedrive.>"
	if len(os.Args) > 1 {
		filter = os.Args[1]
	}
	if err := run(ctx, url, filter, "example-consumer", tel.Tracer, tel.Propagator, log, nil); err != nil {
		log.Error("consumer stopped", "error", err)
		os.Exit(1)
	}
}

// event is the part of a v2 body this example looks at.
type event struct {
	Meta struct {
		Action   string `json:"action"`
		Entity   string `json:"entity"`
		EntityID any    `json:"entity_id"`
	} `json:"meta"`
}

// run consumes until ctx ends. handled, if set, is called after each ack.
func run(ctx context.Context, url, filter, durable string, tp trace.TracerProvider, prop propagation.TextMapPropagator,
	log *slog.Logger, handled func(jetstream.Msg)) error {
	nc, err := nats.Connect(url, nats.Name("pipedrive-consumer-example"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Durable: the server remembers what was acked, so a restart resumes
	// where it stopped and nothing is skipped.
	cons, err := js.CreateOrUpdateConsumer(ctx, "PIPEDRIVE", jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    10,
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	tracer := tp.Tracer("pipedrive-consumer-example")
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Continue the gateway's trace: the publish span is our parent.
		mctx := prop.Extract(context.Background(), relay.HeaderCarrier(m.Headers()))
		mctx, span := tracer.Start(mctx, "process "+m.Subject(), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", m.Subject()),
				attribute.String("messaging.message.id", m.Headers().Get("Nats-Msg-Id")),
			))
		defer span.End()
		var ev event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			// A body we cannot read will not get better: terminate it
			// instead of redelivering it forever.
			span.SetStatus(codes.Error, "undecodable event")
			_ = m.Term()
			return
		}
		log.InfoContext(mctx, "event", "subject", m.Subject(), "id", m.Headers().Get("Nats-Msg-Id"),
			"entity", ev.Meta.Entity, "entity_id", ev.Meta.EntityID, "attempt", m.Headers().Get(pgevent.HeaderAttempt))
		if err := m.Ack(); err != nil {
			span.RecordError(err)
		}
		if handled != nil {
			handled(m)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	log.Info("consuming", "url", url, "filter", filter, "durable", durable)
	<-ctx.Done()
	return nil
}
