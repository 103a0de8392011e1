package subscriptions

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// runManager runs m until the test ends (or stop is called) and returns stop.
func runManager(t *testing.T, m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// leaders counts replicas that currently lead.
type leaders struct {
	mu      sync.Mutex
	current map[string]bool
	maxSeen int
}

func (l *leaders) track(id string) func(bool) {
	return func(on bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.current[id] = on
		n := 0
		for _, v := range l.current {
			if v {
				n++
			}
		}
		l.maxSeen = max(l.maxSeen, n)
	}
}

func (l *leaders) who() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, v := range l.current {
		if v {
			out = append(out, id)
		}
	}
	return out
}

func TestLeaderElection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.ReplicaID = "a" })
	e.connect(42, "tok-42")
	e.connect(43, "tok-43")
	b := e.newManager(func(o *Options) { o.ReplicaID = "b" })
	// The scheduler runs on real time here: the lease does.
	e.m.sched.clock, b.sched.clock = realClock{}, realClock{}
	e.m.opts.Clock, b.opts.Clock = realClock{}, realClock{}
	l := &leaders{current: map[string]bool{}}
	e.m.lease.onChange, b.lease.onChange = l.track("a"), l.track("b")

	stopA := runManager(t, e.m)
	waitFor(t, func() bool { return len(l.who()) == 1 })
	runManager(t, b)
	waitFor(t, func() bool { return e.company(42).Status.State == StateOK && e.company(43).Status.State == StateOK })
	if who := l.who(); len(who) != 1 || who[0] != "a" {
		t.Fatalf("leaders = %v, want [a]", who)
	}

	// Kill the leader without a clean hand-over: its connection drops, so it
	// can neither renew nor release; b must take over after the TTL.
	e.m.nc.Close()
	stopA()
	killed := time.Now()
	waitFor(t, func() bool { w := l.who(); return len(w) == 1 && w[0] == "b" })
	t.Logf("takeover after %v (lease TTL 1.5s)", time.Since(killed))
	if took := time.Since(killed); took > 5*time.Second {
		t.Errorf("takeover took %v", took)
	}
	e.fake.DeleteBehindBack(e.company(42).WebhookID)
	rep, err := b.send(context.Background(), "reconcile", 42)
	if err != nil || rep.Error != "" {
		t.Fatalf("reconcile on the new leader: %+v %v", rep, err)
	}
	e.assertOneCorrect(42)
	e.assertOneCorrect(43)
	if l.maxSeen != 1 {
		t.Errorf("saw %d leaders at once", l.maxSeen)
	}
	for _, id := range []int64{42, 43} {
		if n := e.fake.MaxConcurrentWebhooks(id); n > 2 {
			t.Errorf("company %d had %d webhooks at once", id, n)
		}
	}
}

// adminClient calls the admin API of m on a test server.
type adminClient struct {
	t   *testing.T
	url string
}

func newAdmin(t *testing.T, m *Manager) *adminClient {
	e := echo.New()
	m.RegisterAdmin(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &adminClient{t: t, url: srv.URL}
}

func (a *adminClient) do(method, path, token, body string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runManager(t, e.m)
	e.waitLeader()
	e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "tok-42", Domain: "acme"})
	a := newAdmin(t, e.m)

	for _, tok := range []string{"", "wrong"} {
		if status, _ := a.do("GET", "/admin/companies", tok, ""); status != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, status)
		}
	}
	if status, body := a.do("POST", "/admin/companies", "admin-token", `{"api_token":"nope"}`); status != http.StatusBadRequest {
		t.Errorf("rejected token: %d %s, want 400", status, body)
	}
	if status, _ := a.do("POST", "/admin/companies", "admin-token", `{"token":"x"}`); status != http.StatusBadRequest {
		t.Errorf("bad body: %d, want 400", status)
	}
	status, body := a.do("POST", "/admin/companies", "admin-token", `{"api_token":"tok-42"}`)
	if status != http.StatusCreated {
		t.Fatalf("add: %d %s", status, body)
	}
	var v View
	json.Unmarshal([]byte(body), &v)
	if v.CompanyID != 42 || v.Domain != "acme" || v.Auth != AuthAPIToken || v.State != StateOK || v.WebhookID == nil {
		t.Errorf("added company = %s", body)
	}
	if strings.Contains(body, "tok-42") || strings.Contains(body, e.company(42).Secrets.WebhookPassword) {
		t.Error("admin answer leaks a secret")
	}
	status, body = a.do("GET", "/admin/companies", "admin-token", "")
	if status != 200 || !strings.Contains(body, `"company_id":42`) || !strings.Contains(body, `"companies":[`) {
		t.Errorf("list: %d %s", status, body)
	}
	e.fake.DeleteBehindBack(*v.WebhookID)
	status, body = a.do("POST", "/admin/companies/42/reconcile", "admin-token", "")
	if status != 200 || strings.Contains(body, `"webhook_id":`+itoa(*v.WebhookID)) {
		t.Errorf("reconcile: %d %s, want a new webhook id", status, body)
	}
	e.assertOneCorrect(42)
	if status, _ := a.do("POST", "/admin/companies/77/reconcile", "admin-token", ""); status != 404 {
		t.Errorf("reconcile unknown: %d", status)
	}
	// Credentials work until the company is deleted, then stop at once.
	user := e.company(42).WebhookUser
	waitFor(t, func() bool { u, _, ok := e.m.cache.WebhookCredentials("42"); return ok && u == user })
	if status, body := a.do("DELETE", "/admin/companies/42", "admin-token", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if _, _, ok := e.m.cache.WebhookCredentials("42"); ok {
		t.Error("deleted company's credentials still accepted")
	}
	if n := len(e.fake.Webhooks(42)); n != 0 {
		t.Errorf("%d webhooks left at Pipedrive after delete", n)
	}
	if status, _ := a.do("DELETE", "/admin/companies/42", "admin-token", ""); status != 404 {
		t.Errorf("delete again: %d, want 404", status)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.AdminToken = "" })
	a := newAdmin(t, e.m)
	if status, _ := a.do("GET", "/admin/companies", "anything", ""); status != http.StatusNotFound {
		t.Errorf("status %d, want 404", status)
	}
}

