package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	cejetstream "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// TestCloudEventsSDK reads what the gateway published with the CloudEvents
// Go SDK's JetStream binding, as a consumer using it would: every
// attribute, datacontenttype included, and the Pipedrive headers through
// the NATS message the binding wraps.
func TestCloudEventsSDK(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Env(t), slog.LevelWarn)
	consumer, err := cejetstream.NewConsumer(svc.NATSURL(), "PIPEDRIVE", "pipedrive.>", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = consumer.OpenInbound(ctx) }()
	t.Cleanup(func() { _ = consumer.Close(context.Background()) })

	post(t, svc, sampleBody(t))
	msg, err := consumer.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if enc := msg.ReadEncoding(); enc != binding.EncodingBinary {
		t.Fatalf("encoding %v, want binary", enc)
	}
	ev, err := binding.ToEvent(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("not a valid CloudEvent: %v", err)
	}
	got := map[string]string{
		"specversion": ev.SpecVersion(), "id": ev.ID(), "type": ev.Type(), "source": ev.Source(),
		"subject": ev.Subject(), "time": ev.Time().UTC().Format(time.RFC3339Nano), "datacontenttype": ev.DataContentType(),
	}
	want := map[string]string{
		"specversion": "1.0", "id": "c41d7e22-9b0a-4f3c-8e61-5a2b7d9c0e14", "type": "com.pipedrive.deal.change",
		"source": "https://acme-sales.pipedrive.com", "subject": "5123", "time": "2025-06-02T10:02:45.088Z",
		"datacontenttype": "application/json",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if string(ev.Data()) != string(sampleBody(t)) {
		t.Error("data differs from the webhook body")
	}
	var decoded struct {
		Meta struct{ Entity string }
	}
	if err := ev.DataAs(&decoded); err != nil || decoded.Meta.Entity != "deal" {
		t.Errorf("DataAs: %v, %+v", err, decoded)
	}
	// The binding reads only ce-* and content-type; the rest is on the
	// NATS message it wraps.
	h := msg.(*cejetstream.Message).Msg.Header
	gotH := map[string]string{}
	for _, k := range []string{"Pipedrive-Company-Id", "Pipedrive-Webhook-Id", "Pipedrive-Webhook-Version", "Pipedrive-Attempt", "Nats-Msg-Id"} {
		gotH[k] = nats.Header(h).Get(k)
	}
	wantH := map[string]string{"Pipedrive-Company-Id": "9912345", "Pipedrive-Webhook-Id": "880021", "Pipedrive-Webhook-Version": "2.0",
		"Pipedrive-Attempt": "1", "Nats-Msg-Id": "c41d7e22-9b0a-4f3c-8e61-5a2b7d9c0e14"}
	if diff := cmp.Diff(wantH, gotH); diff != "" {
		t.Errorf("Pipedrive headers (-want +got):\n%s", diff)
	}
	if err := msg.Finish(nil); err != nil {
		t.Error(err)
	}
}
