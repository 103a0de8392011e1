package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pipedrive-gateway/pipedrive-gateway/gateway"
)

// deliver posts body with the static credentials and returns the status,
// the JSON error code (if any) and the messages now in the stream.
func deliver(t *testing.T, companyID string, body []byte) (int, string, *harness) {
	t.Helper()
	h := newHarness(t, nil)
	resp := h.post(companyID, body, staticUser, staticPass)
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Error string }
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error, h
}

// TestTimestampForms: every form of meta.timestamp Pipedrive has sent is
// read, and none is a reason for a 400. With a meta.id the dedupe id is
// meta.id whatever the time says.
func TestTimestampForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		ts     any
		ceTime string // "" = no ce-time
	}{
		{"rfc3339_no_fraction", "2025-06-02T10:02:45Z", "2025-06-02T10:02:45Z"},
		{"rfc3339_millis", "2025-06-02T10:02:45.088Z", "2025-06-02T10:02:45.088Z"},
		{"rfc3339_micros", "2025-06-02T10:02:45.088123Z", "2025-06-02T10:02:45.088123Z"},
		{"rfc3339_nanos", "2025-06-02T10:02:45.088123456Z", "2025-06-02T10:02:45.088123456Z"},
		{"rfc3339_offset", "2025-06-02T12:02:45+02:00", "2025-06-02T10:02:45Z"},
		{"rfc3339_negative_offset_millis", "2025-06-02T05:32:45.088-04:30", "2025-06-02T10:02:45.088Z"},
		{"space_separated_utc", "2022-11-24 15:31:36", "2022-11-24T15:31:36Z"},
		{"unix_seconds_number", 1669304389, "2022-11-24T15:39:49Z"},
		{"unix_seconds_string", "1669304389", "2022-11-24T15:39:49Z"},
		{"unix_millis_number", 1751289600123, "2025-06-30T13:20:00.123Z"},
		{"unix_millis_string", "1751289600123", "2025-06-30T13:20:00.123Z"},
		{"garbage", "yesterday", ""},
		{"empty", "", ""},
		{"null", nil, ""},
		{"negative", -5, ""},
		{"fraction_seconds", 1669304389.5, ""},
		{"object", obj{"at": 1}, ""},
		{"year_10000_millis", 253402300800000, ""},
		{"february_31", "2025-02-31T10:00:00Z", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := v2Body(t, "change", "deal", func(m obj) { m["timestamp"], m["id"] = tc.ts, "ts-"+tc.name })
			status, code, h := deliver(t, company, body)
			if status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", status, code)
			}
			msgs := h.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			hd := msgs[0].Headers()
			if got := hd.Get("ce-time"); got != tc.ceTime {
				t.Errorf("ce-time %q, want %q", got, tc.ceTime)
			}
			if _, set := hd["ce-time"]; set != (tc.ceTime != "") {
				t.Errorf("ce-time present = %v", set)
			}
			if got := hd.Get("Nats-Msg-Id"); got != "ts-"+tc.name {
				t.Errorf("Nats-Msg-Id %q, want meta.id", got)
			}
		})
	}
}

// parseID is the dedupe id the gateway gives body.
func parseID(t *testing.T, body []byte) string {
	t.Helper()
	ev, err := gateway.Parse(body, company)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return ev.ID
}

