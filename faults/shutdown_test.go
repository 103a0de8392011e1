package faults

import (
	"errors"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// TestShutdownDelay sends SIGTERM to the binary under load with
// SHUTDOWN_DELAY=2s: /readyz answers 503 at once, the ingress keeps
// answering 200 for the delay, then the process exits 0; after a restart on
// the same DATA_DIR every acknowledged event is in the stream.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	delay := pick(2*time.Second, 10*time.Second)
	env := procEnv(t)
	env["SHUTDOWN_DELAY"] = delay.String()
	env["WEBHOOK_USER"], env["WEBHOOK_PASSWORD"] = "pipedrive", "change-me"
	p := startProc(t, env)
	l := newLoader(p.ingress(), 9912345, "pipedrive", "change-me", "delay").start(4)
	defer l.stop()
	time.Sleep(pick(time.Second, 5*time.Second))

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	term := time.Now()
	notReady := servicetest.WaitStatus(t, p.ops()+"/readyz", http.StatusServiceUnavailable, delay)
	// Keep probing readiness through the delay, as a kubelet would.
	readyDuring := 0
	for time.Since(term) < delay-300*time.Millisecond {
		if servicetest.Status(p.ops()+"/readyz") == http.StatusOK {
			readyDuring++
		}
		time.Sleep(50 * time.Millisecond)
	}
	code := p.exitCode(delay + 30*time.Second)
	exitAfter := time.Since(term)
	l.stop()

	// Requests sent and answered inside the delay: all 200.
	var during, during200 int
	for _, r := range l.results() {
		if r.start.After(term) && r.start.Add(r.latency).Before(term.Add(delay-200*time.Millisecond)) {
			during++
			if r.status == http.StatusOK {
				during200++
			}
		}
	}
	p2 := startProc(t, env)
	stored := servicetest.StreamIDs(t, p2.nats(), "PIPEDRIVE")
	acked := l.acked()
	missing := lost(acked, stored)
	t.Logf("sent=%d acked=%d stored=%d lost=%d statuses=%s delay_requests=%d delay_200=%d readyz_503_after=%v exit_code=%d exit_after=%v",
		l.sent.Load(), len(acked), storedWithPrefix(stored, "delay"), missing, l.statuses(), during, during200,
		notReady.Round(time.Millisecond), code, exitAfter.Round(time.Millisecond))
	if notReady > 500*time.Millisecond || readyDuring > 0 {
		t.Errorf("/readyz 503 only %v after SIGTERM, and 200 %d times during the delay; want 503 at once and throughout", notReady, readyDuring)
	}
	if during == 0 || during200 != during {
		t.Errorf("%d of %d requests during SHUTDOWN_DELAY answered 200, want all", during200, during)
	}
	if code != 0 || exitAfter < delay {
		t.Errorf("exit code %d after %v, want 0 after at least SHUTDOWN_DELAY (%v)", code, exitAfter, delay)
	}
	if missing > 0 {
		t.Errorf("%d acknowledged events are missing from the stream", missing)
	}
	p2.signal(syscall.SIGTERM, 30*time.Second)
}

// exitCode waits for the process to end and returns its exit code, -1 when
// a signal killed it.
func (p *proc) exitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("gateway did not exit within %v\n%s", timeout, p.log.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}
