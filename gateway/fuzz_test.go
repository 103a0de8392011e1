package gateway

import (
	"encoding/json"
	"github.com/google/go-cmp/cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
// documents are valid, and whatever Parse accepts the encoding/json parser
// accepts too, with the same event.
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
		got, gerr := Parse(body, "9912345")
		if gerr != nil {
			return
		}
		want, werr := referenceParse(body, "9912345")
		if werr != nil {
			t.Fatalf("Parse accepts what encoding/json rejects (%v)", werr)
		}
		if !got.Time.Equal(want.Time) {
			t.Fatalf("time %v, encoding/json %v", got.Time, want.Time)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if !cmp.Equal(got, want) {
			t.Fatalf("event\n%+v\nencoding/json\n%+v", *got, *want)
		}
	})
}

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
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
	} {
		f.Add([]byte(s))
	}
}

func checkParse(t *testing.T, body []byte) {
	{
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
		if ev.Host != "" && !hostName(ev.Host) {
			t.Fatalf("unsafe host %q", ev.Host)
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
	}
}
