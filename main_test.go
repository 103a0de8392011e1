package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// startApp runs the whole service as `serve` would and returns it with a
// function that stops it and returns run's error.
func startApp(t *testing.T, env map[string]string) (*service.Service, func() error) {
	t.Helper()
	r := servicetest.Start(t, env, slog.LevelDebug)
	return r.Service, r.Stop
}

// postEvent delivers body with the static credentials of servicetest.Env.
func postEvent(url string, body []byte) (int, error) {
	return servicetest.Post(url, servicetest.User, servicetest.Password, body)
}

func TestServeDefaults(t *testing.T) {
	t.Parallel()
	a, stop := startApp(t, servicetest.Env(t))
	ops := "http://" + a.OpsAddr().String()
	for _, path := range []string{"/healthz", "/readyz"} {
		// Ready once the company state is loaded, moments after start.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(ops + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %d for 5s, want 200", path, resp.StatusCode)
			}
		}
	}
	body, err := os.ReadFile("testdata/v2-change-deal.json")
	if err != nil {
		t.Fatal(err)
	}
	status, err := postEvent("http://"+a.IngressAddr().String()+"/webhooks/pipedrive/9912345", body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("post: status %d, err %v", status, err)
	}
	// A consumer attaches to the embedded server over TCP, as the README says.
	nc, err := nats.Connect(a.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(context.Background(), "PIPEDRIVE")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), "pipedrive.change.deal")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg.Data, body) {
		t.Error("stored data differs from the posted body")
	}
	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	env := servicetest.Env(t)
	a, _ := startApp(t, env)
	env["EMBEDDED_NATS_LISTEN"] = strings.TrimPrefix(a.NATSURL(), "nats://")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tail", "pipedrive.*.deal"}, envconfig.MapLookuper(env), pw, io.Discard)
	}()

	body, _ := os.ReadFile("testdata/v2-change-deal.json")
	url := "http://" + a.IngressAddr().String() + "/webhooks/pipedrive/9912345"
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		if sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// tail only prints new events: post until it has attached and prints one.
	var line string
	for deadline := time.Now().Add(10 * time.Second); line == "" && time.Now().Before(deadline); {
		if status, err := postEvent(url, bytes.Replace(body, []byte(`"id": "c41d`), []byte(fmt.Sprintf(`"id": "%d`, time.Now().UnixNano())), 1)); err != nil || status != 200 {
			t.Fatalf("post: %d %v", status, err)
		}
		select {
		case line = <-lines:
		case <-time.After(200 * time.Millisecond):
		}
	}
	var got struct {
		Subject string
		Headers map[string]string
		Data    json.RawMessage
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("tail printed %q: %v", line, err)
	}
	if got.Subject != "pipedrive.change.deal" || got.Headers["Pipedrive-Company-Id"] != "9912345" || !json.Valid(got.Data) {
		t.Errorf("tail line = %s", line)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("tail: %v", err)
	}
}

// TestShutdownUnderLoad stops the service while clients are posting: every
// event that got a 200 must be in the stream when the store is reopened.
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	env := servicetest.Env(t)
	a, stop := startApp(t, env)
	url := "http://" + a.IngressAddr().String() + "/webhooks/pipedrive/9912345"
	template, _ := os.ReadFile("testdata/v2-change-deal.json")

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-quit:
					return
				default:
				}
				id := fmt.Sprintf("load-%d-%d", w, i)
				body := bytes.Replace(template, []byte("c41d7e22-9b0a-4f3c-8e61-5a2b7d9c0e14"), []byte(id), 1)
				status, err := postEvent(url, body)
				if err != nil {
					return // the listener is gone
				}
				if status == http.StatusOK {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	close(quit)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no request was acknowledged before shutdown")
	}
	stored := storedIDs(t, env["DATA_DIR"])
	missing := 0
	for id := range acked {
		if stored[id] == 0 {
			missing++
		}
	}
	t.Logf("acknowledged %d, stored %d, missing %d", len(acked), len(stored), missing)
	if missing > 0 {
		t.Errorf("%d acknowledged events are missing from the stream", missing)
	}
}

// storedIDs reopens a stopped gateway's store and returns its message ids.
func storedIDs(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	ns := natstest.Run(t, func(o *server.Options) { o.StoreDir = dataDir })
	return servicetest.StreamIDs(t, ns.ClientURL(), "PIPEDRIVE")
}

