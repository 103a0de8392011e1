package gateway_test

// Benchmarks of the webhook hot path. Run them with
//
//	go test -run '^$' -bench . -benchmem ./gateway
//
// and profile the handler with
//
//	go test -run '^$' -bench 'BenchmarkHandler$' -benchmem -cpuprofile cpu.out -memprofile mem.out ./gateway
//	go tool pprof -top -sample_index=alloc_objects gateway.test mem.out
//
// NATS runs in-process (internal/natstest), so allocations per op include
// the server's own work for each message. BenchmarkBaselineNATS (the bare
// nats.go publish of the same message to the same stream) and
// BenchmarkBaselineEcho (an echo route that authenticates, reads the body
// and answers JSON, with no parse and no publish) carry the same overhead:
// what the gateway adds is roughly
// Handler − BaselineNATS − BaselineEcho.
// bench/README.md has the load test against real processes.

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-envconfig"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/gateway"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/httpapi"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

const (
	benchCompany  = "9912345"
	benchUser     = "pipedrive"
	benchPassword = "bench-password-0123456789abcdef"
	// benchIDPlaceholder is rewritten per request: the last 12 hex digits
	// become a sequence number, so every event is new to JetStream.
	benchIDPlaceholder = "3f0c2d6e-8a41-4b7e-9d55-000000000000"
)

// benchBody is a realistic ~2 KB v2 change.deal delivery (the shape of
// pipedrive.md §1.4, with the custom fields a real account carries).
var benchBody = []byte(`{"meta":{"action":"change","entity":"deal","entity_id":"5123","company_id":"` + benchCompany + `",` +
	`"user_id":"20517","id":"` + benchIDPlaceholder + `","correlation_id":"0e9a8b7c-6d5e-4f3a-9b2c-1d0e9f8a7b6c",` +
	`"timestamp":"2025-06-02T10:02:45.088Z","type":"general","version":"2.0","webhook_id":"880021",` +
	`"webhook_owner_id":"20441","change_source":"app","is_bulk_edit":false,"attempt":1,` +
	`"host":"acme-sales.pipedrive.com","permitted_user_ids":["20441","20517"]},` +
	`"data":{"id":5123,"title":"Acme Ltd – annual licence","value":12000,"currency":"EUR","status":"open",` +
	`"pipeline_id":1,"stage_id":4,"person_id":778,"org_id":312,"owner_id":20441,"creator_user_id":20441,` +
	`"label_ids":[3,7],"origin":"API","origin_id":null,"channel":null,"channel_id":null,"probability":60,` +
	`"expected_close_date":"2025-07-31","visible_to":"3","is_deleted":false,"add_time":"2025-06-02T09:14:07Z",` +
	`"update_time":"2025-06-02T10:02:45Z","stage_change_time":"2025-06-02T10:02:45Z","close_time":null,` +
	`"won_time":null,"first_won_time":null,"lost_time":null,"lost_reason":null,"acv":null,"arr":null,"mrr":null,` +
	`"custom_fields":{"a1f3c9e07b2d4e6f8a9b0c1d2e3f4a5b6c7d8e9f":{"type":"varchar","value":"Inbound webinar"},` +
	`"b2e4d6f8a0c2e4f6a8b0c2d4e6f8a0b2c4d6e8f0":{"type":"monetary","value":4500,"currency":"EUR"},` +
	`"c3d5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1":{"type":"enum","id":41},` +
	`"d4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2":{"type":"date","value":"2025-07-15"},` +
	`"e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3":{"type":"set","values":[{"id":12},{"id":14}]},` +
	`"f6c8e0a2b4d6f8c0e2a4b6d8f0c2e4a6b8d0f2c4":{"type":"daterange","from":"2025-07-01","until":"2026-06-30"},` +
	`"a7d9f1b3c5e7a9d1f3b5c7e9a1d3f5b7c9e1a3d5":{"type":"timerange","from":"09:00:00","until":"17:00:00","timezone_id":82},` +
	`"b8e0a2c4d6f8b0e2a4c6d8f0b2e4a6c8d0f2b4e6":{"type":"address","value":"Narva mnt 5, 10117 Tallinn, Estonia",` +
	`"subpremise":null,"street_number":"5","route":"Narva mnt","sublocality":"Kesklinn","locality":"Tallinn",` +
	`"admin_area_level_1":"Harju maakond","admin_area_level_2":null,"country":"Estonia","postal_code":"10117",` +
	`"formatted_address":"Narva mnt 5, 10117 Tallinn, Estonia"},` +
	`"c9f1b3d5e7a9c1f3b5d7e9a1c3f5b7d9e1a3c5f7":{"type":"people","id":778},` +
	`"d0a2c4e6f8b0d2a4c6e8f0b2d4a6c8e0f2b4d6a8":{"type":"org","id":312}}},` +
	`"previous":{"stage_id":3,"probability":40,"stage_change_time":"2025-05-30T08:00:11Z",` +
	`"update_time":"2025-05-30T08:00:11Z","custom_fields":{"c3d5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1":{"type":"enum","id":40}}}}`)

