package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
)

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
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

func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"root_help", []string{"--help"}, 0, "pipedrive-gateway tail [--all] [SUBJECT]"},
		{"root_help_short", []string{"-h"}, 0, "pipedrive-gateway version"},
		{"help_command", []string{"help"}, 0, "pipedrive-gateway [serve]"},
		{"tail_help", []string{"tail", "--help"}, 0, "Usage: pipedrive-gateway tail [--all] [SUBJECT]"},
		{"unknown_command", []string{"tial"}, 2, `unknown command "tial"`},
		{"unknown_flag", []string{"tail", "--follow"}, 2, "flag provided but not defined: -follow"},
		{"unknown_flag_after_subject", []string{"tail", "pipedrive.>", "--follow"}, 2, "flag provided but not defined: -follow"},
		{"two_subjects", []string{"tail", "pipedrive.>", "--all", "other.>"}, 2, "tail takes at most one subject, got 2"},
		{"serve_unknown_flag", []string{"serve", "--port=1"}, 2, "flag provided but not defined: -port"},
		{"tail_without_gateway", []string{"tail"}, 1, "is the gateway running?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := envconfig.MapLookuper(map[string]string{"EMBEDDED_NATS_LISTEN": closedAddr(t)})
			var stdout, stderr bytes.Buffer
			code := exitCode(run(context.Background(), tc.args, env, &stdout, &stderr), &stderr)
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
				t.Errorf("%v: exit code %d, want %d; output %q, want it to contain %q", tc.args, code, tc.code, stdout.String()+stderr.String(), tc.out)
			}
		})
	}
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// tailRun is tail running in the background.
type tailRun struct {
	lines  chan string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned err
	err    error
}

func startTail(t *testing.T, env map[string]string, args ...string) *tailRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	tr := &tailRun{lines: make(chan string, 100), stderr: &syncBuffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		tr.err = run(ctx, append([]string{"tail"}, args...), envconfig.MapLookuper(env), pw, tr.stderr)
		pw.Close()
		close(tr.done)
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			tr.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-tr.done
	})
	return tr
}

// stop ends tail as Ctrl-C does and returns its exit code.
func (tr *tailRun) stop() int {
	tr.cancel()
	<-tr.done
	return exitCode(tr.err, io.Discard)
}

// waitLine waits for a printed line containing want.
func (tr *tailRun) waitLine(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-tr.lines:
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("tail printed no line with %q within %v; stderr:\n%s", want, timeout, tr.stderr.String())
		}
	}
}

// deliverID posts the test event with meta.id id and action.
func deliverID(t *testing.T, ingress, id, action string) {
	t.Helper()
	body, err := os.ReadFile("testdata/v2-change-deal.json")
	if err != nil {
		t.Fatal(err)
	}
	body = bytes.Replace(body, []byte("c41d7e22-9b0a-4f3c-8e61-5a2b7d9c0e14"), []byte(id), 1)
	body = bytes.Replace(body, []byte(`"action": "change"`), []byte(fmt.Sprintf("%q: %q", "action", action)), 1)
	if status, err := postEvent(ingress+"/webhooks/pipedrive/9912345", body); err != nil || status != 200 {
		t.Fatalf("post %s: %d %v", id, status, err)
	}
}

// TestTailAcrossRestart: tail started with its flag after the subject
// prints the stream's earlier events, keeps running while the gateway
// restarts, prints what arrives after, and exits 0 on Ctrl-C.
func TestTailAcrossRestart(t *testing.T) {
	t.Parallel()
	env := servicetest.Env(t)
	env["EMBEDDED_NATS_LISTEN"] = closedAddr(t) // the same port after the restart
	a, stop := startApp(t, env)
	ingress := "http://" + a.IngressAddr().String()
	deliverID(t, ingress, "before-tail", "delete")
	deliverID(t, ingress, "before-tail-change", "change")

	tr := startTail(t, env, "pipedrive.delete.>", "--all")
	tr.waitLine(t, "before-tail", 10*time.Second)
	deliverID(t, ingress, "before-restart", "delete")
	tr.waitLine(t, "before-restart", 10*time.Second)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // tail notices
	b, _ := startApp(t, env)
	deliverID(t, "http://"+b.IngressAddr().String(), "after-restart", "delete")
	line := tr.waitLine(t, "after-restart", 15*time.Second)
	var got tailLine
	if err := json.Unmarshal([]byte(line), &got); err != nil || got.Subject != "pipedrive.delete.deal" {
		t.Errorf("line after the restart = %s (%v)", line, err)
	}
	if code := tr.stop(); code != 0 {
		t.Errorf("tail exit code after Ctrl-C = %d, want 0", code)
	}
	if strings.Contains(tr.stderr.String(), "before-tail-change") {
		t.Errorf("tail printed an event outside its subject")
	}
	t.Logf("tail stderr:\n%s", tr.stderr.String())
}

// TestTailOutsideStream: a subject the stream does not capture gets a
// warning instead of silence.
func TestTailOutsideStream(t *testing.T) {
	t.Parallel()
	env := servicetest.Env(t)
	a, _ := startApp(t, env)
	env["EMBEDDED_NATS_LISTEN"] = strings.TrimPrefix(a.NATSURL(), "nats://")
	tr := startTail(t, env, "foo.>")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tr.stderr.String(), "warning: foo.> is outside stream PIPEDRIVE, which captures pipedrive.>") {
		if time.Now().After(deadline) {
			t.Fatalf("stderr = %q, want a warning about the subject", tr.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := tr.stop(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}