func TestNoLeaderAnswers503(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.connect(42, "tok-42")
	a := newAdmin(t, e.m) // manager not running: nobody leads
	if status, body := a.do("POST", "/admin/companies/42/reconcile", "admin-token", ""); status != http.StatusServiceUnavailable {
		t.Errorf("status %d %s, want 503", status, body)
	}
}

func TestSecretsSealedInKV(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.connect(42, "tok-42-very-secret")
	c := e.company(42)
	kv, err := e.js.KeyValue(context.Background(), "PIPEDRIVE_COMPANIES")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(context.Background(), "company.42")
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
	if _, err := e.m.store.seal.open(r.Sealed, "43"); err == nil {
		t.Error("sealed secrets open under another company id")
	}
}

func TestOAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runManager(t, e.m)
	e.waitLeader()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	e.fake.SetAccessTokenLifetime(time.Hour)
	ing := echo.New()
	e.m.RegisterOAuth(ing)
	srv := httptest.NewServer(ing)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noRedirect.Get(srv.URL + "/oauth/install")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	state := loc.Query().Get("state")
	if resp.StatusCode != http.StatusFound || state == "" || loc.Query().Get("redirect_uri") != testPublicURL+"/oauth/callback" {
		t.Fatalf("install: %d %s", resp.StatusCode, loc)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == stateCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure {
		t.Fatalf("state cookie = %+v", cookie)
	}
	callback := func(state, code string, withCookie bool) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/oauth/callback?state="+url.QueryEscape(state)+"&code="+url.QueryEscape(code), nil)
		if withCookie {
			req.AddCookie(&http.Cookie{Name: stateCookie, Value: cookie.Value})
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code := e.fake.IssueCode(55)
	if status, _ := callback(state, code, false); status != http.StatusBadRequest {
		t.Errorf("callback without the state cookie: %d, want 400 (CSRF)", status)
	}
	if status, _ := callback("forged", code, true); status != http.StatusBadRequest {
		t.Errorf("callback with a forged state: %d, want 400", status)
	}
	status, body := callback(state, code, true)
	if status != 200 || !strings.Contains(body, "Connected Pipedrive company 55") {
		t.Fatalf("callback: %d %s", status, body)
	}
	c := e.company(55)
	if c.Auth != AuthOAuth || c.Secrets.RefreshToken == "" || c.Status.State != StateOK {
		t.Fatalf("company = %+v", c)
	}
	e.assertOneCorrect(55)
	if status, _ := callback(state, code, true); status != http.StatusBadGateway {
		t.Errorf("reused code: %d, want 502", status)
	}

	// Refresh before expiry: 56 minutes on, the token has < 5 min left.
	oldAccess := c.Secrets.AccessToken
	e.clock.Advance(56 * time.Minute)
	if rep, err := e.m.send(context.Background(), "reconcile", 55); err != nil || rep.Error != "" {
		t.Fatalf("reconcile after refresh: %+v %v", rep, err)
	}
	c = e.company(55)
	if c.Secrets.AccessToken == oldAccess || !c.Secrets.AccessExpiresAt.After(e.clock.Now().Add(50*time.Minute)) {
		t.Errorf("token not refreshed: expires %v", c.Secrets.AccessExpiresAt)
	}
	if e.fake.CallCount("", pipedrive.RouteToken) != 3 { // exchange, the refused reuse, one refresh
		t.Errorf("token calls = %d", e.fake.CallCount("", pipedrive.RouteToken))
	}

	// A revoked refresh token surfaces in the status.
	e.fake.RevokeToken(c.Secrets.RefreshToken)
	e.clock.Advance(56 * time.Minute)
	rep, err := e.m.send(context.Background(), "reconcile", 55)
	c = e.company(55)
	if err != nil || rep.Error == "" || !rep.Permanent || c.Status.State != StateError || !strings.Contains(c.Status.LastError, "refresh") {
		t.Errorf("after revoke: reply %+v %v, status %+v", rep, err, c.Status)
	}
}

func itoa(n int64) string {
	return strings.TrimSpace(strings.Replace(string(mustJSON(n)), `"`, "", -1))
}
