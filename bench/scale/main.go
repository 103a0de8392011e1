// Command scale measures what connecting many Pipedrive companies costs
// the gateway: it runs the real gateway binary as a child process against
// an in-process fake Pipedrive (pipedrivetest) that serves N companies
// with a fixed latency, with N API tokens in PIPEDRIVE_API_TOKENS, and
// reports
//
//   - the time until every company has its webhook, and the API calls;
//   - the gateway's peak and final RSS (/proc/<pid>/status VmHWM, VmRSS)
//     and CPU time (/proc/<pid>/stat utime + stime);
//   - the cost of a restart on the same DATA_DIR: /users/me calls, the
//     time until /readyz answers 200, and the lists of the first seconds
//     (the start-up reconciles are spread, not a burst);
//   - how busy the machine was: CPU used by the gateway, by this process
//     (the fake) and by everything else.
//
// Usage (from the repository root):
//
//	go run ./bench/scale -companies 1000 -latency 100ms
//	go run ./bench/scale -companies 10000 -latency 100ms -timeout 10m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type config struct {
	companies    int
	firstID      int64
	latency      time.Duration
	gateway      string
	concurrency  int
	watch        time.Duration
	timeout      time.Duration
	keep         bool
	externalNATS bool
	extraEnv     []string
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.companies, "companies", 1000, "companies to connect (tokens in PIPEDRIVE_API_TOKENS)")
	fs.Int64Var(&c.firstID, "first-id", 1, "id of the first company")
	fs.DurationVar(&c.latency, "latency", 100*time.Millisecond, "latency of every fake API call")
	fs.StringVar(&c.gateway, "gateway", "", "gateway binary (default: go build the module into a temporary directory)")
	fs.IntVar(&c.concurrency, "concurrency", 0, "RECONCILE_CONCURRENCY (0: the gateway's default)")
	fs.DurationVar(&c.watch, "watch", 10*time.Second, "how long to watch the API calls after the restart")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up when the webhooks are not all registered by then")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (gateway logs, data)")
	fs.BoolVar(&c.externalNATS, "external-nats", false, "run NATS with JetStream in this process and give the gateway NATS_URL (and a STATE_KEY), as replicas on a NATS cluster run, instead of its embedded server")
	fs.Func("env", "extra `NAME=VALUE` for the gateway (repeatable), e.g. GOGC=50 or LOG_LEVEL=warn", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want NAME=VALUE")
		}
		c.extraEnv = append(c.extraEnv, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.companies < 1 || c.firstID < 1:
		return c, errors.New("-companies and -first-id must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pdgw-scale-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintln(stderr, "scale: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b, err := newBench(ctx, cfg, dir, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.measure(ctx)
	if err != nil {
		return err
	}
	rep.print(stdout)
	return nil
}
