package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// readmePermissions is the NATS configuration the README gives operators.
func readmePermissions(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "### NATS subjects, buckets and permissions")
	if !ok {
		t.Fatal("README has no section on NATS permissions")
	}
	_, rest, ok = strings.Cut(rest, "```conf\n")
	conf, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README's NATS permissions section has no conf block")
	}
	return conf
}

// TestNATSPermissions runs the gateway on a NATS server configured as the
// README says: the gateway works with its permissions, and a consumer with
// its read-only ones reads events but can neither publish events, send the
// leader a command nor read the companies bucket.
func TestNATSPermissions(t *testing.T) {
	t.Parallel()
	conf := strings.NewReplacer("<gateway password>", "gw-pass", "<consumer password>", "cons-pass").Replace(readmePermissions(t))
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Run(t, func(o *server.Options) {
		parsed, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("the README's NATS configuration: %v", err)
		}
		parsed.Host, parsed.Port, parsed.JetStream, parsed.StoreDir, parsed.NoSigs, parsed.NoLog = o.Host, o.Port, true, o.StoreDir, true, true
		*o = *parsed
	})
	violations := &violationLog{}
	ns.SetLogger(violations, false, false)
	addr := ns.Addr().String()

	fake := pipedrivetest.NewServer(t)
	fake.AddCompany(pipedrivetest.Company{ID: 9912345, APIToken: "tok-a"})
	env := servicetest.Env(t)
	env["NATS_URL"] = "nats://gateway:gw-pass@" + addr
	env["STATE_KEY"] = servicetest.StateKey()
	env["PIPEDRIVE_API_URL"] = fake.URL()
	env["PIPEDRIVE_API_TOKENS"] = "tok-a"
	env["PUBLIC_URL"] = "https://hooks.example.com"
	env["ADMIN_TOKEN"] = adminToken
	env["PIPEDRIVE_CLIENT_ID"], env["PIPEDRIVE_CLIENT_SECRET"] = "app", "app-secret"
	r := servicetest.Start(t, env, slog.LevelWarn)
	servicetest.WaitStatus(t, r.OpsURL()+"/readyz", http.StatusOK, 15*time.Second)
	servicetest.WaitCompaniesOK(t, r.OpsURL(), adminToken, []int64{9912345}, 15*time.Second)
	// A command to the leader, a ticket in the installs bucket.
	if status, body := servicetest.Admin(r.OpsURL(), adminToken, http.MethodPost, "/admin/companies/9912345/reconcile"); status != http.StatusOK {
		t.Fatalf("reconcile through the leader: %d %s", status, body)
	}
	if status, body := servicetest.Admin(r.OpsURL(), adminToken, http.MethodPost, "/admin/installs"); status != http.StatusCreated {
		t.Fatalf("install ticket: %d %s", status, body)
	}

	consumer, err := nats.Connect("nats://consumer:cons-pass@"+addr, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(consumer.Close)
	live, err := consumer.SubscribeSync("pipedrive.>")
	if err != nil {
		t.Fatal(err)
	}
	consumer.Flush()
	hook := fake.Webhooks(9912345)[0]
	if got, err := servicetest.Post(r.IngressURL()+"/webhooks/pipedrive/9912345", hook.HTTPAuthUser, hook.HTTPAuthPassword, delivery(t, 9912345, "perm-1")); err != nil || got != http.StatusOK {
		t.Fatalf("delivery: %d %v", got, err)
	}
	if _, err := live.NextMsg(5 * time.Second); err != nil {
		t.Errorf("core subscription as the consumer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, _ := jetstream.New(consumer)
	cons, err := js.CreateOrUpdateConsumer(ctx, "PIPEDRIVE", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("consumer on the stream: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if n != 1 {
		t.Errorf("fetched %d events as the consumer, want 1 (%v)", n, batch.Error())
	}

	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 2*time.Second)
	}
	c1, cancel1 := short()
	defer cancel1()
	if _, err := js.Publish(c1, "pipedrive.create.deal", []byte(`{}`)); err == nil {
		t.Error("the consumer published an event")
	}
	// Even the leader's refusal would be an answer: the request must not
	// reach it at all.
	if _, err := consumer.Request("_PDGW.PIPEDRIVE.command", []byte(`{"op":"disconnect","company_id":9912345}`), 2*time.Second); err == nil {
		t.Error("the consumer got an answer to a command")
	}
	c2, cancel2 := short()
	defer cancel2()
	if kv, err := js.KeyValue(c2, "PIPEDRIVE_COMPANIES"); err == nil {
		if _, err := kv.Get(c2, "company.9912345"); err == nil {
			t.Error("the consumer read the companies bucket")
		}
	}
	if cs := servicetest.Companies(t, r.OpsURL(), adminToken); cs[9912345].State != "ok" {
		t.Errorf("company after the consumer's attempts: %+v", cs)
	}
	// The gateway itself ran into none: every violation is the consumer's.
	consumer.Close()
	for _, v := range violations.all() {
		if !strings.Contains(v, "consumer") {
			t.Errorf("the gateway lacks a permission: %s", v)
		}
	}

}

// violationLog keeps the server's permission violations, with the user.
type violationLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *violationLog) Errorf(format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); strings.Contains(msg, "Violation") {
		l.mu.Lock()
		l.seen = append(l.seen, msg)
		l.mu.Unlock()
	}
}
func (l *violationLog) Noticef(string, ...any) {}
func (l *violationLog) Warnf(string, ...any)   {}
func (l *violationLog) Fatalf(string, ...any)  {}
func (l *violationLog) Debugf(string, ...any)  {}
func (l *violationLog) Tracef(string, ...any)  {}

func (l *violationLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}
