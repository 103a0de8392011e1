package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/clock/clocktest"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// browser is one browser's side of the install flow: it keeps the install
// cookie it was given and never follows redirects, so the test sees each
// step.
type browser struct {
	t      *testing.T
	base   string // the public router
	cookie *http.Cookie
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	if b.cookie != nil {
		req.AddCookie(&http.Cookie{Name: b.cookie.Name, Value: b.cookie.Value})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == browserCookie && c.MaxAge > 0 {
			b.cookie = c
		}
	}
	return resp, string(body)
}

// open GETs the install page of a link (its path and query on b.base).
func (b *browser) open(link string) (int, string) {
	u, _ := url.Parse(link)
	req, _ := http.NewRequest(http.MethodGet, b.base+u.RequestURI(), nil)
	resp, body := b.do(req)
	return resp.StatusCode, body
}

// start posts the install form with ticket and returns the status and, on
// a redirect to Pipedrive, the state it carries.
func (b *browser) start(ticket string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+"/oauth/install", strings.NewReader(url.Values{"ticket": {ticket}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ := b.do(req)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc.Query().Get("state")
}

// callback is Pipedrive sending the browser back with query.
func (b *browser) callback(query url.Values) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, b.base+"/oauth/callback?"+query.Encode(), nil)
	resp, body := b.do(req)
	return resp.StatusCode, body
}

// ticketOf makes an install link through the admin API and returns it with
// its ticket.
func (e *env) ticketOf(body string) (link, ticket string) {
	e.t.Helper()
	status, out := do(e.t, "POST", e.server(Ops).URL+"/admin/installs", "admin-token", body)
	var got struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	json.Unmarshal([]byte(out), &got)
	u, err := url.Parse(got.URL)
	if status != http.StatusCreated || err != nil || !strings.HasPrefix(got.URL, e.opts.PublicURL+"/oauth/install?ticket=") {
		e.t.Fatalf("POST /admin/installs: %d %s", status, out)
	}
	now := time.Now()
	if e.clock != nil {
		now = e.clock.Now()
	}
	if d := got.ExpiresAt.Sub(now); d < 23*time.Hour || d > 25*time.Hour {
		e.t.Errorf("ticket expires in %v, want 24h", d)
	}
	return got.URL, u.Query().Get("ticket")
}

func tokenCalls(e *env) int { return e.fake.CallCount("", pipedrive.RouteToken) }

