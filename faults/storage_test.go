package faults

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// fillDisk writes a file into dir until the filesystem is full and returns
// its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			buf = buf[:len(buf)/2] // fill the last pages too
		}
	}
	return path
}

// TestStorageFull fills the disk under DATA_DIR (a small tmpfs) while the
// gateway with its embedded NATS is under load: publishes fail with 503 and
// /readyz says 503 while it is full; once space is freed the gateway
// restarts JetStream itself and answers 200 again within 5 s. No
// acknowledged event is lost.
func TestStorageFull(t *testing.T) {
	t.Parallel()
	dir := smallDisk(t, 64<<20)
	env := servicetest.Env(t)
	env["DATA_DIR"] = dir
	env["PUBLISH_TIMEOUT"] = "1s"
	s := servicetest.Start(t, env, slog.LevelError)
	readyz := s.OpsURL() + "/readyz"
	servicetest.WaitStatus(t, readyz, http.StatusOK, 15*time.Second)

	l := newLoader(s.IngressURL(), 9912345, "pipedrive", "change-me", "full").start(4)
	defer l.stop()
	time.Sleep(pick(time.Second, 10*time.Second))

	filler := fillDisk(t, dir)
	full := time.Now()
	notReady := servicetest.WaitStatus(t, readyz, http.StatusServiceUnavailable, 5*time.Second)
	time.Sleep(pick(2*time.Second, 30*time.Second))
	if got := servicetest.Status(readyz); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the disk is full = %d, want 503", got)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	ready := servicetest.WaitStatus(t, readyz, http.StatusOK, 15*time.Second)
	firstOK := firstOKAfter(l, freed, 15*time.Second)
	time.Sleep(pick(time.Second, 10*time.Second))
	l.stop()

	// Requests wholly inside the full period (after /readyz said so) all 503.
	var during, during503 int
	fullSeen := full.Add(notReady)
	for _, r := range l.results() {
		if r.start.After(fullSeen) && r.start.Add(r.latency).Before(freed) {
			during++
			if r.status == http.StatusServiceUnavailable {
				during503++
			}
		}
	}
	acked := l.acked()
	stored := servicetest.StreamIDs(t, s.NATSURL(), "PIPEDRIVE")
	missing := lost(acked, stored)
	t.Logf("sent=%d acked=%d stored=%d lost=%d statuses=%s full_requests=%d full_503=%d readyz_503_after=%v readyz_200_after_free=%v first_200_after_free=%v",
		l.sent.Load(), len(acked), storedWithPrefix(stored, "full"), missing, l.statuses(), during, during503,
		notReady.Round(time.Millisecond), ready.Round(time.Millisecond), firstOK.Round(time.Millisecond))
	if missing > 0 {
		t.Errorf("%d acknowledged events are missing from the stream", missing)
	}
	if during == 0 || during503 != during {
		t.Errorf("%d of %d requests while the disk was full answered 503, want all", during503, during)
	}
	if ready > 5*time.Second || firstOK > 5*time.Second {
		t.Errorf("after space was freed: /readyz 200 after %v, first 200 after %v; want both within 5s", ready, firstOK)
	}
}

// firstOKAfter waits for the first 200 to a request started after t0 and
// returns when it was answered, relative to t0.
func firstOKAfter(l *loader, t0 time.Time, timeout time.Duration) time.Duration {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range l.results() {
			if r.status == http.StatusOK && r.start.After(t0) {
				return r.start.Add(r.latency).Sub(t0)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return timeout
}

// bigEvent is a delivery of about size bytes with a unique meta.id.
func bigEvent(company int64, id string, size int) []byte {
	b := eventBody(company, id)
	pad := fmt.Sprintf(`,"pad":"%s"}`, strings.Repeat("x", max(size-len(b), 0)))
	return append(b[:len(b)-1], pad...)
}

// TestStoreLimitKeepsDiskFree: the embedded server's store limit keeps the
// gateway from filling DATA_DIR (a 32 MiB tmpfs). Without STREAM_MAX_BYTES the
// limit is nats-server's own (75 % of the free space): at it publishes fail
// with 503 and /readyz says why, with space left on the disk. With
// STREAM_MAX_BYTES the oldest events go and every delivery is acknowledged.
func TestStoreLimitKeepsDiskFree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		maxBytes string
	}{{"server_limit", ""}, {"stream_max_bytes", "8MiB"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := smallDisk(t, 32<<20)
			env := servicetest.Env(t)
			env["DATA_DIR"] = dir
			env["PUBLISH_TIMEOUT"] = "1s"
			if tc.maxBytes != "" {
				env["STREAM_MAX_BYTES"] = tc.maxBytes
			}
			s := servicetest.Start(t, env, slog.LevelError)
			servicetest.WaitStatus(t, s.OpsURL()+"/readyz", http.StatusOK, 15*time.Second)
			url := s.IngressURL() + "/webhooks/pipedrive/9912345"
			statuses := map[int]int{}
			for i := range 200 { // 200 × 256 KiB: 50 MiB, more than the disk
				status, err := servicetest.Post(url, "pipedrive", "change-me", bigEvent(9912345, fmt.Sprint("big-", i), 256<<10))
				if err != nil {
					t.Fatal(err)
				}
				statuses[status]++
			}
			free := diskFreeBytes(t, dir)
			t.Logf("statuses %v, DATA_DIR free %d bytes", statuses, free)
			if free < 4<<20 {
				t.Errorf("only %d bytes left on DATA_DIR: the store limit did not keep the disk from filling", free)
			}
			if tc.maxBytes != "" {
				if statuses[http.StatusOK] != 200 {
					t.Errorf("statuses %v, want every delivery acknowledged (the oldest events go)", statuses)
				}
				return
			}
			if statuses[http.StatusServiceUnavailable] == 0 {
				t.Fatalf("statuses %v, want 503s at the store limit", statuses)
			}
			resp, err := http.Get(s.OpsURL() + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "store limit reached") {
				t.Errorf("/readyz = %d %s, want 503 naming the store limit", resp.StatusCode, body)
			}
		})
	}
}
