package faults

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// TestNATSOutage stops the external NATS server under load: every request
// answers 503 within PUBLISH_TIMEOUT + 1 s, /readyz says 503, and once the
// server is back the same service answers 200 again. No acknowledged event
// is missing from the stream.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	const publishTimeout = 2 * time.Second
	ns := natstest.Run(t)
	env := servicetest.Env(t)
	env["NATS_URL"] = ns.ClientURL()
	env["STATE_KEY"] = servicetest.StateKey()
	env["PUBLISH_TIMEOUT"] = publishTimeout.String()
	s := servicetest.Start(t, env, slog.LevelError)
	servicetest.WaitStatus(t, s.OpsURL()+"/readyz", 200, 15*time.Second)

	l := newLoader(s.IngressURL(), 9912345, "pipedrive", "change-me", "outage").start(8)
	defer l.stop()
	time.Sleep(pick(2*time.Second, 20*time.Second))

	ns.Stop()
	down := time.Now()
	notReady := servicetest.WaitStatus(t, s.OpsURL()+"/readyz", http.StatusServiceUnavailable, 5*time.Second)
	time.Sleep(pick(4*time.Second, 30*time.Second))
	if got := servicetest.Status(s.OpsURL() + "/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage = %d, want 503", got)
	}
	up := time.Now()
	ns.Restart()
	ready := servicetest.WaitStatus(t, s.OpsURL()+"/readyz", http.StatusOK, 30*time.Second)

	// 200s again without restarting the service.
	deadline := time.Now().Add(30 * time.Second)
	var firstOK time.Duration
	for firstOK == 0 && time.Now().Before(deadline) {
		for _, r := range l.results() {
			if r.status == http.StatusOK && r.start.After(up) {
				firstOK = r.start.Add(r.latency).Sub(up)
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if firstOK == 0 {
		t.Fatal("no 200 within 30s of NATS coming back")
	}
	time.Sleep(pick(2*time.Second, 20*time.Second))
	l.stop()

	var during, during503, slow, transport int
	var slowest time.Duration
	for _, r := range l.results() {
		slowest = max(slowest, r.latency)
		if r.latency > publishTimeout+time.Second {
			slow++
		}
		if r.status == 0 {
			transport++
		}
		// Requests wholly inside the outage must all be 503.
		if r.start.After(down) && r.start.Add(r.latency).Before(up) {
			during++
			if r.status == http.StatusServiceUnavailable {
				during503++
			}
		}
	}
	acked := l.acked()
	stored := servicetest.StreamIDs(t, ns.ClientURL(), "PIPEDRIVE")
	missing := lost(acked, stored)
	t.Logf("sent=%d acked=%d stored=%d lost=%d statuses=%s outage_requests=%d outage_503=%d slowest=%v over_%v=%d readyz_503_after=%v readyz_200_after_restart=%v first_200_after_restart=%v",
		l.sent.Load(), len(acked), storedWithPrefix(stored, "outage"), missing, l.statuses(), during, during503,
		slowest.Round(time.Millisecond), publishTimeout+time.Second, slow, notReady.Round(time.Millisecond),
		ready.Round(time.Millisecond), firstOK.Round(time.Millisecond))
	if missing > 0 {
		t.Errorf("%d acknowledged events are missing from the stream", missing)
	}
	if during == 0 || during503 != during {
		t.Errorf("%d of %d requests during the outage answered 503, want all", during503, during)
	}
	if slow > 0 || transport > 0 {
		t.Errorf("%d requests took over PUBLISH_TIMEOUT+1s (slowest %v), %d failed without an answer", slow, slowest, transport)
	}
}
