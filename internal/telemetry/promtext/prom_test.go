package promtext

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// scrape GETs h and parses the text exposition.
func scrape(t *testing.T, h http.Handler, gz bool) (map[string]*dto.MetricFamily, *http.Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, rec.Body)
	}
	var body io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	raw, _ := io.ReadAll(body)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, raw)
	}
	return fams, res
}

// canonicalText writes families in the text format, metrics sorted, so that
// two expositions of the same data compare equal as strings.
func canonicalText(t *testing.T, fams map[string]*dto.MetricFamily, keep func(string) bool) string {
	t.Helper()
	var names []string
	for n := range fams {
		if keep(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		f := fams[n]
		slices.SortFunc(f.Metric, func(a, b *dto.Metric) int { return strings.Compare(a.String(), b.String()) })
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestExpositionMatchesTheOTelPrometheusExporter records the same
// measurements through our reader and through the OTel Prometheus
// exporter (what /metrics served before) and requires the same families:
// names with their unit and _total suffixes, help, types, labels (dotted
// keys, values that need escaping) and values, histogram buckets of the
// latency view included.
func TestExpositionMatchesTheOTelPrometheusExporter(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	official, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		t.Fatal(err)
	}
	reader, ours := New()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithReader(official),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "pipedrive_gateway.publish.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}})))
	defer mp.Shutdown(ctx)
	m := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/gateway")
	other := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/subscriptions")

	requests, _ := m.Int64Counter("pipedrive_gateway.webhook_requests", metric.WithDescription("Webhook requests answered, by HTTP status."))
	requests.Add(ctx, 3, metric.WithAttributes(attribute.Int("http.response.status_code", 200)))
	requests.Add(ctx, 1, metric.WithAttributes(attribute.Int("http.response.status_code", 503)))
	requests.Add(ctx, 1234567, metric.WithAttributes(attribute.Int("http.response.status_code", 401)))
	already, _ := m.Int64Counter("pipedrive_gateway.backfill.runs_total", metric.WithDescription("A name with its own _total."))
	already.Add(ctx, 2)
	floats, _ := m.Float64Counter("pipedrive_gateway.backfill.seconds", metric.WithUnit("s"), metric.WithDescription(`A help with a \ and
a newline.`))
	floats.Add(ctx, 0.25, metric.WithAttributes(attribute.String("company_id", "42"), attribute.String("reason", `say "hi"\n`+"\nnext")))
	floats.Add(ctx, 1, metric.WithAttributes(attribute.String("a.b", "1"), attribute.String("a.c", "2"), attribute.String("a_b", "3")))
	duration, _ := m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."), metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	for _, v := range []float64{0.001, 0.02, 0.2, 3, 30} {
		duration.Record(ctx, v, metric.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("http.route", "/webhooks/pipedrive")))
	}
	latency, _ := m.Float64Histogram("pipedrive_gateway.publish.duration", metric.WithUnit("s"), metric.WithDescription("Time from publish to JetStream ack."))
	for _, v := range []float64{0.0004, 0.0011, 0.0031, 0.7, 12} {
		latency.Record(ctx, v)
	}
	size, _ := m.Int64Histogram("pipedrive_gateway.request.size", metric.WithUnit("By"), metric.WithDescription("Webhook body size."),
		metric.WithExplicitBucketBoundaries(256, 1024, 4096, 16384, 65536, 262144, 1048576))
	size.Record(ctx, 900)
	size.Record(ctx, 70000)
	inflight, _ := other.Int64UpDownCounter("pipedrive_gateway.reconciles_in_flight", metric.WithUnit("{reconcile}"))
	inflight.Add(ctx, 5)
	inflight.Add(ctx, -2)
	_, _ = other.Int64ObservableGauge("pipedrive_gateway.stream.size", metric.WithUnit("By"), metric.WithDescription("Bytes in the stream."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(123456789); return nil }))
	_, _ = other.Int64ObservableGauge("pipedrive_gateway.stream.messages", metric.WithUnit("{message}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(7); return nil }))
	_, _ = other.Float64ObservableGauge("pipedrive_gateway.disk.used", metric.WithUnit("1"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(0.5); return nil }))
	_, _ = other.Float64ObservableGauge("pipedrive_gateway.transfer.rate", metric.WithUnit("By/s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(1.5e9); return nil }))
	_, _ = other.Int64ObservableGauge("pipedrive_gateway.company_webhook_healthy", metric.WithDescription("Per company."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for id := range 3 {
				o.Observe(int64(id%2), metric.WithAttributes(attribute.Int("company_id", 1000+id), attribute.String("company.domain", "acme")))
			}
			return nil
		}))

	want, _ := scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), false)
	otel := func(n string) bool { return !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") }
	for _, gz := range []bool{false, true} {
		got, res := scrape(t, ours, gz)
		if g, w := canonicalText(t, got, otel), canonicalText(t, want, otel); g != w {
			t.Errorf("gzip %v: /metrics differs from the OTel Prometheus exporter's\n--- ours\n%s\n--- theirs\n%s", gz, g, w)
		}
		if ct := res.Header.Get("Content-Type"); ct != textContentType {
			t.Errorf("Content-Type %q", ct)
		}
		if enc := res.Header.Get("Content-Encoding"); (enc == "gzip") != gz {
			t.Errorf("Accept-Encoding gzip %v: Content-Encoding %q", gz, enc)
		}
	}
}