// TestDedupePrecision: where the dedupe id hashes the time (v2 user, v1),
// the same instant in any spelling gives one id, and times that differ in
// the digits Pipedrive sent give two.
func TestDedupePrecision(t *testing.T) {
	t.Parallel()
	user := func(ts any) []byte {
		return v2Body(t, "change", "user", func(m obj) { m["id"], m["entity_id"], m["timestamp"] = "20517", "20517", ts })
	}
	v1 := func(edit func(obj)) []byte { return v1Body(t, "updated", "deal", 0, edit) }
	cases := []struct {
		name string
		a, b []byte
		same bool
	}{
		{"user_millis_number_and_string", user(1751289600123), user("1751289600123"), true},
		{"user_millis_and_rfc3339", user(1751289600123), user("2025-06-30T13:20:00.123Z"), true},
		{"user_rfc3339_offset_same_instant", user("2025-06-30T13:20:00.123Z"), user("2025-06-30T15:20:00.123+02:00"), true},
		{"user_seconds_and_zero_millis", user(1669304389), user("2022-11-24T15:39:49.000Z"), true},
		{"user_one_millisecond_apart", user(1751289600123), user(1751289600124), false},
		{"user_same_second_other_millis", user("2025-06-30T13:20:00.123Z"), user("2025-06-30T13:20:00.456Z"), false},
		{"user_space_separated_and_rfc3339", user("2022-11-24 15:31:36"), user("2022-11-24T15:31:36Z"), true},
		{"user_garbage_same_text", user("soon"), user("soon"), true},
		{"user_garbage_other_text", user("soon"), user("later"), false},
		{"v1_micro_one_apart", v1(nil), v1(func(m obj) { m["timestamp_micro"] = 1748859007512001 }), false},
		{"v1_milli_only_one_apart",
			v1(func(m obj) { delete(m, "timestamp_micro"); m["timestamp_milli"] = 1748859007512 }),
			v1(func(m obj) { delete(m, "timestamp_micro"); m["timestamp_milli"] = 1748859007513 }), false},
		{"v1_seconds_only_same_second",
			v1(func(m obj) { delete(m, "timestamp_micro") }),
			v1(func(m obj) { delete(m, "timestamp_micro"); m["user_id"] = 1 }), true},
		{"v1_retry_same_event", v1Body(t, "updated", "deal", 0, nil), v1Body(t, "updated", "deal", 3, nil), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := parseID(t, tc.a), parseID(t, tc.b)
			if (a == b) != tc.same {
				t.Errorf("ids %q and %q: same = %v, want %v", a, b, a == b, tc.same)
			}
		})
	}
}

// TestV1Times: ce-time comes from the most precise time v1 sent.
func TestV1Times(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		edit   func(obj)
		ceTime string
	}{
		{"micro", nil, "2025-06-02T10:10:07.512Z"},
		{"milli_only", func(m obj) { delete(m, "timestamp_micro"); m["timestamp_milli"] = 1748859007513 }, "2025-06-02T10:10:07.513Z"},
		{"seconds_only", func(m obj) { delete(m, "timestamp_micro") }, "2025-06-02T10:10:07Z"},
		{"micro_unreadable", func(m obj) { m["timestamp_micro"] = "soon" }, "2025-06-02T10:10:07Z"},
		{"none", func(m obj) { delete(m, "timestamp_micro"); delete(m, "timestamp") }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, code, h := deliver(t, company, v1Body(t, "updated", "deal", 0, tc.edit))
			if status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", status, code)
			}
			msgs := h.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			if got := msgs[0].Headers().Get("ce-time"); got != tc.ceTime {
				t.Errorf("ce-time %q, want %q", got, tc.ceTime)
			}
		})
	}
}

