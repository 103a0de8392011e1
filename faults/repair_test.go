package faults

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// TestStreamDeletedUnderLoad deletes the stream while the gateway (embedded
// NATS, STREAM_MANAGE=update) is under load and nothing polls /readyz: the
// gateway notices on its publish path, makes the stream again, and answers
// 200 within 2 s. Every event acknowledged after that is in the new stream.
func TestStreamDeletedUnderLoad(t *testing.T) {
	t.Parallel()
	env := servicetest.Env(t)
	env["PUBLISH_TIMEOUT"] = "2s"
	s := servicetest.Start(t, env, slog.LevelError)
	servicetest.WaitStatus(t, s.OpsURL()+"/readyz", http.StatusOK, 15*time.Second)

	l := newLoader(s.IngressURL(), 9912345, "pipedrive", "change-me", "deleted").start(8)
	defer l.stop()
	time.Sleep(pick(time.Second, 10*time.Second))

	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "PIPEDRIVE"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	firstOK := firstOKAfter(l, deleted, 10*time.Second)
	time.Sleep(pick(time.Second, 10*time.Second))
	l.stop()

	// What was acked before the deletion went with the stream; what was
	// acked for requests sent after the gateway repaired it must be there.
	repaired := deleted.Add(firstOK)
	after := map[string]bool{}
	var failed int
	for _, r := range l.results() {
		if r.start.After(deleted) && r.status != http.StatusOK {
			failed++
		}
		if r.status == http.StatusOK && r.start.After(repaired) {
			after[r.id] = true
		}
	}
	stored := servicetest.StreamIDs(t, s.NATSURL(), "PIPEDRIVE")
	missing := lost(after, stored)
	t.Logf("sent=%d acked_after_repair=%d stored=%d lost=%d statuses=%s failed_after_delete=%d first_200_after_delete=%v",
		l.sent.Load(), len(after), len(stored), missing, l.statuses(), failed, firstOK.Round(time.Millisecond))
	if firstOK > 2*time.Second {
		t.Errorf("first 200 %v after the stream was deleted, want within 2s (without /readyz)", firstOK)
	}
	if len(after) == 0 || missing > 0 {
		t.Errorf("%d of %d events acknowledged after the repair are missing from the stream", missing, len(after))
	}
}