// TestRuntimeFamiliesMatchClientGolang: the go_* and process_* families are
// those the Prometheus Go client's default collectors export, by name and
// type, so dashboards and alerts on them keep working; their values are
// the process's own.
func TestRuntimeFamiliesMatchClientGolang(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	want, _ := scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), false)
	reader, h := New()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	got, _ := scrape(t, h, false)

	types := func(fams map[string]*dto.MetricFamily) map[string]string {
		out := map[string]string{}
		for n, f := range fams {
			if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
				out[n] = f.GetType().String()
			}
		}
		return out
	}
	g, w := types(got), types(want)
	for n, typ := range w {
		if g[n] != typ {
			t.Errorf("%s: type %q, want %q", n, g[n], typ)
		}
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			t.Errorf("%s: not a family of the Go client", n)
		}
	}
	value := func(name string) float64 {
		f := got[name]
		if f == nil || len(f.Metric) == 0 {
			t.Fatalf("%s missing", name)
		}
		switch m := f.Metric[0]; {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		}
		return 0
	}
	for _, n := range []string{"go_goroutines", "go_memstats_sys_bytes", "go_memstats_heap_inuse_bytes", "go_threads", "go_sched_gomaxprocs_threads",
		"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"} {
		if v := value(n); v <= 0 {
			t.Errorf("%s = %v, want > 0", n, v)
		}
	}
	if v, w := value("process_start_time_seconds"), value("go_memstats_last_gc_time_seconds"); w != 0 && v > w {
		t.Errorf("process_start_time_seconds %v after the last GC %v", v, w)
	}
	if info := got["go_info"]; info == nil || info.Metric[0].Label[0].GetValue() == "" {
		t.Error("go_info without a version")
	}
}

// BenchmarkScrape: /metrics with the per-company gauges of 10,000
// companies (three series each), by our exposition and by the OTel
// Prometheus exporter, to compare in one run.
func BenchmarkScrape(b *testing.B) {
	setup := func(readers ...sdkmetric.Reader) *sdkmetric.MeterProvider {
		opts := []sdkmetric.Option{}
		for _, r := range readers {
			opts = append(opts, sdkmetric.WithReader(r))
		}
		mp := sdkmetric.NewMeterProvider(opts...)
		m := mp.Meter("bench")
		for _, name := range []string{"pipedrive_gateway.company_webhook_healthy", "pipedrive_gateway.pipedrive_ratelimit_remaining"} {
			_, _ = m.Int64ObservableGauge(name, metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for id := range 10000 {
					o.Observe(int64(id), metric.WithAttributes(attribute.Int("company_id", id), attribute.String("window", "burst")))
					if name != "pipedrive_gateway.company_webhook_healthy" {
						o.Observe(int64(id), metric.WithAttributes(attribute.Int("company_id", id), attribute.String("window", "daily")))
					}
				}
				return nil
			}))
		}
		return mp
	}
	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	}
	b.Run("ours", func(b *testing.B) {
		reader, h := New()
		defer setup(reader).Shutdown(context.Background())
		run(b, h)
	})
	b.Run("otelprom", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		if err != nil {
			b.Fatal(err)
		}
		defer setup(exp).Shutdown(context.Background())
		run(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	})
}
