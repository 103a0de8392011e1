package subscriptions

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock/clocktest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

const testPublicURL = "https://hooks.example.com"

// testWebhookURL is the subscription URL the wiring gives the manager.
func testWebhookURL(id int64) string {
	return fmt.Sprintf("%s/webhooks/pipedrive/%d", testPublicURL, id)
}

// env is a manager on a real in-process NATS against a fake Pipedrive.
type env struct {
	t     *testing.T
	fake  *pipedrivetest.Server
	ns    *natstest.Server
	js    jetstream.JetStream
	api   *pipedrive.Client
	clock *clocktest.Fake
	m     *Manager
	// inspect reads the store on a connection of its own, so that tests
	// can kill a manager's connection and still look.
	inspect *store.Store
}

func newEnv(t *testing.T, edit ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, fake: pipedrivetest.NewServer(t), ns: natstest.Run(t), clock: clocktest.New()}
	e.fake.SetClock(e.clock.Now)
	e.api = pipedrive.New(pipedrive.Options{
		APIURL: e.fake.URL(), OAuthURL: e.fake.URL(), ClientID: "app", ClientSecret: "app-secret",
		Timeout: 500 * time.Millisecond, Now: e.clock.Now,
	})
	e.m = e.newManager(func(o *Options) {
		for _, f := range edit {
			f(o)
		}
	})
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if e.inspect, err = store.Open(context.Background(), js, "PIPEDRIVE_COMPANIES", 1, e.m.keys); err != nil {
		t.Fatal(err)
	}
	return e
}

// newManager makes a manager with its own NATS connection (a replica).
func (e *env) newManager(edit func(*Options)) *Manager {
	e.t.Helper()
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	e.js = js
	opts := Options{
		WebhookURL: testWebhookURL, OAuthRedirectURL: testPublicURL + "/oauth/callback",
		WebhookName: "pipedrive-gateway", ResyncInterval: time.Hour, StreamName: "PIPEDRIVE", Replicas: 1,
		StateKey: bytes.Repeat([]byte{9}, 32), Clock: e.clock, LeaseTTL: 1500 * time.Millisecond,
	}
	if edit != nil {
		edit(&opts)
	}
	m, err := New(context.Background(), opts, nc, js, e.api, testlog.New(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// connect adds a company to the fake and the store, as POST /admin/companies
// does before its first reconcile.
func (e *env) connect(id int64, token string) *store.Company {
	e.t.Helper()
	e.fake.AddCompany(pipedrivetest.Company{ID: id, APIToken: token})
	me, err := e.api.Me(context.Background(), "", pipedrive.Credentials{APIToken: token})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.m.upsert(context.Background(), me, store.AuthAPIToken, func(s *store.Secrets) { s.APIToken = token })
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) reconcile(id int64) result {
	e.t.Helper()
	return e.m.rec.reconcile(context.Background(), id)
}

func (e *env) company(id int64) *store.Company {
	e.t.Helper()
	c, err := e.inspect.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// writes counts creates and deletes received by the fake.
func (e *env) writes() int {
	return e.fake.CallCount("", pipedrive.RouteCreateWebhook) + e.fake.CallCount("", pipedrive.RouteDeleteWebhook)
}

// assertOneCorrect checks that the company has exactly one webhook of ours
// and that it is the wanted one.
func (e *env) assertOneCorrect(id int64) pipedrive.Webhook {
	e.t.Helper()
	c := e.company(id)
	want := desired{URL: testWebhookURL(id), Name: "pipedrive-gateway", User: c.WebhookUser, Password: c.Secrets.WebhookPassword, KnownID: c.WebhookID}
	var ours []pipedrive.Webhook
	for _, w := range e.fake.Webhooks(id) {
		if isOurs(want, w) {
			ours = append(ours, w)
		}
	}
	if len(ours) != 1 || whyWrong(want, ours[0]) != "" {
		e.t.Fatalf("company %d has %d webhooks of ours, want exactly one correct: %v", id, len(ours), ours)
	}
	if c.WebhookID != ours[0].ID {
		e.t.Errorf("store remembers webhook %d, Pipedrive has %d", c.WebhookID, ours[0].ID)
	}
	return ours[0]
}

// waitLeader waits until a running manager leads and answers commands.
func (e *env) waitLeader() {
	e.t.Helper()
	waitFor(e.t, func() bool {
		_, err := e.m.send(context.Background(), opReconcile, 1<<40) // a company nobody has
		return err == nil
	})
}
