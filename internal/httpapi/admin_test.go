package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "tok-42", Domain: "acme"})
	ops := e.server(Ops).URL

	for _, tok := range []string{"", "wrong"} {
		if status, _ := do(t, "GET", ops+"/admin/companies", tok, ""); status != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, status)
		}
	}
	if status, body := do(t, "POST", ops+"/admin/companies", "admin-token", `{"api_token":"nope"}`); status != http.StatusBadRequest {
		t.Errorf("rejected token: %d %s, want 400", status, body)
	}
	if status, _ := do(t, "POST", ops+"/admin/companies", "admin-token", `{"token":"x"}`); status != http.StatusBadRequest {
		t.Errorf("bad body: %d, want 400", status)
	}
	status, body := do(t, "POST", ops+"/admin/companies", "admin-token", `{"api_token":"tok-42"}`)
	if status != http.StatusCreated {
		t.Fatalf("add: %d %s", status, body)
	}
	var v subscriptions.View
	json.Unmarshal([]byte(body), &v)
	if v.CompanyID != 42 || v.Domain != "acme" || v.Auth != "api_token" || v.State != "ok" || v.WebhookID == nil {
		t.Errorf("added company = %s", body)
	}
	if strings.Contains(body, "tok-42") || strings.Contains(body, e.assertOneCorrect(42).HTTPAuthPassword) {
		t.Error("admin answer leaks a secret")
	}
	status, body = do(t, "GET", ops+"/admin/companies", "admin-token", "")
	if status != 200 || !strings.Contains(body, `"company_id":42`) || !strings.Contains(body, `"companies":[`) {
		t.Errorf("list: %d %s", status, body)
	}
	e.fake.DeleteBehindBack(*v.WebhookID)
	status, body = do(t, "POST", ops+"/admin/companies/42/reconcile", "admin-token", "")
	if status != 200 || strings.Contains(body, `"webhook_id":`+strconv.FormatInt(*v.WebhookID, 10)) {
		t.Errorf("reconcile: %d %s, want a new webhook id", status, body)
	}
	e.assertOneCorrect(42)
	if status, _ := do(t, "POST", ops+"/admin/companies/77/reconcile", "admin-token", ""); status != 404 {
		t.Errorf("reconcile unknown: %d", status)
	}
	if status, body := do(t, "GET", ops+"/admin/companies/42", "admin-token", ""); status != 200 || !strings.Contains(body, `"company_id":42`) || strings.Contains(body, "tok-42") {
		t.Errorf("get: %d %s", status, body)
	}
	if status, _ := do(t, "GET", ops+"/admin/companies/77", "admin-token", ""); status != 404 {
		t.Errorf("get unknown: %d", status)
	}
	// Credentials work until the company is deleted, then stop at once.
	user := e.fake.Webhooks(42)[0].HTTPAuthUser
	waitFor(t, func() bool { u, _, ok := e.m.WebhookCredentials("42"); return ok && u == user })
	if status, body := do(t, "DELETE", ops+"/admin/companies/42", "admin-token", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if _, _, ok := e.m.WebhookCredentials("42"); ok {
		t.Error("deleted company's credentials still accepted")
	}
	if n := len(e.fake.Webhooks(42)); n != 0 {
		t.Errorf("%d webhooks left at Pipedrive after delete", n)
	}
	if status, _ := do(t, "DELETE", ops+"/admin/companies/42", "admin-token", ""); status != 404 {
		t.Errorf("delete again: %d, want 404", status)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.AdminToken = "" })
	ops := e.server(Ops).URL
	if status, _ := do(t, "GET", ops+"/admin/companies", "anything", ""); status != http.StatusNotFound {
		t.Errorf("status %d, want 404", status)
	}
}

func TestNoLeaderAnswers503(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "tok-42"})
	// The manager is not running: nobody leads, the company stays pending.
	if v, err := e.m.ConnectToken(t.Context(), "tok-42"); err != nil || v.State != "pending" {
		t.Fatalf("connect without a leader: %+v %v", v, err)
	}
	ops := e.server(Ops).URL
	if status, body := do(t, "POST", ops+"/admin/companies/42/reconcile", "admin-token", ""); status != http.StatusServiceUnavailable {
		t.Errorf("status %d %s, want 503", status, body)
	}
}

// TestAdminDisconnectKeepsCompany: when our webhook cannot be deleted the
// disconnect answers 502 with the reason and keeps the company;
// ?force=true forgets it anyway.
func TestAdminDisconnectKeepsCompany(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 42, APIToken: "tok-42"})
	ops := e.server(Ops).URL
	if status, body := do(t, "POST", ops+"/admin/companies", "admin-token", `{"api_token":"tok-42"}`); status != http.StatusCreated {
		t.Fatalf("add: %d %s", status, body)
	}
	e.fake.RevokeToken("tok-42")
	if status, body := do(t, "DELETE", ops+"/admin/companies/42", "admin-token", ""); status != http.StatusBadGateway || !strings.Contains(body, "is kept") || !strings.Contains(body, "401") {
		t.Fatalf("delete with a revoked token: %d %s, want 502 with the reason", status, body)
	}
	if status, _ := do(t, "GET", ops+"/admin/companies/42", "admin-token", ""); status != http.StatusOK {
		t.Errorf("company not kept: %d", status)
	}
	if status, _ := do(t, "DELETE", ops+"/admin/companies/42?force=maybe", "admin-token", ""); status != http.StatusBadRequest {
		t.Errorf("force=maybe: %d, want 400", status)
	}
	if status, body := do(t, "DELETE", ops+"/admin/companies/42?force=true", "admin-token", ""); status != http.StatusNoContent {
		t.Fatalf("forced delete: %d %s", status, body)
	}
	if status, _ := do(t, "GET", ops+"/admin/companies/42", "admin-token", ""); status != http.StatusNotFound {
		t.Errorf("company still there after a forced delete: %d", status)
	}
}