// TestAmbiguous: bodies that readers can take two ways are refused with
// 400 ambiguous_payload and nothing is published.
func TestAmbiguous(t *testing.T) {
	t.Parallel()
	good := string(v2Body(t, "change", "deal", nil))
	// The encoder sorts keys: data, meta, previous.
	withTop := func(extra string) []byte { return []byte(`{` + extra + `,` + good[1:]) }
	inMeta := func(extra string) []byte {
		return []byte(strings.Replace(good, `"meta":{`, `"meta":{`+extra+`,`, 1))
	}
	cases := []struct {
		name string
		body []byte
	}{
		{"top_Meta_other_company", withTop(`"Meta":{"company_id":"1002","action":"delete","entity":"person"}`)},
		{"top_META", withTop(`"META":{}`)},
		{"meta_twice", withTop(`"meta":{"version":"2.0","action":"delete","entity":"person","company_id":"1002","id":"x"}`)},
		{"meta_twice_null", withTop(`"meta":null`)},
		{"meta_escaped", withTop(`"m\u0065ta":{}`)},
		{"webhook_id_with_kelvin_sign", inMeta(`"webhoo` + "\u212a" + `_id":"1"`)},
		{"host_with_long_s", inMeta(`"ho` + "\u017f" + `t":"evil.example"`)},
		{"version_dotted_capital_i", inMeta(`"vers` + "\u0130" + `on":"1.0"`)},
		{"ENTITY_in_meta", inMeta(`"ENTITY":"person"`)},
		{"Company_ID_in_meta", inMeta(`"Company_ID":"1002"`)},
		{"company_id_twice", inMeta(`"company_id":"1002"`)},
		{"action_twice", inMeta(`"action":"delete"`)},
		{"Action_in_meta", inMeta(`"Action":"delete"`)},
		{"ID_in_meta", inMeta(`"ID":"other"`)},
		{"host_in_other_case", inMeta(`"Host":"evil.example"`)},
		{"timestamp_twice", inMeta(`"timestamp":"2025-01-01T00:00:00Z"`)},
		{"Data_at_top", withTop(`"Data":{"id":1}`)},
		{"previous_twice", withTop(`"previous":{"title":"x"}`)},
		{"v1_event_twice", []byte(strings.Replace(string(v1Body(t, "updated", "deal", 0, nil)), `"event":`, `"event":"deleted.person","event":`, 1))},
		{"v1_Retry", []byte(strings.Replace(string(v1Body(t, "updated", "deal", 0, nil)), `"retry":`, `"Retry":3,"retry":`, 1))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !json.Valid(tc.body) {
				t.Fatalf("test body is not JSON: %s", tc.body)
			}
			status, code, h := deliver(t, company, tc.body)
			if status != http.StatusBadRequest || code != "ambiguous_payload" {
				t.Errorf("status %d %q, want 400 ambiguous_payload", status, code)
			}
			if n := len(h.messages()); n != 0 {
				t.Errorf("%d messages published, want none", n)
			}
		})
	}
	// Keys that only look alike stay accepted.
	for _, extra := range []string{`"metadata":{}`, `"meta_":1`, `"entity_type":"x"`} {
		body := inMeta(extra)
		if strings.HasPrefix(extra, `"metadata"`) {
			body = withTop(extra)
		}
		if _, err := gateway.Parse(body, company); err != nil {
			t.Errorf("%s: %v, want accepted", extra, err)
		}
	}
}

// TestCanonicalCompanyID: only canonical decimal ids in the path reach a
// company; any other spelling is 404 before credentials are checked.
func TestCanonicalCompanyID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, id := range []string{"01001", "+1001", "1001%20", "-1001", "1e3", "0", "00", "12345678901234567890", "9223372036854775808"} {
		body := v2Body(t, "create", "deal", func(m obj) { m["company_id"] = strings.TrimLeft(id, "+0") })
		resp := h.post(id, body, staticUser, staticPass)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("company %q: status %d, want 404", id, resp.StatusCode)
		}
	}
	if n := len(h.messages()); n != 0 {
		t.Errorf("%d messages published, want none", n)
	}
	// The largest int64 is canonical.
	const max = "9223372036854775807"
	if resp := h.post(max, v2Body(t, "create", "deal", func(m obj) { m["company_id"] = max }), staticUser, staticPass); resp.StatusCode != http.StatusOK {
		t.Errorf("company %s: status %d, want 200", max, resp.StatusCode)
	}
}

// TestSource: ce-source names a Pipedrive host only.
func TestSource(t *testing.T) {
	t.Parallel()
	cases := []struct{ host, want string }{
		{"acme-sales.pipedrive.com", "https://acme-sales.pipedrive.com"},
		{"attacker.example", "pipedrive://company/9912345"},
		{"pipedrive.com", "pipedrive://company/9912345"},
		{"a.b.pipedrive.com", "pipedrive://company/9912345"},
		{"acme.pipedrive.com.evil.example", "pipedrive://company/9912345"},
		{"ACME.pipedrive.com", "pipedrive://company/9912345"},
		{"-acme.pipedrive.com", "pipedrive://company/9912345"},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			status, _, h := deliver(t, company, v2Body(t, "change", "deal", func(m obj) { m["host"] = tc.host }))
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if got := h.messages()[0].Headers().Get("ce-source"); got != tc.want {
				t.Errorf("ce-source %q, want %q", got, tc.want)
			}
		})
	}
}
