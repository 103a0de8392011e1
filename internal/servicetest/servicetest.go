// Package servicetest holds the end-to-end test helpers: it starts the
// whole gateway inside a test, as the serve command does, on temporary
// directories and free loopback ports, and talks to a running gateway from
// outside (deliveries, the admin API, the stream), as Pipedrive, an
// operator and a consumer would. It must not reach inside the service: what
// it checks, a user could check too.
package servicetest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
)

// Static Basic credentials set by Env.
const (
	User     = "pipedrive"
	Password = "change-me"
)

// Env is what a user gets from `go run .`, moved to a temporary directory
// and free ports, with static webhook credentials.
func Env(t testing.TB) map[string]string {
	return map[string]string{
		"DATA_DIR":             t.TempDir(),
		"HTTP_ADDR":            "127.0.0.1:0",
		"OPS_ADDR":             "127.0.0.1:0",
		"EMBEDDED_NATS_LISTEN": "127.0.0.1:0",
		"WEBHOOK_USER":         User,
		"WEBHOOK_PASSWORD":     Password,
	}
}

// Running is a started service.
type Running struct {
	*service.Service
	once sync.Once
	err  error
	stop func() error
}

// Stop shuts the service down as SIGTERM would and returns Run's error.
func (r *Running) Stop() error {
	r.once.Do(func() { r.err = r.stop() })
	return r.err
}

// IngressURL and OpsURL are the base URLs of the two listeners.
func (r *Running) IngressURL() string { return "http://" + r.IngressAddr().String() }
func (r *Running) OpsURL() string     { return "http://" + r.OpsAddr().String() }

// Start loads env as the configuration and runs the service until the
// test ends (or Stop). Logs go to t.Log at level and above.
func Start(t testing.TB, env map[string]string, level slog.Level, opts ...service.Option) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg, err := config.Load(ctx, envconfig.MapLookuper(env))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testlog.Writer{T: t}, &slog.HandlerOptions{Level: level}))
	s, err := service.New(ctx, cfg, log, opts...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	r := &Running{Service: s, stop: func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("run did not return within 30s of shutdown")
		}
	}}
	t.Cleanup(func() { _ = r.Stop() })
	return r
}
