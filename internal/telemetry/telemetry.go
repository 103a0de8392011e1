// Package telemetry builds the OpenTelemetry providers of the service: a
// tracer provider that always creates spans (so every message carries a
// traceparent) but exports only when an OTLP endpoint is configured, and a
// meter provider served as Prometheus text. It must not know what is
// measured: each package makes its own instruments on the providers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry/otlp"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry/promtext"
)

// Telemetry holds the providers the service's parts are given.
type Telemetry struct {
	Tracer     trace.TracerProvider
	Meter      metric.MeterProvider
	Propagator propagation.TextMapPropagator
	// Metrics serves the Prometheus text exposition.
	Metrics http.Handler
	// Exporting reports whether spans leave the process.
	Exporting bool
	shutdown  []func(context.Context) error
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Options are what Setup needs besides the standard OTEL_* environment.
type Options struct {
	// ServiceName is used when OTEL_SERVICE_NAME is empty (default
	// pipedrive-gateway).
	ServiceName    string
	ServiceVersion string
	// Getenv reads OTEL_* variables; os.Getenv when nil.
	Getenv func(string) string
	// SpanProcessor, when set, receives every span (tests use a recorder).
	SpanProcessor sdktrace.SpanProcessor
}

// Setup builds the providers from the standard OTEL_* variables:
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns
// exporting on, OTEL_EXPORTER_OTLP_PROTOCOL picks grpc or http/protobuf
// (default), OTEL_TRACES_EXPORTER=none turns it off, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES name the service, OTEL_TRACES_SAMPLER samples.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	res, err := newResource(ctx, getenv, opts.ServiceName, opts.ServiceVersion)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithIDGenerator(ids{})}
	exporter, err := newSpanExporter(ctx, getenv, opts.ServiceVersion)
	if err != nil {
		return nil, err
	}
	switch {
	case exporter != nil:
		t.Exporting = true
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exporter))
	case opts.SpanProcessor == nil:
		// Nothing exports: spans keep a valid context for propagation but
		// are only recorded when the caller's trace is sampled, which makes
		// them nearly free on the hot path. Messages still say "sampled",
		// so that consumers decide (deferredSampling).
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		t.Propagator = propagation.NewCompositeTextMapPropagator(deferredSampling{}, propagation.Baggage{})
	}
	if opts.SpanProcessor != nil {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(opts.SpanProcessor))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	t.Tracer = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)

	reader, metrics := promtext.New()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader),
		sdkmetric.WithView(latencyView("pipedrive_gateway.publish.duration"), latencyView("pipedrive_gateway.reconcile.duration")))
	t.Meter = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	t.Metrics = metrics
	return t, nil
}

// latencyView gives latency histograms buckets from 0.5 ms to 10 s.
func latencyView(name string) sdkmetric.View {
	return sdkmetric.NewView(sdkmetric.Instrument{Name: name}, sdkmetric.Stream{
		Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
			Boundaries: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		},
	})
}

func newResource(ctx context.Context, getenv func(string) string, name, version string) (*resource.Resource, error) {
	if env := getenv("OTEL_SERVICE_NAME"); env != "" {
		name = env
	}
	if name == "" {
		name = "pipedrive-gateway"
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", name),
		attribute.String("service.version", version),
	}
	for _, kv := range strings.Split(getenv("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) != "" {
			attrs = append(attrs, attribute.String(strings.TrimSpace(k), strings.TrimSpace(v)))
		}
	}
	return resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
}

// newSpanExporter returns nil when no OTLP endpoint is configured. version
// goes into the User-Agent of the requests.
func newSpanExporter(_ context.Context, getenv func(string) string, version string) (sdktrace.SpanExporter, error) {
	if strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") || getenv("OTEL_SDK_DISABLED") == "true" {
		return nil, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	userAgent := "pipedrive-gateway"
	if version != "" {
		userAgent += "/" + version
	}
	userAgent += " (OTLP trace exporter)"
	// The exporter reads the remaining OTEL_EXPORTER_OTLP_* variables
	// (headers, TLS, timeout, compression) itself.
	var grpc bool
	switch proto {
	case "", "http/protobuf":
	case "grpc":
		grpc = true
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: want grpc or http/protobuf, got %q", proto)
	}
	exp, err := otlp.New(getenv, grpc, userAgent)
	if err != nil {
		return nil, err
	}
	return exp, nil
}
