package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock/clocktest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

const testPublicURL = "https://hooks.example.com"

// env is a subscription manager on a real in-process NATS against a fake
// Pipedrive, behind the routers built here.
type env struct {
	t    *testing.T
	fake *pipedrivetest.Server
	m    *subscriptions.Manager
	opts Options
	// clock is the manager's clock when a test gives it one.
	clock *clocktest.Fake
}

func newEnv(t *testing.T, edit ...func(*Options)) *env {
	t.Helper()
	return newEnvWith(t, nil, edit...)
}

// newEnvWith is newEnv with the manager's options edited too.
func newEnvWith(t *testing.T, subs func(*subscriptions.Options), edit ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, fake: pipedrivetest.NewServer(t)}
	e.fake.SetOAuthClient("app", "app-secret")
	ns := natstest.Run(t)
	nc, js := ns.Connect(t)
	api := pipedrive.New(pipedrive.Options{
		APIURL: e.fake.URL(), OAuthURL: e.fake.URL(), ClientID: "app", ClientSecret: "app-secret",
		Timeout: 500 * time.Millisecond,
	})
	log := testlog.New(t)
	so := subscriptions.Options{
		WebhookURL: WebhookURL(testPublicURL), OAuthRedirectURL: OAuthRedirectURL(testPublicURL),
		WebhookName: "pipedrive-gateway", ResyncInterval: time.Hour, StreamName: "PIPEDRIVE", Replicas: 1,
		StateKey: make([]byte, 32), LeaseTTL: 1500 * time.Millisecond,
	}
	if subs != nil {
		subs(&so)
	}
	var err error
	e.m, err = subscriptions.New(context.Background(), so, nc, js, api, log)
	if err != nil {
		t.Fatal(err)
	}
	e.opts = Options{
		OpenInstall: so.OpenInstall,
		Webhook:     func(c echo.Context) error { return c.NoContent(http.StatusOK) },
		OAuth:       e.m,
		PublicURL:   testPublicURL,
		Ready:       e.m.Ready,
		Admin:       e.m, AdminToken: "admin-token",
		Log: log,
	}
	for _, f := range edit {
		f(&e.opts)
	}
	return e
}

// run runs the manager until the test ends and waits until it leads: a
// probe company reconciles.
func (e *env) run() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.m.Run(ctx) })
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	e.fake.AddCompany(pipedrivetest.Company{ID: 1, APIToken: "tok-probe"})
	if _, err := e.m.ConnectToken(ctx, "tok-probe"); err != nil {
		e.t.Fatal(err)
	}
	waitFor(e.t, func() bool {
		_, err := e.m.Reconcile(ctx, 1)
		return !errors.Is(err, subscriptions.ErrNoLeader)
	})
}

// server serves one of the routers until the test ends.
func (e *env) server(router func(Options) *echo.Echo) *httptest.Server {
	srv := httptest.NewServer(router(e.opts))
	e.t.Cleanup(srv.Close)
	return srv
}

// do calls url+path with a bearer token (none if empty).
func do(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// company is the manager's view of one company.
func (e *env) company(id int64) subscriptions.View {
	e.t.Helper()
	views, err := e.m.Companies(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range views {
		if v.CompanyID == id {
			return v
		}
	}
	e.t.Fatalf("company %d is not connected", id)
	return subscriptions.View{}
}

// assertOneCorrect checks that the company has exactly one webhook at
// Pipedrive, the wanted one with the credentials the ingress accepts, and
// that the manager remembers it.
func (e *env) assertOneCorrect(id int64) pipedrive.Webhook {
	e.t.Helper()
	key := strconv.FormatInt(id, 10)
	waitFor(e.t, func() bool { _, _, ok := e.m.WebhookCredentials(key); return ok })
	user, pass, _ := e.m.WebhookCredentials(key)
	hooks := e.fake.Webhooks(id)
	if len(hooks) != 1 {
		e.t.Fatalf("company %d has %d webhooks, want exactly one: %v", id, len(hooks), hooks)
	}
	w := hooks[0]
	if w.SubscriptionURL != testPublicURL+"/webhooks/pipedrive/"+key || w.Version != "2.0" || w.EventAction != "*" || w.EventObject != "*" ||
		!w.Active() || w.HTTPAuthUser != user || w.HTTPAuthPassword != pass {
		e.t.Fatalf("company %d webhook is not the wanted one: %v", id, w)
	}
	if v := e.company(id); v.WebhookID == nil || *v.WebhookID != w.ID {
		e.t.Errorf("manager remembers webhook %v, Pipedrive has %d", v.WebhookID, w.ID)
	}
	return w
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
