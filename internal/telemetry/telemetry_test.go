package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/telemetry"
)

// TestOTLPExport points OTEL_EXPORTER_OTLP_ENDPOINT at a fake collector and
// checks that spans arrive there over OTLP/HTTP.
func TestOTLPExport(t *testing.T) {
	var got atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			got.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Exporting {
		t.Fatal("not exporting with an endpoint set")
	}
	_, span := tel.Tracer.Tracer("test").Start(context.Background(), "webhook")
	if !span.IsRecording() {
		t.Error("span not recorded while exporting")
	}
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Load() == 0 {
		t.Error("the collector received no spans")
	}
}

// TestBadOTLPSettingStopsSetup: a value the exporter cannot use fails
// Setup, as the gateway starts, naming the variable.
func TestBadOTLPSettingStopsSetup(t *testing.T) {
	_, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}[k]
	}})
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TIMEOUT") {
		t.Errorf("Setup: err = %v, want one naming OTEL_EXPORTER_OTLP_TIMEOUT", err)
	}
}
