package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/gateway"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/httpapi"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

const (
	staticUser = "pipedrive"
	staticPass = "static-secret-password"
	company    = "9912345"
)

// creds is a fixed in-memory company store.
type creds map[string][2]string

func (c creds) WebhookCredentials(id string) (string, string, bool) {
	v, ok := c[id]
	return v[0], v[1], ok
}

type harness struct {
	t     *testing.T
	nats  *natstest.Server
	relay *relay.Relay
	srv   *httptest.Server
	js    jetstream.JetStream
	cfg   *config.Config
}

// newHarness runs the gateway on production defaults against a real
// in-process NATS server, with env overriding settings.
func newHarness(t *testing.T, env map[string]string) *harness {
	t.Helper()
	return newHarnessWith(t, env, nil, nil)
}

// newHarnessWith is newHarness with the gateway's options edited and other
// credentials (nil: company 1001 managed).
func newHarnessWith(t *testing.T, env map[string]string, edit func(*gateway.Options), store gateway.Credentials) *harness {
	t.Helper()
	ns := natstest.Run(t)
	vars := map[string]string{
		"NATS_URL":         ns.ClientURL(),
		"STATE_KEY":        base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"WEBHOOK_USER":     staticUser,
		"WEBHOOK_PASSWORD": staticPass,
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx := context.Background()
	cfg, err := config.Load(ctx, envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	log := testlog.New(t)
	r, err := relay.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	go r.Run(rctx)
	t.Cleanup(func() {
		cancel()
		r.Close(context.Background())
	})
	opts := gateway.Options{
		MaxBodyBytes:   int64(cfg.HTTP.MaxBodyBytes),
		StaticUser:     cfg.HTTP.WebhookUser,
		StaticPassword: cfg.HTTP.WebhookPassword,
	}
	if edit != nil {
		edit(&opts)
	}
	if store == nil {
		store = creds{"1001": {"managed-user", "managed-password-0123456789abcdef"}}
	}
	gw := gateway.New(opts, r, store, log)
	srv := httptest.NewServer(httpapi.Public(httpapi.Options{Webhook: gw.Webhook, Log: log}))
	t.Cleanup(srv.Close)
	_, js := ns.Connect(t)
	return &harness{t: t, nats: ns, relay: r, srv: srv, js: js, cfg: cfg}
}

// post sends body to the company's webhook URL with Basic credentials
// (user empty = no Authorization header).
func (h *harness) post(companyID string, body []byte, user, pass string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/pipedrive/"+companyID, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// messages returns every message in the stream, in order.
func (h *harness) messages() []jetstream.Msg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, h.cfg.Stream.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []jetstream.Msg
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	for uint64(len(out)) < info.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			h.t.Fatalf("read message %d of %d: %v", len(out)+1, info.State.Msgs, err)
		}
		out = append(out, m)
	}
	return out
}
