// Command consumer is a minimal microservice that consumes Pipedrive events
// from the gateway's stream: a durable JetStream consumer that continues
// the gateway's trace from the message headers with the OpenTelemetry SDK's
// defaults, decodes each event as the README recommends, and acks it.
//
//	go run ./examples/consumer                      # all events, embedded NATS
//	go run ./examples/consumer 'pipedrive.*.deal'   # deal events only
//	go run ./examples/consumer --help
//
// NATS_URL selects the server (default nats://127.0.0.1:4222, the embedded
// server of `go run .`); OTEL_EXPORTER_OTLP_ENDPOINT exports its spans.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	pgevent "github.com/pipedrive-gateway/pipedrive-gateway/event"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// config is what the command line and the environment say.
type config struct {
	url, stream, filter, durable string
}

func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{url: getenv("NATS_URL")}
	if cfg.url == "" {
		cfg.url = "nats://127.0.0.1:4222"
	}
	fs.StringVar(&cfg.durable, "durable", "example-consumer", "durable consumer name (the server remembers what it acked)")
	fs.StringVar(&cfg.stream, "stream", "PIPEDRIVE", "the gateway's STREAM_NAME")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: consumer [flags] [SUBJECT]\n\n"+
			"Consumes Pipedrive events from the gateway's JetStream stream (SUBJECT defaults to pipedrive.>).\n"+
			"NATS_URL selects the server (default nats://127.0.0.1:4222); OTEL_EXPORTER_OTLP_ENDPOINT exports spans.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.filter = "pipedrive.>"
	switch fs.NArg() {
	case 0:
	case 1:
		cfg.filter = fs.Arg(0)
	default:
		fs.Usage()
		return cfg, errors.New("at most one SUBJECT")
	}
	return cfg, nil
}

// realMain reads the arguments before it creates anything, so that --help
// only prints the usage.
func realMain(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseArgs(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	tp, err := newTracerProvider(ctx, getenv)
	if err != nil {
		log.Error("tracing", "error", err)
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	if err := run(ctx, cfg, tp, prop, log, nil); err != nil {
		log.Error("consumer stopped", "error", err)
		return 1
	}
	return 0
}

// newTracerProvider is the OpenTelemetry SDK with its defaults (the
// parent-based sampler among them); it exports over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set.
func newTracerProvider(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return sdktrace.NewTracerProvider(), nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp)), nil
}

// run consumes until ctx ends. handled, if set, is called after each ack.
func run(ctx context.Context, cfg config, tp trace.TracerProvider, prop propagation.TextMapPropagator,
	log *slog.Logger, handled func(Event)) error {
	nc, err := nats.Connect(cfg.url, nats.Name("pipedrive-consumer-example"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect %s: %w", cfg.url, err)
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Durable: the server remembers what was acked, so a restart resumes
	// where it stopped and nothing is skipped.
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.stream, jetstream.ConsumerConfig{
		Durable:       cfg.durable,
		FilterSubject: cfg.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    10,
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	tracer := tp.Tracer("pipedrive-consumer-example")
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Continue the gateway's trace. NATS header names are
		// case-sensitive: event.HeaderCarrier reads traceparent as it is
		// written (propagation.HeaderCarrier would look for Traceparent).
		mctx := prop.Extract(context.Background(), pgevent.HeaderCarrier(m.Headers()))
		mctx, span := tracer.Start(mctx, "process "+m.Subject(), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", m.Subject()),
				attribute.String("messaging.message.id", m.Headers().Get("Nats-Msg-Id")),
			))
		defer span.End()
		ev, err := Decode(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			// A body we cannot read will not get better: terminate it
			// instead of redelivering it forever.
			span.SetStatus(codes.Error, "undecodable event")
			_ = m.Term()
			return
		}
		log.InfoContext(mctx, "event", "subject", ev.Subject, "id", ev.ID, "company_id", ev.CompanyID,
			"object", ev.Object, "action", ev.Action, "entity_id", ev.EntityID, "time", ev.Time, "attempt", ev.Attempt)
		if err := m.Ack(); err != nil {
			span.RecordError(err)
		}
		if handled != nil {
			handled(ev)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	log.Info("consuming", "url", cfg.url, "filter", cfg.filter, "durable", cfg.durable)
	<-ctx.Done()
	return nil
}
