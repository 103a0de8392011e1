package pipedrive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptrTime(t time.Time) *time.Time { return &t }
func ptrInt(n int) *int              { return &n }

func TestWebhookUnmarshal(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		in      string
		want    Webhook
		wantErr bool
	}{
		{
			name: "documented_example",
			in: `{"id":880021,"company_id":9912345,"owner_id":20441,"user_id":20441,"event_action":"*","event_object":"*",
				"subscription_url":"https://hooks.example.net/pipedrive/9912345","version":"2.0","is_active":1,
				"add_time":"2025-06-01T12:00:00.000Z","remove_time":null,"type":"general","http_auth_user":"pd-9912345",
				"http_auth_password":"pw","remove_reason":null,"last_delivery_time":"2025-06-02T10:02:45.000Z",
				"last_http_status":200,"admin_id":20441,"name":"nats-gateway"}`,
			want: Webhook{
				ID: 880021, CompanyID: 9912345, OwnerID: 20441, UserID: 20441, EventAction: "*", EventObject: "*",
				SubscriptionURL: "https://hooks.example.net/pipedrive/9912345", Version: "2.0", IsActive: 1,
				AddTime: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Type: "general", HTTPAuthUser: "pd-9912345",
				HTTPAuthPassword: "pw", LastDeliveryTime: ptrTime(time.Date(2025, 6, 2, 10, 2, 45, 0, time.UTC)),
				LastHTTPStatus: ptrInt(200), AdminID: 20441, Name: "nats-gateway",
			},
		},
		{
			name: "string_ids_bool_active_space_dates",
			in: `{"id":"880022","company_id":"9912345","is_active":true,"version":2.0,
				"add_time":"2025-06-01 12:00:00","last_delivery_time":"2025-06-02 10:02:45","last_http_status":"410",
				"remove_time":"2025-06-03 00:00:00","remove_reason":"auto-deleted"}`,
			want: Webhook{
				ID: 880022, CompanyID: 9912345, IsActive: 1, Version: "2.0",
				AddTime:          time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
				LastDeliveryTime: ptrTime(time.Date(2025, 6, 2, 10, 2, 45, 0, time.UTC)),
				LastHTTPStatus:   ptrInt(410),
				RemoveTime:       ptrTime(time.Date(2025, 6, 3, 0, 0, 0, 0, time.UTC)),
				RemoveReason:     "auto-deleted",
			},
		},
		{
			name: "nulls_and_false",
			in:   `{"id":1,"is_active":false,"http_auth_user":null,"http_auth_password":null,"last_http_status":null,"last_delivery_time":null}`,
			want: Webhook{ID: 1},
		},
		{
			name: "unreadable_remove_time_counts_as_removed",
			in:   `{"id":2,"is_active":1,"remove_time":"yesterday"}`,
			want: Webhook{ID: 2, IsActive: 1, RemoveTime: ptrTime(time.Time{})},
		},
		{
			name:    "object_id",
			in:      `{"id":{"x":1}}`,
			wantErr: true,
		},
		{
			name:    "non_numeric_id",
			in:      `{"id":"abc"}`,
			wantErr: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got Webhook
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %t", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("webhook (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWebhookActive(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		w    Webhook
		want bool
	}{
		{name: "active", w: Webhook{IsActive: 1}, want: true},
		{name: "inactive", w: Webhook{IsActive: 0}, want: false},
		{name: "removed", w: Webhook{IsActive: 1, RemoveTime: ptrTime(time.Now())}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.w.Active(); got != tc.want {
				t.Errorf("Active() = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestWebhookJSONRoundTrip(t *testing.T) {
	t.Parallel()
	want := Webhook{
		ID: 5, CompanyID: 6, OwnerID: 7, UserID: 8, EventAction: "*", EventObject: "deal",
		SubscriptionURL: "https://h.example/x", Version: "1.0", IsActive: 1,
		AddTime: time.Date(2025, 6, 1, 12, 0, 0, 123e6, time.UTC), Type: "general",
		HTTPAuthUser: "u", HTTPAuthPassword: "p", LastHTTPStatus: ptrInt(0), AdminID: 9, Name: "n",
	}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"is_active":1`, `"remove_time":null`, `"add_time":"2025-06-01T12:00:00.123Z"`, `"remove_reason":null`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("marshalled %s lacks %s", b, key)
		}
	}
	var got Webhook
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()

	const secret = "s3cr3t-value"
	w := Webhook{ID: 1, HTTPAuthUser: "u", HTTPAuthPassword: secret, SubscriptionURL: "https://x:" + secret + "@h.example/p?token=" + secret}
	cases := []struct {
		name string
		v    any
	}{
		{name: "webhook", v: w},
		{name: "webhook_pointer", v: &w},
		{name: "credentials_api_token", v: Credentials{APIToken: secret}},
		{name: "credentials_access_token", v: Credentials{AccessToken: secret}},
		{name: "token", v: Token{AccessToken: secret, RefreshToken: secret}},
		{name: "create_request", v: CreateWebhookRequest{HTTPAuthPassword: secret}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", tc.v)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", tc.v)
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				fmt.Fprintf(&buf, verb+"\n", tc.v)
			}
			if strings.Contains(buf.String(), secret) {
				t.Errorf("secret printed:\n%s", buf.String())
			}
		})
	}
}
