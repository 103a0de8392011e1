package gateway

import (
	"encoding/base64"
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
