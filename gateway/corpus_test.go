package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// corpusEntry is one row of testdata/corpus/manifest.json: what a payload
// must become (SOURCES.md names the public sample behind each file).
type corpusEntry struct {
	File     string `json:"file"`
	Version  string `json:"version"`
	Action   string `json:"action"`
	Object   string `json:"object"`
	EntityID string `json:"entity_id"`
	Time     string `json:"time"`
	RetryOf  string `json:"retry_of"` // another delivery of the same event
	Source   string `json:"source"`
}

const corpusDir = "../testdata/corpus"

func readCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []corpusEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) < 40 {
		t.Fatalf("corpus has %d payloads, want at least 40", len(entries))
	}
	// First deliveries first, so that a retry file meets its original.
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].RetryOf == "" && entries[j].RetryOf != "" })
	return entries
}

// TestCorpus posts every corpus payload through the real service: each is
// answered 200 and stored once, on its subject, byte for byte, with the
// SPEC §4 headers; a retry file, and a retry made of every payload by
// incrementing attempt (v2) or retry (v1), adds nothing.
func TestCorpus(t *testing.T) {
	t.Parallel()
	entries := readCorpus(t)
	svc := servicetest.Start(t, servicetest.Env(t), slog.LevelWarn)
	nc, err := nats.Connect(svc.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, err := js.Stream(ctx, "PIPEDRIVE")
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	ids := map[string]string{} // file → Nats-Msg-Id
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(corpusDir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		before := lastSeq()
		status, dup := corpusPost(t, svc, body)
		if status != http.StatusOK {
			t.Errorf("%s: status %d, want 200", e.File, status)
			continue
		}
		if e.RetryOf != "" {
			if !dup || lastSeq() != before {
				t.Errorf("%s: a retry of %s was stored again (duplicate %v)", e.File, e.RetryOf, dup)
			}
			continue
		}
		if dup || lastSeq() != before+1 {
			t.Errorf("%s: not stored as a new message (duplicate %v)", e.File, dup)
			continue
		}
		m, err := stream.GetMsg(ctx, before+1)
		if err != nil {
			t.Fatal(err)
		}
		ids[e.File] = m.Header.Get("Nats-Msg-Id")
		checkCorpusMessage(t, e, body, m)

		retry := incrementAttempt(t, e, body)
		if bytes.Equal(retry, body) {
			t.Fatalf("%s: no retry made", e.File)
		}
		if status, dup := corpusPost(t, svc, retry); status != http.StatusOK || !dup || lastSeq() != before+1 {
			t.Errorf("%s with the attempt incremented: status %d, duplicate %v, stream at %d, want 200, a duplicate, nothing stored",
				e.File, status, dup, lastSeq())
		}
	}
	// One message per distinct event, and distinct events have distinct ids.
	seen := map[string]string{}
	for file, id := range ids {
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share the dedupe id %s", file, other, id)
		}
		seen[id] = file
	}
	for id, n := range servicetest.StreamIDs(t, svc.NATSURL(), "PIPEDRIVE") {
		if n != 1 {
			t.Errorf("%d copies of %s", n, id)
		}
	}
}

func corpusPost(t *testing.T, svc *servicetest.Running, body []byte) (status int, duplicate bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, svc.IngressURL()+"/webhooks/pipedrive/9912345", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Pipedrive Webhooks")
	req.SetBasicAuth(servicetest.User, servicetest.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var answer struct{ Duplicate bool }
	_ = json.Unmarshal(b, &answer)
	return resp.StatusCode, answer.Duplicate
}

// checkCorpusMessage compares a stored message with the manifest row and
// the body.
func checkCorpusMessage(t *testing.T, e corpusEntry, body []byte, m *jetstream.RawStreamMsg) {
	t.Helper()
	if want := "pipedrive." + e.Action + "." + e.Object; m.Subject != want {
		t.Errorf("%s: subject %q, want %q", e.File, m.Subject, want)
	}
	if !bytes.Equal(m.Data, body) {
		t.Errorf("%s: stored data differs from the body", e.File)
	}
	var b struct {
		Retry *int `json:"retry"`
		Meta  struct {
			ID      any    `json:"id"`
			Entity  string `json:"entity"`
			Host    string `json:"host"`
			Attempt *int   `json:"attempt"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	attempt := 1
	switch {
	case e.Version == "2.0" && b.Meta.Attempt != nil:
		attempt = *b.Meta.Attempt
	case e.Version == "1.0" && b.Retry != nil:
		attempt = *b.Retry + 1
	}
	source := "pipedrive://company/9912345"
	if strings.HasSuffix(b.Meta.Host, ".pipedrive.com") {
		source = "https://" + b.Meta.Host
	}
	h := m.Header
	got := map[string]string{}
	want := map[string]string{
		"ce-specversion": "1.0", "ce-type": "com.pipedrive." + e.Object + "." + e.Action, "ce-source": source,
		"ce-subject": e.EntityID, "Content-Type": "application/json", "content-type": "application/json",
		"Pipedrive-Company-Id": "9912345", "Pipedrive-Webhook-Version": e.Version, "Pipedrive-Attempt": strconv.Itoa(attempt),
		"Nats-Trace-Dest": "trace disabled",
	}
	for k := range want {
		got[k] = h.Get(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: headers (-want +got):\n%s", e.File, diff)
	}
	id := h.Get("Nats-Msg-Id")
	if id == "" || h.Get("ce-id") != id {
		t.Errorf("%s: Nats-Msg-Id %q, ce-id %q", e.File, id, h.Get("ce-id"))
	}
	if metaID, ok := b.Meta.ID.(string); ok && e.Version == "2.0" && b.Meta.Entity != "user" && id != metaID {
		t.Errorf("%s: Nats-Msg-Id %q, want meta.id %q", e.File, id, metaID)
	}
	wantTime, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		t.Fatalf("%s: manifest time: %v", e.File, err)
	}
	if ceTime, err := time.Parse(time.RFC3339Nano, h.Get("ce-time")); err != nil || !ceTime.Equal(wantTime) {
		t.Errorf("%s: ce-time %q, want %s", e.File, h.Get("ce-time"), e.Time)
	}
	if tp := h.Get("traceparent"); len(tp) != 55 {
		t.Errorf("%s: traceparent %q", e.File, tp)
	}
	if _, ok := h["baggage"]; ok {
		t.Errorf("%s: baggage on a message", e.File)
	}
}

var (
	attemptField = regexp.MustCompile(`("attempt"\s*:\s*)(\d+)`)
	retryField   = regexp.MustCompile(`("retry"\s*:\s*)(\d+)`)
)

// incrementAttempt is the next delivery of body: meta.attempt (v2) or retry
// (v1) plus one, every other byte the same.
func incrementAttempt(t *testing.T, e corpusEntry, body []byte) []byte {
	t.Helper()
	re := attemptField
	if e.Version == "1.0" {
		re = retryField
	}
	if n := len(re.FindAllIndex(body, -1)); n != 1 {
		if n == 0 && e.Version == "2.0" {
			// No meta.attempt: a first delivery; the retry says 2.
			return bytes.Replace(body, []byte(`"meta":{`), []byte(`"meta":{"attempt":2,`), 1)
		}
		t.Fatalf("%s: %d attempt fields", e.File, n)
	}
	return re.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := re.FindSubmatch(m)
		n, _ := strconv.Atoi(string(sub[2]))
		return append(append([]byte{}, sub[1]...), strconv.Itoa(n+1)...)
	})
}
