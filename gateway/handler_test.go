package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWebhook(t *testing.T) {
	t.Parallel()
	type want struct {
		status  int
		subject string            // "" = nothing published
		headers map[string]string // subset of the message headers
		errCode string            // JSON "error" of a non-200 answer
	}
	cases := []struct {
		name       string
		company    string
		body       func(t *testing.T) []byte
		user, pass string
		want       want
	}{
		{
			name: "v2_create_deal", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) },
			want: want{status: 200, subject: "pipedrive.create.deal", headers: map[string]string{
				"Nats-Msg-Id": "c41d7e22-9b0a-4f3c-8e61-create-deal", "ce-id": "c41d7e22-9b0a-4f3c-8e61-create-deal",
				"ce-specversion": "1.0", "ce-type": "com.pipedrive.deal.create", "ce-source": "https://acme-sales.pipedrive.com",
				"ce-subject": "5123", "ce-time": "2025-06-02T10:02:45.088Z", "Content-Type": "application/json",
				"Pipedrive-Company-Id": company, "Pipedrive-Webhook-Id": "880021", "Pipedrive-Webhook-Version": "2.0",
				"Pipedrive-Attempt": "1",
			}},
		},
		{
			name: "v2_change_person", body: func(t *testing.T) []byte { return v2Body(t, "change", "person", nil) },
			want: want{status: 200, subject: "pipedrive.change.person"},
		},
		{
			name: "v2_delete_organization", body: func(t *testing.T) []byte { return v2Body(t, "delete", "organization", nil) },
			want: want{status: 200, subject: "pipedrive.delete.organization", headers: map[string]string{"ce-type": "com.pipedrive.organization.delete"}},
		},
		{
			name: "v2_unknown_entity_passes", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal_product", nil) },
			want: want{status: 200, subject: "pipedrive.create.deal_product"},
		},
		{
			name: "v2_numeric_ids",
			body: func(t *testing.T) []byte {
				return v2Body(t, "change", "deal", func(m obj) { m["company_id"], m["entity_id"], m["webhook_id"] = 9912345, 5123, 880021 })
			},
			want: want{status: 200, subject: "pipedrive.change.deal", headers: map[string]string{
				"Pipedrive-Company-Id": company, "ce-subject": "5123", "Pipedrive-Webhook-Id": "880021"}},
		},
		{
			name: "v2_retry_attempt_header",
			body: func(t *testing.T) []byte { return v2Body(t, "change", "deal", func(m obj) { m["attempt"] = 3 }) },
			want: want{status: 200, subject: "pipedrive.change.deal", headers: map[string]string{"Pipedrive-Attempt": "3"}},
		},
		{
			name: "v2_no_host_source_falls_back",
			body: func(t *testing.T) []byte { return v2Body(t, "change", "deal", func(m obj) { delete(m, "host") }) },
			want: want{status: 200, subject: "pipedrive.change.deal", headers: map[string]string{"ce-source": "pipedrive://company/9912345"}},
		},
		{
			name: "v2_user_entity",
			body: func(t *testing.T) []byte { return v2User(t, 1669304389) },
			want: want{status: 200, subject: "pipedrive.change.user", headers: map[string]string{
				"ce-time": "2022-11-24T15:39:49Z", "ce-subject": "20517"}},
		},
		{
			name: "v1_added", body: func(t *testing.T) []byte { return v1Body(t, "added", "deal", 0, nil) },
			want: want{status: 200, subject: "pipedrive.create.deal", headers: map[string]string{
				"Pipedrive-Webhook-Version": "1.0", "Pipedrive-Attempt": "1", "ce-subject": "5123",
				"ce-time": "2025-06-02T10:10:07.512Z", "Pipedrive-Webhook-Id": "880020", "Pipedrive-Company-Id": company}},
		},
		{
			name: "v1_updated_retry", body: func(t *testing.T) []byte { return v1Body(t, "updated", "deal", 2, nil) },
			want: want{status: 200, subject: "pipedrive.change.deal", headers: map[string]string{"Pipedrive-Attempt": "3"}},
		},
		{
			name: "v1_deleted", body: func(t *testing.T) []byte { return v1Body(t, "deleted", "person", 0, nil) },
			want: want{status: 200, subject: "pipedrive.delete.person"},
		},
		{
			name: "v1_merged", body: func(t *testing.T) []byte { return v1Body(t, "merged", "organization", 0, nil) },
			want: want{status: 200, subject: "pipedrive.change.organization"},
		},
		{
			name: "v1_activity_type_lowercased", body: func(t *testing.T) []byte { return v1Body(t, "added", "activityType", 0, nil) },
			want: want{status: 200, subject: "pipedrive.create.activitytype", headers: map[string]string{"ce-type": "com.pipedrive.activitytype.create"}},
		},
		{
			name: "v1_without_timestamp_micro",
			body: func(t *testing.T) []byte {
				return v1Body(t, "updated", "deal", 0, func(m obj) { delete(m, "timestamp_micro") })
			},
			want: want{status: 200, subject: "pipedrive.change.deal", headers: map[string]string{"ce-time": "2025-06-02T10:10:07Z"}},
		},
		{
			name: "managed_company_own_credentials", company: "1001", user: "managed-user", pass: "managed-password-0123456789abcdef",
			body: func(t *testing.T) []byte {
				return v2Body(t, "create", "deal", func(m obj) { m["company_id"] = "1001" })
			},
			want: want{status: 200, subject: "pipedrive.create.deal"},
		},
		// Rejections.
		{name: "entity_wildcard_tail", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal.>", nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "entity_star", body: func(t *testing.T) []byte { return v2Body(t, "create", "*", nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "entity_space", body: func(t *testing.T) []byte { return v2Body(t, "create", "de al", nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "entity_empty", body: func(t *testing.T) []byte { return v2Body(t, "create", "", nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		// SPEC §3: entity and object are lower-cased before the token check.
		{name: "entity_uppercase_lowered", body: func(t *testing.T) []byte { return v2Body(t, "create", "Deal", nil) }, want: want{status: 200, subject: "pipedrive.create.deal"}},
		{name: "entity_camel_case_lowered", body: func(t *testing.T) []byte { return v2Body(t, "create", "activityType", nil) }, want: want{status: 200, subject: "pipedrive.create.activitytype"}},
		{name: "v2_unknown_action", body: func(t *testing.T) []byte { return v2Body(t, "merged", "deal", nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "v1_unknown_action", body: func(t *testing.T) []byte { return v1Body(t, "renamed", "deal", 0, nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "v1_object_with_dot", body: func(t *testing.T) []byte { return v1Body(t, "added", "deal.x", 0, nil) }, want: want{status: 400, errCode: "invalid_payload"}},
		{
			name: "company_mismatch",
			body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", func(m obj) { m["company_id"] = "777" }) },
			want: want{status: 400, errCode: "invalid_payload"},
		},
		{
			name: "company_missing",
			body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", func(m obj) { delete(m, "company_id") }) },
			want: want{status: 400, errCode: "invalid_payload"},
		},
		{
			name: "entity_id_with_newline",
			body: func(t *testing.T) []byte {
				return v2Body(t, "create", "deal", func(m obj) { m["entity_id"] = "1\r\nX-Evil: 1" })
			},
			want: want{status: 400, errCode: "invalid_payload"},
		},
		{
			name: "id_wrong_type",
			body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", func(m obj) { m["id"] = obj{"a": 1} }) },
			want: want{status: 400, errCode: "invalid_payload"},
		},
		// SPEC §3: a timestamp is never a reason for a 400.
		{
			name: "user_without_timestamp",
			body: func(t *testing.T) []byte {
				return v2Body(t, "change", "user", func(m obj) { delete(m, "timestamp") })
			},
			want: want{status: 200, subject: "pipedrive.change.user", headers: map[string]string{"ce-time": ""}},
		},
		{
			name: "bad_timestamp",
			body: func(t *testing.T) []byte {
				return v2Body(t, "change", "deal", func(m obj) { m["timestamp"] = "yesterday" })
			},
			want: want{status: 200, subject: "pipedrive.change.deal", headers: map[string]string{"ce-time": ""}},
		},
		{name: "not_json", body: func(*testing.T) []byte { return []byte("meta=1&action=create") }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "truncated_json", body: func(*testing.T) []byte { return []byte(`{"meta":{"action":"create"`) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "json_array", body: func(*testing.T) []byte { return []byte(`[{"meta":{}}]`) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "two_objects", body: func(t *testing.T) []byte { return append(v2Body(t, "create", "deal", nil), []byte(`{}`)...) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "no_meta", body: func(*testing.T) []byte { return []byte(`{"data":{"id":1}}`) }, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "unknown_shape", body: func(*testing.T) []byte {
			return []byte(`{"meta":{"action":"create","entity":"deal","company_id":"9912345"}}`)
		}, want: want{status: 400, errCode: "invalid_payload"}},
		{name: "empty_body", body: func(*testing.T) []byte { return nil }, want: want{status: 400, errCode: "invalid_payload"}},
		{
			name: "too_large", body: func(t *testing.T) []byte { return bytes.Repeat([]byte(" "), 2<<20) },
			want: want{status: 413, errCode: "body_too_large"},
		},
		{name: "missing_credentials", user: "-", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) }, want: want{status: 401, errCode: "unauthorized"}},
		{name: "wrong_password", user: staticUser, pass: "nope", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) }, want: want{status: 401, errCode: "unauthorized"}},
		{name: "wrong_user", user: "someone", pass: staticPass, body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) }, want: want{status: 401, errCode: "unauthorized"}},
		{
			name: "other_company_credentials", user: "managed-user", pass: "managed-password-0123456789abcdef",
			body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) },
			want: want{status: 401, errCode: "unauthorized"},
		},
		{
			name: "static_credentials_not_for_managed_company", company: "1001", user: staticUser, pass: staticPass,
			body: func(t *testing.T) []byte {
				return v2Body(t, "create", "deal", func(m obj) { m["company_id"] = "1001" })
			},
			want: want{status: 401, errCode: "unauthorized"},
		},
		{name: "leading_zero_company", company: "09912345", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) }, want: want{status: 404, errCode: "not_found"}},
		{name: "non_numeric_company", company: "acme", body: func(t *testing.T) []byte { return v2Body(t, "create", "deal", nil) }, want: want{status: 404, errCode: "not_found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			companyID := tc.company
			if companyID == "" {
				companyID = company
			}
			user, pass := tc.user, tc.pass
			switch user {
			case "":
				user, pass = staticUser, staticPass
			case "-":
				user = ""
			}
			resp := h.post(companyID, tc.body(t), user, pass)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tc.want.status, body)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", got)
			}
			if tc.want.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.want.errCode != "" {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error != tc.want.errCode || e.Message == "" {
					t.Errorf("error body = %s, want code %q and a message", body, tc.want.errCode)
				}
				if strings.Contains(string(body), staticPass) {
					t.Error("error body leaks the password")
				}
			}
			msgs := h.messages()
			if tc.want.subject == "" {
				if len(msgs) != 0 {
					t.Fatalf("published %d messages, want none", len(msgs))
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("published %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.Subject() != tc.want.subject {
				t.Errorf("subject = %q, want %q", m.Subject(), tc.want.subject)
			}
			if !bytes.Equal(m.Data(), tc.body(t)) {
				t.Error("published data differs from the request body")
			}
			got := map[string]string{}
			for k := range tc.want.headers {
				got[k] = m.Headers().Get(k)
			}
			if diff := cmp.Diff(tc.want.headers, got); tc.want.headers != nil && diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if m.Headers().Get("Nats-Msg-Id") == "" || m.Headers().Get("Nats-Msg-Id") != m.Headers().Get("ce-id") {
				t.Errorf("Nats-Msg-Id %q and ce-id %q must be set and equal", m.Headers().Get("Nats-Msg-Id"), m.Headers().Get("ce-id"))
			}
		})
	}
}