// TestOAuthState: a callback is accepted only with the state this gateway
// issued, from the browser it issued it to, once and within 10 minutes;
// every other callback answers 400 without a call to Pipedrive's token
// endpoint.
func TestOAuthState(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	e := newEnvWith(t, func(o *subscriptions.Options) { o.Clock = clk })
	e.clock = clk
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	pub := e.server(Public).URL
	alice := &browser{t: t, base: pub}
	_, ticket := e.ticketOf("")
	status, state := alice.start(ticket)
	if status != http.StatusSeeOther || state == "" || alice.cookie == nil {
		t.Fatalf("start: %d, state %q, cookie %+v", status, state, alice.cookie)
	}
	if !alice.cookie.HttpOnly || !alice.cookie.Secure || alice.cookie.SameSite != http.SameSiteLaxMode || alice.cookie.Path != "/oauth" {
		t.Errorf("install cookie = %+v", alice.cookie)
	}
	code := e.fake.IssueCode(55)
	mallory := &browser{t: t, base: pub}
	forgedCookie := &browser{t: t, base: pub, cookie: &http.Cookie{Name: browserCookie, Value: "z"}}
	for _, tc := range []struct {
		name  string
		b     *browser
		query url.Values
	}{
		{"missing_state", alice, url.Values{"code": {code}}},
		{"forged_state_and_cookie", forgedCookie, url.Values{"state": {"z"}, "code": {code}}},
		{"forged_state", alice, url.Values{"state": {"x" + state}, "code": {code}}},
		{"state_without_its_browser", mallory, url.Values{"state": {state}, "code": {code}}},
		{"state_with_another_cookie", forgedCookie, url.Values{"state": {state}, "code": {code}}},
	} {
		if status, body := tc.b.callback(tc.query); status != http.StatusBadRequest || !strings.Contains(body, "cannot be finished") {
			t.Errorf("%s: %d %s, want 400", tc.name, status, body)
		}
	}
	if n := tokenCalls(e); n != 0 {
		t.Fatalf("%d token requests for refused callbacks, want 0", n)
	}
	// The right browser still finishes: the refusals used nothing up.
	status, body := alice.callback(url.Values{"state": {state}, "code": {code}})
	if status != http.StatusOK || !strings.Contains(body, "Pipedrive company 55 is connected") {
		t.Fatalf("callback: %d %s", status, body)
	}
	if v := e.company(55); v.Auth != "oauth" || v.State != "ok" {
		t.Fatalf("company = %+v", v)
	}
	e.assertOneCorrect(55)
	// Reused: the state is gone (and the browser's cookie was cleared).
	again := &browser{t: t, base: pub, cookie: alice.cookie}
	if status, _ := again.callback(url.Values{"state": {state}, "code": {e.fake.IssueCode(55)}}); status != http.StatusBadRequest {
		t.Errorf("reused state: %d, want 400", status)
	}
	// Expired: 10 minutes on the gateway's clock.
	bob := &browser{t: t, base: pub}
	_, ticket = e.ticketOf("")
	_, state = bob.start(ticket)
	clk.Advance(10*time.Minute + time.Second)
	if status, _ := bob.callback(url.Values{"state": {state}, "code": {e.fake.IssueCode(55)}}); status != http.StatusBadRequest {
		t.Errorf("expired state: %d, want 400", status)
	}
	// Denied at Pipedrive: the state is used, nothing is exchanged.
	carol := &browser{t: t, base: pub}
	_, ticket = e.ticketOf("")
	_, state = carol.start(ticket)
	if status, body := carol.callback(url.Values{"state": {state}, "error": {"user_denied"}}); status != http.StatusBadRequest || !strings.Contains(body, "not allowed") {
		t.Errorf("denied: %d %s", status, body)
	}
	if n := tokenCalls(e); n != 1 {
		t.Errorf("%d token requests, want only the one of the accepted callback", n)
	}
}

// TestOAuthTickets: with OAUTH_INSTALL=ticket an install starts only with
// a one-time link from POST /admin/installs; a link expires after 24 h.
func TestOAuthTickets(t *testing.T) {
	t.Parallel()
	clk := clocktest.New()
	e := newEnvWith(t, func(o *subscriptions.Options) { o.Clock = clk })
	e.clock = clk
	pub := e.server(Public).URL
	b := &browser{t: t, base: pub}
	for _, link := range []string{"/oauth/install", "/oauth/install?ticket=", "/oauth/install?ticket=made-up"} {
		if status, body := b.open(link); status != http.StatusForbidden || !strings.Contains(body, "<h1>") {
			t.Errorf("GET %s: %d, want 403 with a page", link, status)
		}
	}
	for _, ticket := range []string{"", "made-up"} {
		if status, _ := b.start(ticket); status != http.StatusForbidden {
			t.Errorf("POST /oauth/install ticket %q: %d, want 403", ticket, status)
		}
	}
	link, ticket := e.ticketOf("")
	// Opening the link (or a chat app previewing it) uses nothing up.
	for range 2 {
		if status, body := b.open(link); status != http.StatusOK || !strings.Contains(body, `name="ticket" value="`+ticket+`"`) || !strings.Contains(body, "Continue to Pipedrive") {
			t.Fatalf("install page: %d %s", status, body)
		}
	}
	if status, state := b.start(ticket); status != http.StatusSeeOther || state == "" {
		t.Fatalf("start: %d", status)
	}
	if status, body := b.open(link); status != http.StatusForbidden || !strings.Contains(body, "cannot be used") {
		t.Errorf("used link: %d %s, want 403", status, body)
	}
	if status, _ := b.start(ticket); status != http.StatusForbidden {
		t.Errorf("used ticket: %d, want 403", status)
	}
	link, ticket = e.ticketOf("")
	clk.Advance(24*time.Hour + time.Second)
	if status, _ := b.open(link); status != http.StatusForbidden {
		t.Errorf("expired link: %d, want 403", status)
	}
	if status, _ := b.start(ticket); status != http.StatusForbidden {
		t.Errorf("expired ticket: %d, want 403", status)
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d calls to Pipedrive, want none", n)
	}
}

