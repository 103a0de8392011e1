package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// bench is one measurement: the fake, the gateway's settings and the
// directory its data and logs go to.
type bench struct {
	cfg    config
	dir    string
	bin    string
	fake   *pipedrivetest.Server
	env    []string
	ops    string // base URL of the ops listener
	log    io.Writer
	starts int
	nats   *server.Server // with -external-nats
}

// maxArg is Linux's limit on one environment string (MAX_ARG_STRLEN).
const maxArg = 128 << 10

func newBench(ctx context.Context, cfg config, dir string, log io.Writer) (*bench, error) {
	b := &bench{cfg: cfg, dir: dir, bin: cfg.gateway, log: log}
	if b.bin == "" {
		b.bin = filepath.Join(dir, "pipedrive-gateway")
		fmt.Fprintln(log, "scale: building the gateway")
		// The release build: static, stripped (what the image ships).
		build := exec.CommandContext(ctx, "bash", "scripts/build.sh", b.bin)
		build.Stdout, build.Stderr = log, log
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("failed to build the gateway with scripts/build.sh (run from the repository root): %w", err)
		}
	}
	b.fake = pipedrivetest.New(pipedrivetest.Options{DiscardCalls: true, Latency: cfg.latency})
	b.fake.AddCompanies(cfg.companies, cfg.firstID)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fakeURL := "http://" + l.Addr().String()
	go func() { _ = b.fake.Serve(l) }()

	ports, err := freePorts(2)
	if err != nil {
		b.close()
		return nil, err
	}
	tokens := make([]string, cfg.companies)
	for i := range tokens {
		tokens[i] = pipedrivetest.RangeToken(cfg.firstID + int64(i))
	}
	list := "PIPEDRIVE_API_TOKENS=" + strings.Join(tokens, ",")
	if len(list) >= maxArg {
		b.close()
		return nil, fmt.Errorf("%d tokens make PIPEDRIVE_API_TOKENS %d bytes long, over Linux's %d for one variable", cfg.companies, len(list), maxArg)
	}
	b.ops = "http://127.0.0.1:" + ports[1]
	b.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"DATA_DIR=" + filepath.Join(dir, "data"),
		"HTTP_ADDR=127.0.0.1:" + ports[0],
		"OPS_ADDR=127.0.0.1:" + ports[1],
		"EMBEDDED_NATS_LISTEN=127.0.0.1:0",
		"PUBLIC_URL=http://127.0.0.1:" + ports[0],
		"PIPEDRIVE_API_URL=" + fakeURL,
		"ADMIN_TOKEN=scale-bench",
		list,
	}
	if cfg.concurrency > 0 {
		b.env = append(b.env, "RECONCILE_CONCURRENCY="+strconv.Itoa(cfg.concurrency))
	}
	if cfg.externalNATS {
		url, err := b.startNATS()
		if err != nil {
			b.close()
			return nil, err
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		b.env = append(b.env, "NATS_URL="+url, "STATE_KEY="+base64.StdEncoding.EncodeToString(key))
	}
	b.env = append(b.env, cfg.extraEnv...)
	return b, nil
}

// startNATS runs NATS with JetStream in this process, its store in the
// bench's directory.
func (b *bench) startNATS() (string, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: filepath.Join(b.dir, "nats"), NoSigs: true, NoLog: true})
	if err != nil {
		return "", err
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return "", errors.New("NATS did not start")
	}
	b.nats = ns
	return ns.ClientURL(), nil
}

func (b *bench) close() {
	_ = b.fake.Close()
	if b.nats != nil {
		b.nats.Shutdown()
	}
}

func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		_, port, _ := net.SplitHostPort(l.Addr().String())
		out = append(out, port)
	}
	return out, nil
}

// gateway is a running gateway process.
type gateway struct {
	cmd    *exec.Cmd
	exited chan error
}

func (b *bench) start() (*gateway, error) {
	b.starts++
	logf, err := os.Create(filepath.Join(b.dir, fmt.Sprintf("gateway-%d.log", b.starts)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = b.env, logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("failed to start the gateway: %w", err)
	}
	g := &gateway{cmd: cmd, exited: make(chan error, 1)}
	go func() { g.exited <- cmd.Wait(); logf.Close() }()
	return g, nil
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit.
func (g *gateway) stop() error {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.exited:
		return err
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		return errors.New("the gateway did not stop within 30s of SIGTERM")
	}
}

// alive fails when the gateway has exited.
func (g *gateway) alive() error {
	select {
	case err := <-g.exited:
		g.exited <- err
		return fmt.Errorf("the gateway exited: %v (see its log)", err)
	default:
		return nil
	}
}

// waitWebhooks polls the fake until every company has a webhook and
// returns how long it took from start.
func (b *bench) waitWebhooks(ctx context.Context, g *gateway, start time.Time) (time.Duration, error) {
	deadline := start.Add(b.cfg.timeout)
	last := time.Now()
	for {
		if err := g.alive(); err != nil {
			return 0, err
		}
		created := b.fake.Usage()[pipedrive.RouteCreateWebhook].Calls
		if created >= b.cfg.companies && b.missing() == 0 {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d companies still without a webhook after %v", b.missing(), b.cfg.companies, b.cfg.timeout)
		}
		if time.Since(last) >= 10*time.Second {
			fmt.Fprintf(b.log, "scale: %v: %d webhooks created\n", time.Since(start).Round(time.Second), created)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// missing counts the companies without a webhook.
func (b *bench) missing() int {
	n := 0
	for i := range b.cfg.companies {
		if len(b.fake.Webhooks(b.cfg.firstID+int64(i))) == 0 {
			n++
		}
	}
	return n
}

// exactlyOne counts the companies with exactly one webhook.
func (b *bench) exactlyOne() int {
	n := 0
	for i := range b.cfg.companies {
		if len(b.fake.Webhooks(b.cfg.firstID+int64(i))) == 1 {
			n++
		}
	}
	return n
}

// spent is what every company's calls cost so far, in Pipedrive tokens.
func (b *bench) spent() []int {
	out := make([]int, b.cfg.companies)
	for i := range out {
		out[i] = b.fake.TokensSpent(b.cfg.firstID + int64(i))
	}
	return out
}

// waitReady polls /readyz until 200 and returns how long it took.
func (b *bench) waitReady(ctx context.Context, g *gateway, start time.Time) (time.Duration, error) {
	c := &http.Client{Timeout: time.Second}
	for {
		if err := g.alive(); err != nil {
			return 0, err
		}
		if resp, err := c.Get(b.ops + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > time.Minute {
			return 0, errors.New("/readyz not 200 within a minute")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
