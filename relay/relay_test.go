package relay_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

func load(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	if _, ok := env["NATS_URL"]; ok {
		env["STATE_KEY"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	}
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newRelay starts a relay and runs it (its monitor) until the test ends.
func newRelay(t *testing.T, cfg *config.Config, opts ...relay.Option) (*relay.Relay, error) {
	r, err := relay.New(context.Background(), cfg, testlog.New(t), opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay run: %v", err)
		}
		r.Close(context.Background())
	})
	return r, nil
}

func TestMaxPayloadTooSmall(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, func(o *server.Options) { o.MaxPayload = 256 << 10 })
	_, err := newRelay(t, load(t, map[string]string{"NATS_URL": ns.ClientURL(), "MAX_BODY_BYTES": "512KiB"}))
	if err == nil || !strings.Contains(err.Error(), "MAX_BODY_BYTES") {
		t.Fatalf("err = %v, want a refusal naming MAX_BODY_BYTES", err)
	}
}

func TestEmbeddedFitsMaxBody(t *testing.T) {
	t.Parallel()
	r, err := newRelay(t, load(t, map[string]string{
		"DATA_DIR": t.TempDir(), "EMBEDDED_NATS_LISTEN": "127.0.0.1:0", "MAX_BODY_BYTES": "4MiB",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Conn().MaxPayload(); got < 4<<20+64<<10 {
		t.Errorf("embedded max payload %d, want room for a 4 MiB body and headers", got)
	}
	ev := &event.Event{Action: "create", Object: "deal", ID: "big", CompanyID: "1", Version: "2.0", Attempt: 1, Body: bytes.Repeat([]byte("x"), 4<<20)}
	if _, err := r.Publish(context.Background(), ev); err != nil {
		t.Fatalf("publishing a 4 MiB event: %v", err)
	}
}

func TestPublishUnavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	r, err := newRelay(t, load(t, map[string]string{"NATS_URL": ns.ClientURL(), "PUBLISH_TIMEOUT": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	ns.Stop()
	start := time.Now()
	_, err = r.Publish(context.Background(), &event.Event{Action: "create", Object: "deal", ID: "x", CompanyID: "1", Version: "2.0", Attempt: 1, Body: []byte("{}")})
	if !errors.Is(err, relay.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("failing took %v, want within PUBLISH_TIMEOUT", took)
	}
	if r.Ready(context.Background()) == nil {
		t.Error("ready while NATS is down")
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	h := relay.Headers(&event.Event{Action: "change", Object: "deal", ID: "id-1", CompanyID: "7", WebhookID: "9", Version: "2.0",
		Attempt: 2, EntityID: "5", Time: time.Date(2025, 6, 2, 10, 2, 45, 88e6, time.UTC)})
	want := map[string]string{
		"ce-specversion": "1.0", "ce-id": "id-1", "ce-type": "com.pipedrive.deal.change", "ce-source": "pipedrive://company/7",
		"ce-subject": "5", "ce-time": "2025-06-02T10:02:45.088Z", "Content-Type": "application/json", "content-type": "application/json",
		"Pipedrive-Company-Id": "7", "Pipedrive-Webhook-Id": "9", "Pipedrive-Webhook-Version": "2.0", "Pipedrive-Attempt": "2",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("%d headers, want %d", len(h), len(want))
	}
}

func TestHeadersBackfill(t *testing.T) {
	t.Parallel()
	h := relay.Headers(&event.Event{Action: "create", Object: "deal", ID: "bf-1", CompanyID: "7", Version: "2.0", EntityID: "5", Backfill: "g-1"})
	if got := h.Get(event.HeaderBackfill); got != "g-1" {
		t.Errorf("%s = %q, want g-1", event.HeaderBackfill, got)
	}
	if _, ok := h[event.HeaderWebhookID]; ok {
		t.Errorf("recovered event has %s", event.HeaderWebhookID)
	}
}
