package gateway

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name, header, user, pass string
		ok                       bool
	}{
		{"plain", "Basic " + enc("u:p"), "u", "p", true},
		{"lower_case_scheme", "basic " + enc("u:p"), "u", "p", true},
		{"colon_in_password", "Basic " + enc("u:p:q"), "u", "p:q", true},
		{"empty_password", "Basic " + enc("u:"), "u", "", true},
		{"no_colon", "Basic " + enc("up"), "", "", false},
		{"bad_base64", "Basic !!!", "", "", false},
		{"bearer", "Bearer " + enc("u:p"), "", "", false},
		{"empty", "", "", "", false},
		{"too_long", "Basic " + enc(string(make([]byte, 600))), "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf [512]byte
			user, pass, ok := basicAuth(tc.header, buf[:])
			if ok != tc.ok || string(user) != tc.user || string(pass) != tc.pass {
				t.Errorf("basicAuth = %q, %q, %v; want %q, %q, %v", user, pass, ok, tc.user, tc.pass, tc.ok)
			}
		})
	}
}

// fixedCreds is a credential store: ok with an empty user marks a managed
// company whose credentials cannot be read.
type fixedCreds map[string][2]string

func (c fixedCreds) WebhookCredentials(id string) (string, string, bool) {
	v, ok := c[id]
	return v[0], v[1], ok
}

// TestAuthorize: a managed company accepts only its own credentials, an
// unmanaged one the static credentials, and a managed company whose
// credentials cannot be read is unanswerable (503), whatever is presented:
// never the static credentials in its stead.
func TestAuthorize(t *testing.T) {
	t.Parallel()
	g := New(Options{StaticUser: "static", StaticPassword: "static-pw"}, nil,
		fixedCreds{"42": {"pdgw-42", "own-pw"}, "43": {"", ""}}, slog.New(slog.DiscardHandler))
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name, company, header string
		want                  authResult
	}{
		{"managed_own", "42", basic("pdgw-42", "own-pw"), authOK},
		{"managed_static", "42", basic("static", "static-pw"), authDenied},
		{"managed_wrong", "42", basic("pdgw-42", "nope"), authDenied},
		{"unmanaged_static", "77", basic("static", "static-pw"), authOK},
		{"unmanaged_none", "77", "", authDenied},
		{"unreadable_static", "43", basic("static", "static-pw"), authUnreadable},
		{"unreadable_none", "43", "", authUnreadable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/webhooks/pipedrive/"+tc.company, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if got := g.authorize(r, tc.company); got != tc.want {
				t.Errorf("authorize = %d, want %d", got, tc.want)
			}
		})
	}
}
