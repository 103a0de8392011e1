package gateway

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bodies to the payload parser. It must never
// panic, and whatever it accepts must be safe to publish: subject tokens
// without wildcards or separators, header values without control bytes, a
// dedupe id, and the company of the URL.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkParse(t, body)
	})
}

// FuzzScan compares the hand-written scanner with encoding/json: the same
// documents are valid, and every meta field the gateway reads from a body
// it accepts is what encoding/json reads there, whether it decodes into a
// struct (case-insensitive keys, repeated objects merged, as consumers
// commonly do) or into maps (exact keys, the last copy wins). The rules
// that turn those fields into an event are checked by table tests against
// captured Pipedrive payloads, not here.
func FuzzScan(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var s scanned
		err := scanBody(body, &s)
		switch valid := json.Valid(body); {
		case err == nil && !valid:
			t.Fatal("scanner accepts invalid JSON")
		case err == errNotObject && !valid:
			t.Fatal("scanner calls invalid JSON a non-object")
		case err == errSyntax && valid:
			t.Fatal("scanner rejects valid JSON")
		}
		if err != nil || s.ambiguous != "" {
			return
		}
		viaStruct, viaMap := decodeMeta(t, body)
		ev, perr := Parse(body, "9912345")
		for i, key := range metaKeys {
			got := fieldText(s.m[i])
			if want := viaMap[key]; got != want {
				t.Fatalf("meta.%s: scanner %q, encoding/json into a map %q", key, got, want)
			}
			if want := viaStruct[key]; perr == nil && got != want {
				t.Fatalf("meta.%s of an accepted body: scanner %q, encoding/json into a struct %q", key, got, want)
			}
		}
		if want := strings.TrimPrefix(viaStruct["company_id"], "s:"); perr == nil && ev.CompanyID != want {
			t.Fatalf("company %q accepted, encoding/json reads %q", ev.CompanyID, want)
		}
	})
}

// metaFields decodes every meta key the gateway reads, as a struct with
// the gateway's key names would.
type metaFields struct {
	Action         json.RawMessage `json:"action"`
	Entity         json.RawMessage `json:"entity"`
	EntityID       json.RawMessage `json:"entity_id"`
	Version        json.RawMessage `json:"version"`
	Attempt        json.RawMessage `json:"attempt"`
	Timestamp      json.RawMessage `json:"timestamp"`
	Object         json.RawMessage `json:"object"`
	V              json.RawMessage `json:"v"`
	TimestampMicro json.RawMessage `json:"timestamp_micro"`
	TimestampMilli json.RawMessage `json:"timestamp_milli"`
	ID             json.RawMessage `json:"id"`
	CompanyID      json.RawMessage `json:"company_id"`
	WebhookID      json.RawMessage `json:"webhook_id"`
	Host           json.RawMessage `json:"host"`
}

