package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

func streamConfig(t *testing.T, js jetstream.JetStream) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(context.Background(), "PIPEDRIVE")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

// operatorLimits is what `nats stream edit PIPEDRIVE --max-bytes=1GiB
// --max-age=720h --max-msgs=100000 --discard=new` leaves.
func operatorLimits(c jetstream.StreamConfig) jetstream.StreamConfig {
	c.MaxBytes, c.MaxAge, c.MaxMsgs, c.Discard = 1<<30, 720*time.Hour, 100000, jetstream.DiscardNew
	return c
}

func testEvent(id string) *event.Event {
	return &event.Event{Action: "create", Object: "deal", ID: id, CompanyID: "1", Version: "2.0", Attempt: 1, Body: []byte(`{"id":1}`)}
}

// waitReady waits until Ready reports what ok says, and returns its last error.
func waitReady(t *testing.T, r *relay.Relay, ok bool, timeout time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := r.Ready(context.Background())
		if (err == nil) == ok {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready = %v after %v, want ready=%v", err, timeout, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReason waits until Ready fails with a reason mentioning want.
func waitReason(t *testing.T, r *relay.Relay, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := r.Ready(context.Background())
		if err != nil && strings.Contains(err.Error(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready = %v after %v, want a reason mentioning %q", err, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStreamManageUpdate: an existing stream with an operator's limits is
// made to follow the settings at start, STREAM_MAX_BYTES included.
func TestStreamManageUpdate(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	_, js := ns.Connect(t) // the operator, as with the nats CLI
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, operatorLimits(jetstream.StreamConfig{Name: "PIPEDRIVE", Subjects: []string{"pipedrive.>"}, Storage: jetstream.FileStorage})); err != nil {
		t.Fatal(err)
	}
	r, err := newRelay(t, load(t, map[string]string{"NATS_URL": ns.ClientURL(), "STREAM_MAX_AGE": "48h", "DEDUPE_WINDOW": "5m", "STREAM_MAX_BYTES": "64MiB"}))
	if err != nil {
		t.Fatal(err)
	}
	got := streamConfig(t, js)
	want := r.StreamConfig()
	if got.MaxAge != 48*time.Hour || got.Duplicates != 5*time.Minute || got.MaxBytes != 64<<20 || got.MaxMsgs != -1 || got.Discard != jetstream.DiscardOld {
		t.Errorf("stream not updated: max age %v, duplicates %v, max bytes %d, max msgs %d, discard %v; want %v, %v, %d, -1, old",
			got.MaxAge, got.Duplicates, got.MaxBytes, got.MaxMsgs, got.Discard, want.MaxAge, want.Duplicates, want.MaxBytes)
	}
	waitReady(t, r, true, 5*time.Second)
}

// TestStreamManageCreate: with create, limits an operator set on the
// stream survive a restart of the gateway.
func TestStreamManageCreate(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	_, js := ns.Connect(t) // the operator, as with the nats CLI
	env := map[string]string{"NATS_URL": ns.ClientURL(), "STREAM_MANAGE": "create"}
	first, err := relay.New(context.Background(), load(t, env), testlog.New(t))
	if err == nil {
		first.Close(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := streamConfig(t, js); got.Subjects[0] != "pipedrive.>" || got.MaxAge != 168*time.Hour {
		t.Fatalf("created stream %+v, want the settings", got)
	}
	edited := operatorLimits(streamConfig(t, js))
	if _, err := js.UpdateStream(context.Background(), edited); err != nil {
		t.Fatal(err)
	}
	before := streamConfig(t, js)

	r, err := newRelay(t, load(t, env)) // the restart
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, r, true, 5*time.Second)
	if diff := cmp.Diff(before, streamConfig(t, js)); diff != "" {
		t.Errorf("STREAM_MANAGE=create changed the stream (-before +after):\n%s", diff)
	}
	if _, err := r.Publish(context.Background(), testEvent("create-1")); err != nil {
		t.Errorf("publish into the operator's stream: %v", err)
	}
}

// TestStreamManageOff: off never creates or changes the stream; readiness
// fails while it is missing, does not capture <prefix>.> or keeps
// duplicates for less than DEDUPE_WINDOW, and recovers once it is right.
func TestStreamManageOff(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	_, js := ns.Connect(t) // the operator, as with the nats CLI
	ctx := context.Background()
	r, err := newRelay(t, load(t, map[string]string{"NATS_URL": ns.ClientURL(), "STREAM_MANAGE": "off"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitReady(t, r, false, time.Second); !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "STREAM_MANAGE=off") {
		t.Errorf("Ready without a stream = %v, want a reason naming STREAM_MANAGE=off", err)
	}
	time.Sleep(2500 * time.Millisecond) // a monitor round
	if _, err := js.Stream(ctx, "PIPEDRIVE"); err != jetstream.ErrStreamNotFound {
		t.Fatalf("stream lookup = %v: STREAM_MANAGE=off made the stream", err)
	}

	tests := []struct {
		name string
		cfg  jetstream.StreamConfig
		want string // "" = ready
	}{
		{"subjects_not_captured", jetstream.StreamConfig{Subjects: []string{"pipedrive.create.>"}, Duplicates: time.Hour}, "not pipedrive.>"},
		{"duplicates_too_short", jetstream.StreamConfig{Subjects: []string{"pipedrive.>"}, Duplicates: time.Minute}, "DEDUPE_WINDOW"},
		{"more_subjects_and_limits", operatorLimits(jetstream.StreamConfig{Subjects: []string{"other.>", "pipedrive.>"}, Duplicates: time.Hour}), ""},
	}
	for _, tc := range tests { // in order: one stream, edited by each case
		tc.cfg.Name, tc.cfg.Storage = "PIPEDRIVE", jetstream.FileStorage
		if _, err := js.CreateOrUpdateStream(ctx, tc.cfg); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		before := streamConfig(t, js)
		if tc.want == "" {
			waitReady(t, r, true, 5*time.Second)
		} else {
			waitReason(t, r, tc.want, 5*time.Second)
		}
		if diff := cmp.Diff(before, streamConfig(t, js)); diff != "" {
			t.Errorf("%s: STREAM_MANAGE=off changed the stream (-before +after):\n%s", tc.name, diff)
		}
	}
	if _, err := r.Publish(ctx, testEvent("off-1")); err != nil {
		t.Errorf("publish into the operator's stream: %v", err)
	}
}

// TestStreamDeletedIsRecreated: a stream deleted behind the gateway's back
// is made again by the gateway itself after the first failed publish, with
// no readiness probe involved.
func TestStreamDeletedIsRecreated(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	_, js := ns.Connect(t) // the operator, as with the nats CLI
	r, err := newRelay(t, load(t, map[string]string{"NATS_URL": ns.ClientURL(), "PUBLISH_TIMEOUT": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := js.DeleteStream(ctx, "PIPEDRIVE"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var tries int
	for i := 0; ; i++ {
		tries++
		if _, err := r.Publish(ctx, testEvent(fmt.Sprint("deleted-", i))); err == nil {
			break
		}
		if time.Since(deleted) > 2*time.Second {
			t.Fatalf("no publish acknowledged within 2s of the stream's deletion")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("first ack %v after the deletion, %d publishes", time.Since(deleted).Round(time.Millisecond), tries)
	if got := streamConfig(t, js); got.Duplicates != 10*time.Minute {
		t.Errorf("re-created stream has duplicate window %v, want the settings", got.Duplicates)
	}
}

// TestStreamMetrics: the gauges report what the stream holds and its limit.
func TestStreamMetrics(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	r, err := newRelay(t, load(t, map[string]string{"NATS_URL": ns.ClientURL(), "STREAM_MAX_BYTES": "8MiB"}), relay.WithMeter(mp))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.Publish(context.Background(), testEvent(fmt.Sprint("m-", i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := gauges(t, reader)
		if got["pipedrive_gateway.stream.messages"] == 3 {
			if got["pipedrive_gateway.stream.limit"] != 8<<20 || got["pipedrive_gateway.stream.size"] <= 0 {
				t.Errorf("gauges = %v, want limit 8MiB and a size", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gauges = %v after 5s, want 3 messages", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func gauges(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok {
				for _, p := range g.DataPoints {
					out[m.Name] = p.Value
				}
			}
		}
	}
	return out
}

func TestSubjectCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter, subject string
		covers, overlap bool
	}{
		{"pipedrive.>", "pipedrive.>", true, true},
		{">", "pipedrive.>", true, true},
		{"*.>", "pipedrive.>", true, true},
		{"pipedrive.*.*", "pipedrive.>", false, true},
		{"pipedrive.create.>", "pipedrive.>", false, true},
		{"pipedrive.>", "pipedrive.delete.>", true, true},
		{"pipedrive.>", "pipedrive.*.deal", true, true},
		{"pipedrive.>", "pipedrive", false, false},
		{"pipedrive.>", "foo.>", false, false},
		{"pipedrive.*", "pipedrive.change.deal", false, false},
		{"pipedrive.*.deal", "pipedrive.change.*", false, true},
	}
	for _, tc := range tests {
		if got := relay.SubjectCovers(tc.filter, tc.subject); got != tc.covers {
			t.Errorf("SubjectCovers(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.covers)
		}
		if got := relay.SubjectsOverlap(tc.filter, tc.subject); got != tc.overlap {
			t.Errorf("SubjectsOverlap(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.overlap)
		}
	}
}
