package pipedrivetest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	s := pipedrivetest.New(pipedrivetest.Options{})
	s.AddCompanies(2, 1)
	hook := s.PutWebhook(2, pipedrive.Webhook{Name: "gw", IsActive: 1})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	cases := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantBody   string // a substring
	}{
		{name: "put", method: "POST", path: "/_fake/companies/1/objects", body: `{"op":"put","kind":"deal","fields":{"title":"Acme"}}`, wantStatus: 200, wantBody: `"title": "Acme"`},
		{name: "change", method: "POST", path: "/_fake/companies/1/objects", body: `{"op":"change","kind":"deal","id":1,"fields":{"value":5}}`, wantStatus: 200, wantBody: `"value": 5`},
		{name: "delete", method: "POST", path: "/_fake/companies/1/objects", body: `{"op":"delete","kind":"deal","id":1}`, wantStatus: 200, wantBody: `"deleted": true`},
		{name: "missing_object", method: "POST", path: "/_fake/companies/1/objects", body: `{"op":"change","kind":"deal","id":9}`, wantStatus: 404, wantBody: "no such object"},
		{name: "bad_body", method: "POST", path: "/_fake/companies/1/objects", body: `{"op":"put","kind":"deal","colour":"red"}`, wantStatus: 400, wantBody: "JSON object"},
		{name: "unknown_company", method: "POST", path: "/_fake/companies/3/objects", body: `{}`, wantStatus: 404, wantBody: "no such company"},
		{name: "list", method: "GET", path: "/_fake/companies/1/objects?kind=deal", wantStatus: 200, wantBody: `"kind": "deal"`},
		{name: "webhooks", method: "GET", path: "/_fake/companies/2/webhooks", wantStatus: 200, wantBody: `"name": "gw"`},
		{name: "delete_webhook", method: "POST", path: "/_fake/companies/2/webhooks/" + itoa(int(hook.ID)) + "/delete", wantStatus: 200, wantBody: `"deleted": true`},
		{name: "delete_webhook_again", method: "POST", path: "/_fake/companies/2/webhooks/" + itoa(int(hook.ID)) + "/delete", wantStatus: 404, wantBody: "no such webhook"},
		{name: "budget", method: "POST", path: "/_fake/companies/1/budget", body: `{"tokens":50}`, wantStatus: 200, wantBody: `"remaining": 50`},
		{name: "latency", method: "POST", path: "/_fake/latency", body: `{"latency":"0s"}`, wantStatus: 200, wantBody: `"latency": "0s"`},
	}
	for _, tc := range cases { // in order: each step builds on the last
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
			t.Errorf("%s: %d %s; want %d containing %s", tc.name, resp.StatusCode, b, tc.wantStatus, tc.wantBody)
		}
	}
	if n := len(s.Webhooks(2)); n != 0 {
		t.Errorf("webhooks after delete = %d", n)
	}

	// The API itself is served beside the control API; /_fake/calls counts it.
	c := pipedrive.New(pipedrive.Options{APIURL: srv.URL})
	if _, err := c.Me(t.Context(), "", pipedrive.Credentials{APIToken: "token-1"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/_fake/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Routes map[string]pipedrivetest.Usage `json:"routes"`
		Total  pipedrivetest.Usage            `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]pipedrivetest.Usage{pipedrive.RouteMe: {Calls: 1, Tokens: 2}}
	if diff := cmp.Diff(want, got.Routes); diff != "" || got.Total != (pipedrivetest.Usage{Calls: 1, Tokens: 2}) {
		t.Errorf("calls (-want +got):\n%s total %+v", diff, got.Total)
	}
}