func TestCommands(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantOut string
		wantErr string
	}{
		{name: "version", args: []string{"version"}, wantOut: "pipedrive-gateway dev"},
		{name: "help", args: []string{"help"}, wantOut: "Usage:"},
		{name: "unknown_command", args: []string{"bogus"}, wantErr: `unknown command "bogus"`},
		{name: "serve_help", args: []string{"serve", "--help"}, wantErr: "help requested"},
		{name: "tail_help", args: []string{"tail", "-h"}, wantErr: "help requested"},
		{
			name: "invalid_settings_named", args: []string{"serve"},
			env:     map[string]string{"PUBLISH_TIMEOUT": "soon", "STREAM_REPLICAS": "9", "NATS_URL": "nats://127.0.0.1:1"},
			wantErr: "PUBLISH_TIMEOUT",
		},
		{
			name: "tail_without_gateway", args: []string{"tail"},
			env:     map[string]string{"EMBEDDED_NATS_LISTEN": "127.0.0.1:1"},
			wantErr: "is the gateway running?",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, envconfig.MapLookuper(tc.env), &out, &errOut)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), tc.wantOut)
			}
		})
	}
}

// TestManagedCompanies is the service with two API tokens against a fake
// Pipedrive: two correct webhooks, drift repaired on demand, state in the
// admin API, events accepted with each company's own credentials, and a
// disconnected company's credentials refused at once.
func TestManagedCompanies(t *testing.T) {
	t.Parallel()
	fake := pipedrivetest.NewServer(t)
	fake.AddCompany(pipedrivetest.Company{ID: 9912345, APIToken: "tok-a", Domain: "acme"})
	fake.AddCompany(pipedrivetest.Company{ID: 777, APIToken: "tok-b", Domain: "other"})
	env := servicetest.Env(t)
	env["PIPEDRIVE_API_URL"] = fake.URL()
	env["PIPEDRIVE_API_TOKENS"] = "tok-a,tok-b"
	env["PUBLIC_URL"] = "https://hooks.example.com"
	env["ADMIN_TOKEN"] = "admin-secret"
	delete(env, "WEBHOOK_USER")
	delete(env, "WEBHOOK_PASSWORD")
	a, _ := startApp(t, env)
	ops := "http://" + a.OpsAddr().String()
	admin := func(method, path string) (int, string) { return servicetest.Admin(ops, "admin-secret", method, path) }
	list := func() map[int64]servicetest.Company { return servicetest.Companies(t, ops, "admin-secret") }
	deadline := time.Now().Add(15 * time.Second)
	for cs := list(); len(cs) != 2 || cs[9912345].State != "ok" || cs[777].State != "ok"; cs = list() {
		if time.Now().After(deadline) {
			t.Fatalf("companies not reconciled: %+v", cs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []int64{9912345, 777} {
		hooks := fake.Webhooks(id)
		if len(hooks) != 1 || hooks[0].SubscriptionURL != fmt.Sprintf("https://hooks.example.com/webhooks/pipedrive/%d", id) || hooks[0].Version != "2.0" {
			t.Fatalf("company %d webhooks: %v", id, hooks)
		}
	}
	// Pipedrive delivers with the credentials it was given.
	hook := fake.Webhooks(9912345)[0]
	body, _ := os.ReadFile("testdata/v2-change-deal.json")
	deliver := func(user, pass string) int {
		status, err := servicetest.Post("http://"+a.IngressAddr().String()+"/webhooks/pipedrive/9912345", user, pass, body)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	if got := deliver(hook.HTTPAuthUser, hook.HTTPAuthPassword); got != http.StatusOK {
		t.Fatalf("delivery with the registered credentials: %d", got)
	}
	other := fake.Webhooks(777)[0]
	if got := deliver(other.HTTPAuthUser, other.HTTPAuthPassword); got != http.StatusUnauthorized {
		t.Errorf("delivery with another company's credentials: %d, want 401", got)
	}
	// Drift: deleted behind our back, repaired by an on-demand reconcile.
	fake.DeleteBehindBack(hook.ID)
	if status, body := admin("POST", "/admin/companies/9912345/reconcile"); status != 200 || !strings.Contains(body, `"state":"ok"`) {
		t.Fatalf("reconcile: %d %s", status, body)
	}
	if hooks := fake.Webhooks(9912345); len(hooks) != 1 || hooks[0].ID == hook.ID {
		t.Fatalf("not repaired: %v", hooks)
	}
	hook = fake.Webhooks(9912345)[0]
	if status, _ := admin("DELETE", "/admin/companies/9912345"); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	if got := deliver(hook.HTTPAuthUser, hook.HTTPAuthPassword); got != http.StatusUnauthorized {
		t.Errorf("delivery after disconnect: %d, want 401", got)
	}
	if n := len(fake.Webhooks(9912345)); n != 0 {
		t.Errorf("%d webhooks left after disconnect", n)
	}
}