// benchIDOffset is where the 12 sequence digits of meta.id start.
var benchIDOffset = bytes.Index(benchBody, []byte(benchIDPlaceholder)) + len(benchIDPlaceholder) - 12

func benchPutID(body []byte, seq uint64) {
	const hex = "0123456789abcdef"
	d := body[benchIDOffset : benchIDOffset+12]
	for i := 11; i >= 0; i-- {
		d[i] = hex[seq&0xf]
		seq >>= 4
	}
}

// BenchmarkParse is the per-request CPU work before the publish: decode
// meta, derive the dedupe id, build the message headers.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		ev, err := gateway.Parse(benchBody, benchCompany)
		if err != nil {
			b.Fatal(err)
		}
		if relay.Headers(ev) == nil || ev.ID == "" {
			b.Fatal("no headers or no id")
		}
	}
}

// benchRelay connects a relay, on production defaults, to an in-process
// JetStream server.
func benchRelay(b *testing.B, opts ...relay.Option) (*relay.Relay, *config.Config) {
	b.Helper()
	ns := natstest.Run(b)
	ctx := context.Background()
	cfg, err := config.Load(ctx, envconfig.MapLookuper(map[string]string{
		"NATS_URL":         ns.ClientURL(),
		"STATE_KEY":        base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"WEBHOOK_USER":     benchUser,
		"WEBHOOK_PASSWORD": benchPassword,
	}))
	if err != nil {
		b.Fatal(err)
	}
	r, err := relay.New(ctx, cfg, benchLogger(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	return r, cfg
}

// benchLogger logs at warn, as LOG_LEVEL=warn does in the load test.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// benchClient is one simulated Pipedrive connection: a request, body and
// response writer reused for every call, so that the benchmark itself
// allocates nothing per op and allocs/op is the server side only.
type benchClient struct {
	req  http.Request
	body []byte
	rd   bytes.Reader
	w    benchWriter
}

type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

type benchBodyReader struct{ *bytes.Reader }

func (benchBodyReader) Close() error { return nil }

var benchAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(benchUser+":"+benchPassword))

func newBenchClient() *benchClient {
	c := &benchClient{body: bytes.Clone(benchBody), w: benchWriter{h: make(http.Header)}}
	c.req = http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Path: "/webhooks/pipedrive/" + benchCompany},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Authorization": {benchAuth}},
		Host:          "127.0.0.1",
		RemoteAddr:    "127.0.0.1:40000",
		RequestURI:    "/webhooks/pipedrive/" + benchCompany,
		ContentLength: int64(len(benchBody)),
	}
	c.req.Body = benchBodyReader{&c.rd}
	return c
}

// serve sends one new event (sequence seq) through h and returns the status.
func (c *benchClient) serve(h http.Handler, seq uint64) int {
	benchPutID(c.body, seq)
	c.rd.Reset(c.body)
	clear(c.w.h)
	c.w.code = http.StatusOK
	h.ServeHTTP(&c.w, &c.req)
	return c.w.code
}

