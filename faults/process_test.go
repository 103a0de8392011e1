package faults

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// proc is the gateway binary running as a child process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	env  map[string]string
	log  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// procEnv is the embedded default on a temporary DATA_DIR and free ports.
func procEnv(t *testing.T) map[string]string {
	return map[string]string{
		"DATA_DIR":             t.TempDir(),
		"HTTP_ADDR":            servicetest.FreeAddr(t),
		"OPS_ADDR":             servicetest.FreeAddr(t),
		"EMBEDDED_NATS_LISTEN": servicetest.FreeAddr(t),
		"LOG_FORMAT":           "text",
		"LOG_LEVEL":            "warn",
	}
}

// startProc runs the binary with exactly env (nothing inherited, so that a
// NATS_URL in the developer's shell cannot leak in) and waits for /readyz.
func startProc(t *testing.T, env map[string]string) *proc {
	t.Helper()
	p := &proc{t: t, env: env, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(gatewayBinary(t), "serve")
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for servicetest.Status(p.ops()+"/readyz") != http.StatusOK {
		select {
		case <-p.done:
			t.Fatalf("gateway exited at start: %v\n%s", p.err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready after 60s\n%s", p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (p *proc) ingress() string { return "http://" + p.env["HTTP_ADDR"] }
func (p *proc) ops() string     { return "http://" + p.env["OPS_ADDR"] }
func (p *proc) nats() string    { return "nats://" + p.env["EMBEDDED_NATS_LISTEN"] }

// signal sends sig and waits for the exit; it returns the exit code, or -1
// when the process died by a signal.
func (p *proc) signal(sig syscall.Signal, timeout time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("gateway did not exit within %v of %v\n%s", timeout, sig, p.log.String())
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

// deliver posts one event with the given credentials and returns the status.
func deliver(t *testing.T, ingress string, company int64, user, pass, id string) int {
	t.Helper()
	status, err := servicetest.Post(fmt.Sprintf("%s/webhooks/pipedrive/%d", ingress, company), user, pass, eventBody(company, id))
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return status
}

// TestGatewayKilled runs the binary with its embedded NATS and two managed
// companies, loads it, and stops it with SIGTERM or SIGKILL. After a restart
// on the same DATA_DIR every acknowledged event is in the stream, the
// companies are still connected with the same webhooks, and the webhook
// credentials are still accepted.
func TestGatewayKilled(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			fake := pipedrivetest.NewServer(t)
			companies := []int64{9912345, 777}
			fake.AddCompany(pipedrivetest.Company{ID: companies[0], APIToken: "tok-a", Domain: "acme"})
			fake.AddCompany(pipedrivetest.Company{ID: companies[1], APIToken: "tok-b", Domain: "other"})
			env := procEnv(t)
			env["PIPEDRIVE_API_URL"] = fake.URL()
			env["PIPEDRIVE_API_TOKENS"] = "tok-a,tok-b"
			env["PUBLIC_URL"] = "https://hooks.example.com"
			env["ADMIN_TOKEN"] = "admin-secret"

			p := startProc(t, env)
			before := servicetest.WaitCompaniesOK(t, p.ops(), "admin-secret", companies, 30*time.Second)
			var loads []*loader
			for _, id := range companies {
				hooks := fake.Webhooks(id)
				if len(hooks) != 1 {
					t.Fatalf("company %d has %d webhooks, want 1", id, len(hooks))
				}
				l := newLoader(p.ingress(), id, hooks[0].HTTPAuthUser, hooks[0].HTTPAuthPassword, fmt.Sprintf("kill-%d", id))
				loads = append(loads, l.start(6))
			}
			creates := fake.CallCount(http.MethodPost, "/v1/webhooks")
			time.Sleep(pick(1500*time.Millisecond, 20*time.Second))

			start := time.Now()
			code := p.signal(sig, 30*time.Second)
			exitAfter := time.Since(start)
			for _, l := range loads {
				l.stop()
			}
			switch {
			case sig == syscall.SIGTERM && code != 0:
				t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, p.log.String())
			case sig == syscall.SIGKILL && code != -1:
				t.Errorf("exit code after SIGKILL = %d, want death by signal", code)
			}

			// Restart on the same DATA_DIR and ports.
			p2 := startProc(t, env)
			stored := servicetest.StreamIDs(t, p2.nats(), "PIPEDRIVE")
			after := servicetest.WaitCompaniesOK(t, p2.ops(), "admin-secret", companies, 30*time.Second)
			var sent int64
			var acked, storedN, missing int
			for _, l := range loads {
				a := l.acked()
				sent += l.sent.Load()
				acked += len(a)
				storedN += storedWithPrefix(stored, l.prefix)
				missing += lost(a, stored)
			}
			t.Logf("sent=%d acked=%d stored=%d lost=%d exit_code=%d exit_after=%v statuses=%s/%s",
				sent, acked, storedN, missing, code, exitAfter.Round(time.Millisecond), loads[0].statuses(), loads[1].statuses())
			if acked == 0 {
				t.Fatal("nothing was acknowledged before the signal")
			}
			if missing > 0 {
				t.Errorf("%d acknowledged events are missing from the stream", missing)
			}
			// The KV state survived: same companies, same webhooks, same
			// credentials, and no webhook created again.
			for _, id := range companies {
				hooks := fake.Webhooks(id)
				if len(hooks) != 1 || after[id].WebhookID != before[id].WebhookID || hooks[0].ID != before[id].WebhookID {
					t.Errorf("company %d: webhook %d before, %d after, at Pipedrive %v", id, before[id].WebhookID, after[id].WebhookID, hooks)
					continue
				}
				if got := deliver(t, p2.ingress(), id, hooks[0].HTTPAuthUser, hooks[0].HTTPAuthPassword, fmt.Sprintf("after-restart-%d", id)); got != http.StatusOK {
					t.Errorf("company %d: delivery with its webhook credentials after restart = %d, want 200", id, got)
				}
			}
			if n := fake.CallCount(http.MethodPost, "/v1/webhooks"); n != creates {
				t.Errorf("%d webhooks created after the restart, want none", n-creates)
			}
			if code := p2.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
				t.Errorf("exit code of the restarted gateway after SIGTERM = %d", code)
			}
		})
	}
}