// TestOAuthOverAPITokenCompany: an install never replaces a company's
// API-token connection unless its ticket was made for that company.
func TestOAuthOverAPITokenCompany(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "tok-42", Domain: "acme"})
	e.fake.AddCompany(pipedrivetest.Company{ID: 43, Domain: "other"})
	ops, pub := e.server(Ops).URL, e.server(Public).URL
	if status, body := do(t, "POST", ops+"/admin/companies", "admin-token", `{"api_token":"tok-42"}`); status != http.StatusCreated {
		t.Fatalf("add: %d %s", status, body)
	}
	hook := e.assertOneCorrect(42)
	install := func(body string, company int64) (int, string) {
		b := &browser{t: t, base: pub}
		_, ticket := e.ticketOf(body)
		_, state := b.start(ticket)
		return b.callback(url.Values{"state": {state}, "code": {e.fake.IssueCode(company)}})
	}
	// Another company's ticket (or none at all) over the API-token company.
	if status, body := install("", 42); status != http.StatusConflict || !strings.Contains(body, "already connected") {
		t.Fatalf("install over an API-token company: %d %s, want 409", status, body)
	}
	if status, body := install(`{"company_id":43}`, 42); status != http.StatusConflict || !strings.Contains(body, "made for Pipedrive company 43") {
		t.Fatalf("install with company 43's ticket authorised for 42: %d %s, want 409", status, body)
	}
	if v := e.company(42); v.Auth != "api_token" || v.State != "ok" {
		t.Fatalf("after the refused installs: %+v, want the API-token connection kept", v)
	}
	if status, body := do(t, "POST", ops+"/admin/companies/42/reconcile", "admin-token", ""); status != http.StatusOK || !strings.Contains(body, `"auth":"api_token"`) {
		t.Errorf("reconcile with the kept token: %d %s", status, body)
	}
	if got := e.assertOneCorrect(42); got.ID != hook.ID {
		t.Errorf("webhook changed from %d to %d", hook.ID, got.ID)
	}
	// A ticket made for 42 re-authorises it.
	if status, body := install(`{"company_id":42}`, 42); status != http.StatusOK || !strings.Contains(body, "Pipedrive company 42 is connected") {
		t.Fatalf("install with a ticket for 42: %d %s", status, body)
	}
	if v := e.company(42); v.Auth != "oauth" || v.State != "ok" {
		t.Fatalf("after re-authorising: %+v", v)
	}
	e.assertOneCorrect(42)
}

// TestOAuthOpenInstall: with OAUTH_INSTALL=open anyone may install, still
// with a state bound to the browser.
func TestOAuthOpenInstall(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(o *subscriptions.Options) { o.OpenInstall = true })
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	b := &browser{t: t, base: e.server(Public).URL}
	if status, body := b.open("/oauth/install"); status != http.StatusOK || !strings.Contains(body, "Continue to Pipedrive") {
		t.Fatalf("install page: %d %s", status, body)
	}
	status, state := b.start("")
	if status != http.StatusSeeOther || state == "" {
		t.Fatalf("start: %d", status)
	}
	if status, body := b.callback(url.Values{"state": {state}, "code": {e.fake.IssueCode(55)}}); status != http.StatusOK || !strings.Contains(body, "is connected") {
		t.Fatalf("callback: %d %s", status, body)
	}
	e.assertOneCorrect(55)
	if status, _ := b.start("made-up"); status != http.StatusForbidden {
		t.Errorf("a made-up ticket in open mode: %d, want 403", status)
	}
}

func TestOAuthDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.OAuth = nil })
	srv := e.server(Public)
	if status, _ := do(t, "GET", srv.URL+"/oauth/install", "", ""); status != http.StatusNotFound {
		t.Errorf("install without an OAuth app: %d, want 404", status)
	}
	if status, body := do(t, "POST", e.server(Ops).URL+"/admin/installs", "admin-token", ""); status != http.StatusConflict || !strings.Contains(body, "PIPEDRIVE_CLIENT_ID") {
		t.Errorf("POST /admin/installs without an OAuth app: %d %s, want 409", status, body)
	}
}
