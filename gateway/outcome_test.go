package gateway_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pipedrive-gateway/pipedrive-gateway/gateway"
)

// observer records what the gateway tells its Deliveries.
type observer struct {
	mu  sync.Mutex
	got []delivered
}

type delivered struct {
	Company         string
	Attempt, Status int
}

func (o *observer) Delivered(companyID string, attempt, status int, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if time.Since(at) > time.Minute || at.After(time.Now()) {
		panic("delivery time is not the arrival")
	}
	o.got = append(o.got, delivered{companyID, attempt, status})
}

// TestOutcome: each authenticated delivery is told to the observer once,
// with its attempt and answer; metrics count what was answered, first
// attempts that failed per company, and the request duration with the
// OpenTelemetry HTTP attributes; the known counters start at 0.
func TestOutcome(t *testing.T) {
	t.Parallel()
	obs := &observer{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h := newHarnessWith(t, map[string]string{"MAX_BODY_BYTES": "64KiB"}, func(o *gateway.Options) {
		o.Deliveries, o.Meter = obs, mp
	}, nil)

	zero := collect(t, reader)
	for _, k := range []string{`pipedrive_gateway.webhook_requests{status=503}`, `pipedrive_gateway.events_rejected{reason=ambiguous_payload}`} {
		if v, ok := zero[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v) before any request, want 0", k, v, ok)
		}
	}

	deliveries := []struct {
		company    string
		body       []byte
		user, pass string
		want       int
	}{
		{company, v2Body(t, "change", "deal", nil), staticUser, staticPass, 200},
		{company, v2Body(t, "change", "deal", func(m obj) { m["attempt"] = 2 }), staticUser, staticPass, 200},
		{company, v2Body(t, "change", "deal", func(m obj) { m["action"] = "renamed" }), staticUser, staticPass, 400},
		{company, v2Body(t, "change", "deal", func(m obj) { m["action"], m["attempt"] = "renamed", 3 }), staticUser, staticPass, 400},
		{company, []byte("{"), staticUser, staticPass, 400},
		{company, make([]byte, 70<<10), staticUser, staticPass, 413},
		{company, v2Body(t, "change", "deal", nil), staticUser, "wrong", 401},
		{"0123", v2Body(t, "change", "deal", nil), staticUser, staticPass, 404},
	}
	for i, d := range deliveries {
		if resp := h.post(d.company, d.body, d.user, d.pass); resp.StatusCode != d.want {
			t.Fatalf("delivery %d: status %d, want %d", i, resp.StatusCode, d.want)
		}
	}
	want := []delivered{{company, 1, 200}, {company, 2, 200}, {company, 1, 400}, {company, 3, 400}, {company, 0, 400}, {company, 0, 413}}
	if diff := cmp.Diff(want, obs.got); diff != "" {
		t.Errorf("observed deliveries (-want +got):\n%s", diff)
	}
	got := collect(t, reader)
	for k, v := range map[string]float64{
		`pipedrive_gateway.webhook_requests{status=200}`:                       2,
		`pipedrive_gateway.webhook_requests{status=400}`:                       3,
		`pipedrive_gateway.events_rejected{reason=invalid_payload}`:            3,
		`pipedrive_gateway.events_rejected{reason=too_large}`:                  1,
		`pipedrive_gateway.events_rejected{reason=unauthorized}`:               1,
		`pipedrive_gateway.events_rejected{reason=not_found}`:                  1,
		`pipedrive_gateway.first_attempt_failures{company_id=` + company + `}`: 3, // attempt 1, and two that did not tell
		`http.server.request.duration{http.request.method=POST,http.response.status_code=200,http.route=/webhooks/pipedrive/{company_id},url.scheme=http}`: 2,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}

// collect flattens the reader's sums and histogram counts to name{k=v,…}.
func collect(t *testing.T, reader sdkmetric.Reader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	key := func(name string, set attribute.Set) string {
		s := name + "{"
		for i, kv := range set.ToSlice() {
			if i > 0 {
				s += ","
			}
			s += string(kv.Key) + "=" + kv.Value.Emit()
		}
		return s + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Count)
				}
			}
		}
	}
	return out
}

// hosts is a credential store that knows the companies' domains.
type hosts struct{ creds }

func (hosts) CompanyHost(id string) (string, bool) {
	if id == "1001" {
		return "own-domain.pipedrive.com", true
	}
	return "", false
}

// TestManagedHost: a managed company's events name its own domain as
// ce-source, whatever meta.host says.
func TestManagedHost(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, nil, nil, hosts{creds{"1001": {"managed-user", "managed-password-0123456789abcdef"}}})
	body := v2Body(t, "create", "deal", func(m obj) { m["company_id"], m["host"] = "1001", "other-company.pipedrive.com" })
	if resp := h.post("1001", body, "managed-user", "managed-password-0123456789abcdef"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := h.messages()[0].Headers().Get("ce-source"); got != "https://own-domain.pipedrive.com" {
		t.Errorf("ce-source %q, want the company's own domain", got)
	}
}