// benchParallel runs serve on 16 goroutines per CPU (the load test's
// concurrency on two cores is 16 to 64) and fails on any non-200.
func benchParallel(b *testing.B, h http.Handler) {
	var seq, bad atomic.Uint64
	seq.Store(uint64(time.Now().UnixNano()) & 0xffff_ffff_0000) // unique across -count runs
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := newBenchClient()
		for pb.Next() {
			if code := c.serve(h, seq.Add(1)); code != http.StatusOK {
				bad.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d requests not answered 200", n)
	}
}

// BenchmarkHandler is the whole webhook path as the binary runs it:
// telemetry as telemetry.Setup makes it with no OTEL_* variables (spans for
// propagation, metrics), echo routing, Basic auth, body read, parse,
// JetStream publish with the ack, JSON answer.
func BenchmarkHandler(b *testing.B) {
	benchHandler(b, telemetry.Options{Getenv: func(string) string { return "" }})
}

// BenchmarkHandlerTraced records every span and hands it to a batch
// processor whose exporter discards it: the cost of tracing on, without
// the collector's network round trip.
func BenchmarkHandlerTraced(b *testing.B) {
	benchHandler(b, telemetry.Options{Getenv: func(string) string { return "" },
		SpanProcessor: sdktrace.NewBatchSpanProcessor(discardExporter{})})
}

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

func benchHandler(b *testing.B, opts telemetry.Options) {
	tel, err := telemetry.Setup(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	r, cfg := benchRelay(b, relay.WithTracing(tel.Tracer, tel.Propagator))
	gw := gateway.New(gateway.Options{
		MaxBodyBytes:   int64(cfg.HTTP.MaxBodyBytes),
		StaticUser:     cfg.HTTP.WebhookUser,
		StaticPassword: cfg.HTTP.WebhookPassword,
		Tracer:         tel.Tracer,
		Meter:          tel.Meter,
		Propagator:     tel.Propagator,
	}, r, nil, benchLogger())
	h := httpapi.Public(httpapi.Options{Webhook: gw.Webhook, Log: benchLogger()})
	c := newBenchClient()
	if code := c.serve(h, 1); code != http.StatusOK {
		b.Fatalf("warm-up request answered %d", code)
	}
	benchParallel(b, h)
}

// BenchmarkBaselineNATS is what nats.go needs for the same event: one
// synchronous JetStream publish of the body to the gateway's stream with a
// Nats-Msg-Id and an expected stream, under a publish timeout.
func BenchmarkBaselineNATS(b *testing.B) {
	r, cfg := benchRelay(b)
	js := r.JetStream()
	var seq atomic.Uint64
	seq.Store(uint64(time.Now().UnixNano()) & 0xffff_ffff_0000)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := bytes.Clone(benchBody)
		for pb.Next() {
			s := seq.Add(1)
			benchPutID(body, s)
			// The id string is made here as the gateway's parse makes it.
			id := string(body[benchIDOffset-24 : benchIDOffset+12])
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Stream.PublishTimeout)
			_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "pipedrive.change.deal", Data: body},
				jetstream.WithMsgID(id), jetstream.WithExpectStream(cfg.Stream.Name))
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBaselineEcho is what echo needs for the same request: route
// with a path parameter, Basic auth, body read into a pooled buffer, a JSON
// answer — no parse, no publish.
func BenchmarkBaselineEcho(b *testing.B) {
	e := echo.New()
	var bufs sync.Pool
	type answer struct {
		Status    string `json:"status"`
		Duplicate bool   `json:"duplicate,omitempty"`
	}
	e.POST(httpapi.WebhookRoute, func(c echo.Context) error {
		if c.Param("company_id") != benchCompany {
			return echo.ErrNotFound
		}
		if u, p, ok := c.Request().BasicAuth(); !ok || u != benchUser || p != benchPassword {
			return echo.ErrUnauthorized
		}
		buf, _ := bufs.Get().(*bytes.Buffer)
		if buf == nil {
			buf = bytes.NewBuffer(make([]byte, 0, 8<<10))
		}
		defer bufs.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(c.Request().Body); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, answer{Status: "ok"})
	})
	benchParallel(b, e)
}
