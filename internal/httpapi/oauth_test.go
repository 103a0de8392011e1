package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func TestOAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	e.fake.SetAccessTokenLifetime(time.Hour)
	srv := e.server(Public)
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
	if v := e.company(55); v.Auth != "oauth" || v.State != "ok" {
		t.Fatalf("company = %+v", v)
	}
	e.assertOneCorrect(55)
	if status, _ := callback(state, code, true); status != http.StatusBadGateway {
		t.Errorf("reused code: %d, want 502", status)
	}
}

func TestOAuthDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.OAuth = nil })
	srv := e.server(Public)
	if status, _ := do(t, "GET", srv.URL+"/oauth/install", "", ""); status != http.StatusNotFound {
		t.Errorf("install without an OAuth app: %d, want 404", status)
	}
}
