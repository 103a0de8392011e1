package gateway_test

import (
	"net/http"
	"testing"
	"time"
)

func TestDedupe(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		bodies func(t *testing.T) [][]byte
		want   int // messages in the stream
	}{
		{
			name: "v2_retries_attempt_1_to_4",
			bodies: func(t *testing.T) [][]byte {
				var out [][]byte
				for a := 1; a <= 4; a++ {
					out = append(out, v2Body(t, "change", "deal", func(m obj) { m["attempt"] = a }))
				}
				return out
			},
			want: 1,
		},
		{
			name: "v1_retries_0_to_3",
			bodies: func(t *testing.T) [][]byte {
				var out [][]byte
				for r := 0; r <= 3; r++ {
					out = append(out, v1Body(t, "updated", "deal", r, nil))
				}
				return out
			},
			want: 1,
		},
		{
			name: "v2_user_retries_same_id",
			bodies: func(t *testing.T) [][]byte {
				return [][]byte{v2User(t, 1669304389), v2User(t, 1669304389)}
			},
			want: 1,
		},
		{
			// meta.id is the user id for every user event: distinct events
			// must still get distinct dedupe ids.
			name: "v2_user_distinct_events",
			bodies: func(t *testing.T) [][]byte {
				return [][]byte{v2User(t, 1669304389), v2User(t, 1669304390), v2User(t, 1669305000)}
			},
			want: 3,
		},
		{
			name: "v2_user_string_and_numeric_timestamp_agree",
			bodies: func(t *testing.T) [][]byte {
				iso := v2Body(t, "change", "user", func(m obj) {
					m["id"], m["entity_id"], m["timestamp"] = "20517", "20517", "2022-11-24T15:39:49.000Z"
				})
				return [][]byte{v2User(t, 1669304389), iso}
			},
			want: 1,
		},
		{
			name: "v1_distinct_events_same_entity",
			bodies: func(t *testing.T) [][]byte {
				return [][]byte{
					v1Body(t, "updated", "deal", 0, nil),
					v1Body(t, "updated", "deal", 0, func(m obj) { m["timestamp_micro"] = 1748859007512001 }),
				}
			},
			want: 2,
		},
		{
			name: "v2_distinct_event_ids",
			bodies: func(t *testing.T) [][]byte {
				return [][]byte{
					v2Body(t, "change", "deal", func(m obj) { m["id"] = "a" }),
					v2Body(t, "change", "deal", func(m obj) { m["id"] = "b" }),
				}
			},
			want: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			for i, b := range tc.bodies(t) {
				if resp := h.post(company, b, staticUser, staticPass); resp.StatusCode != http.StatusOK {
					t.Fatalf("delivery %d: status %d, want 200", i+1, resp.StatusCode)
				}
			}
			if got := len(h.messages()); got != tc.want {
				t.Errorf("stream holds %d messages, want %d", got, tc.want)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	cases := []struct {
		name, method, path string
		want               int
	}{
		{"get_webhook", http.MethodGet, "/webhooks/pipedrive/9912345", http.StatusMethodNotAllowed},
		{"put_webhook", http.MethodPut, "/webhooks/pipedrive/9912345", http.StatusMethodNotAllowed},
		{"unknown_path", http.MethodPost, "/webhooks/other/9912345", http.StatusNotFound},
		{"no_company", http.MethodPost, "/webhooks/pipedrive/", http.StatusNotFound},
		{"root", http.MethodGet, "/", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, nil)
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestNATSOutage stops the NATS server: the gateway must answer 503 within
// PUBLISH_TIMEOUT + 1 s, and 200 again after the server is back, without a
// restart of the gateway.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PUBLISH_TIMEOUT": "2s"})
	if resp := h.post(company, v2Body(t, "create", "deal", nil), staticUser, staticPass); resp.StatusCode != 200 {
		t.Fatalf("before outage: status %d", resp.StatusCode)
	}
	h.nats.Stop()
	start := time.Now()
	resp := h.post(company, v2Body(t, "change", "deal", nil), staticUser, staticPass)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("503 took %v, want at most PUBLISH_TIMEOUT + 1s", took)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("during outage: status %d, want 503", resp.StatusCode)
	}
	h.nats.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := h.post(company, v2Body(t, "change", "deal", nil), staticUser, staticPass)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: still %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := len(h.messages()); got != 2 {
		t.Errorf("stream holds %d messages, want 2 (one before, one after the outage)", got)
	}
}
