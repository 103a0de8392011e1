package store

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
)

func TestSecretsSealedInKV(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := Open(ctx, js, "PIPEDRIVE_COMPANIES", 1, bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := &Company{ID: 42, Auth: AuthAPIToken, WebhookUser: "pdgw-u", Status: Status{State: StatePending},
		Secrets: Secrets{APIToken: "tok-42-very-secret", WebhookPassword: "Zm9vYmFyLXdlYmhvb2stcGFzc3dvcmQtMzItYnl0ZXM"}}
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "PIPEDRIVE_COMPANIES")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "company.42")
	if err != nil {
		t.Fatal(err)
	}
	raw := string(entry.Value())
	for _, secret := range []string{"tok-42-very-secret", c.Secrets.WebhookPassword} {
		if strings.Contains(raw, secret) {
			t.Errorf("KV value contains a secret in clear: %s", raw)
		}
	}
	// Another key cannot open it.
	other, _ := newSealer(make([]byte, 32))
	var r record
	json.Unmarshal(entry.Value(), &r)
	if _, err := other.open(r.Sealed, "42"); err == nil {
		t.Error("sealed secrets open with a different key")
	}
	if _, err := s.seal.open(r.Sealed, "43"); err == nil {
		t.Error("sealed secrets open under another company id")
	}
	got, err := s.Get(ctx, 42)
	if err != nil || got.Secrets != c.Secrets {
		t.Errorf("read back %+v, %v; want the secrets it stored", got, err)
	}
}