// decodeMeta reads the meta keys with encoding/json twice: into a struct
// and into maps. Each value is given as fieldText gives the scanner's.
func decodeMeta(t *testing.T, body []byte) (viaStruct, viaMap map[string]string) {
	var st struct {
		Meta *metaFields `json:"meta"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		st.Meta = nil // meta is not an object: nothing is read from it
	}
	viaStruct = map[string]string{}
	if m := st.Meta; m != nil {
		for key, raw := range map[string]json.RawMessage{
			"action": m.Action, "entity": m.Entity, "entity_id": m.EntityID, "version": m.Version,
			"attempt": m.Attempt, "timestamp": m.Timestamp, "object": m.Object, "v": m.V,
			"timestamp_micro": m.TimestampMicro, "timestamp_milli": m.TimestampMilli, "id": m.ID,
			"company_id": m.CompanyID, "webhook_id": m.WebhookID, "host": m.Host,
		} {
			viaStruct[key] = rawText(t, raw)
		}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("valid JSON object does not decode into a map: %v", err)
	}
	viaMap = map[string]string{}
	var meta map[string]json.RawMessage
	if raw, ok := top["meta"]; ok && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range metaKeys {
		viaMap[key] = rawText(t, meta[key])
	}
	return viaStruct, viaMap
}

// rawText is "s:" and the decoded string for a JSON string, the JSON text
// for anything else, and "" for null or absent.
func rawText(t *testing.T, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		return "s:" + s
	}
	return string(raw)
}

// fieldText is rawText for a scanned value. encoding/json replaces invalid
// UTF-8 in strings with U+FFFD; so does this, to compare like with like.
func fieldText(v rawValue) string {
	switch v.kind {
	case absent, kindNull:
		return ""
	case kindString:
		return "s:" + validUTF8(v.bytes())
	}
	return string(v.b)
}

// validUTF8 replaces each byte that is not part of valid UTF-8 with U+FFFD,
// as encoding/json does when it decodes a string (strings.ToValidUTF8
// would replace a run of them with one).
func validUTF8(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	corpus, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", "*.json"))
	for _, name := range append(files, corpus...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // broken JSON
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"meta":null}`, `{"meta":{"version":"2.0"}}`,
		`{"meta":{"version":"2.0","action":"create","entity":"deal.>","company_id":"9912345","id":"x"}}`,
		`{"meta":{"version":"2.0","action":"create","entity":"deal","company_id":9912345,"id":"x\r\ny"}}`,
		`{"v":1,"event":"added.*","meta":{"company_id":9912345,"timestamp":1}}`,
		`{"v":1,"event":"merged.person","retry":-1,"meta":{"company_id":"9912345","timestamp":"1"}}`,
		`{"meta":{"version":"2.0","action":"create","entity":"deal","company_id":"9912345","id":"a\u0062c","timestamp":1}}`,
		`{"m\u0065ta":{"version":"2.0","action":"change","entity":"user","company_id":"9912345","id":"7","timestamp":"2024-02-29T23:59:59.5Z"}}`,
		`{"meta":{"version":"2.0"},"meta":{"action":"delete","entity":"note","company_id":"9912345","id":"x"}}`,
		`{"meta":{"version":2,"action":"create","entity":"deal","company_id":"9912345","id":1e3,"attempt":"4"}}`,
		`{"meta":{"version":"2.0","action":"change","entity":"deal","company_id":"9912345","id":"x"},"Meta":{"company_id":"1002"}}`,
		`{"meta":{"version":"2.0","action":"change","entity":"deal","ENTITY":"person","company_id":"9912345","id":"x"}}`,
		`{"meta":{"version":"2.0","action":"change","entity":"deal","company_id":"9912345","Company_ID":"1","id":"x"}}`,
		"{\"meta\":{\"version\":\"2.0\",\"action\":\"change\",\"entity\":\"deal\",\"company_id\":\"9912345\",\"id\":\"x\",\"\u212aey\":1}}",
		`{"meta":{"version":"2.0","action":"change","entity":"activityType","company_id":"9912345","id":"x","timestamp":"2022-11-24 15:31:36"}}`,
		`{"meta":{"version":"2.0","action":"change","entity":"user","company_id":"9912345","id":"7","timestamp":1751289600123}}`,
	} {
		f.Add([]byte(s))
	}
}

func checkParse(t *testing.T, body []byte) {
	ev, err := Parse(body, "9912345")
	if err != nil {
		if ev != nil {
			t.Fatal("event returned with an error")
		}
		return
	}
	if !subjectToken(ev.Action) || !subjectToken(ev.Object) {
		t.Fatalf("unsafe subject tokens %q.%q", ev.Action, ev.Object)
	}
	if strings.ContainsAny(ev.Action+ev.Object, ".*> \t\r\n") {
		t.Fatalf("subject injection: %q.%q", ev.Action, ev.Object)
	}
	if ev.ID == "" || !headerSafe(ev.ID) || !headerSafe(ev.EntityID) || !headerSafe(ev.WebhookID) {
		t.Fatalf("unsafe or empty header values: id %q entity %q webhook %q", ev.ID, ev.EntityID, ev.WebhookID)
	}
	if ev.Host != "" && !pipedriveHost(ev.Host) {
		t.Fatalf("host %q is not a Pipedrive host", ev.Host)
	}
	if ev.CompanyID != "9912345" {
		t.Fatalf("company %q accepted for path 9912345", ev.CompanyID)
	}
	if ev.Attempt < 1 {
		t.Fatalf("attempt %d", ev.Attempt)
	}
	if ev.Version != "2.0" && ev.Version != "1.0" {
		t.Fatalf("version %q", ev.Version)
	}
	if y := ev.Time.Year(); !ev.Time.IsZero() && (y < 0 || y > 9999) {
		t.Fatalf("time %v has no RFC 3339 form", ev.Time)
	}
}
