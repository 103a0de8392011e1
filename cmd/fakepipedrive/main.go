// Command fakepipedrive runs the in-memory Pipedrive fake of package
// pipedrivetest on a TCP address, for local trials of the gateway and for
// scale benchmarks: it serves the webhooks API, users/me, OAuth and the read
// API (v2 lists, /v1/recents, leads, notes, users) for N companies, with
// Pipedrive's token costs and rate-limit headers and an optional latency.
//
// A control API under /_fake/ changes data and inspects the fake while the
// gateway is up or down:
//
//	fakepipedrive -addr 127.0.0.1:8081 -companies 3 -tokens-file tokens.csv
//	curl -X POST localhost:8081/_fake/companies/1/objects -d '{"op":"put","kind":"deal","fields":{"title":"Acme"}}'
//	curl -X POST localhost:8081/_fake/companies/1/objects -d '{"op":"delete","kind":"deal","id":1}'
//	curl localhost:8081/_fake/companies/1/webhooks
//	curl -X POST localhost:8081/_fake/companies/1/webhooks/880001/delete
//	curl localhost:8081/_fake/calls
//
// Company id has the API token token-<id> and the domain company<id>. Point
// the gateway's Pipedrive API URL at the fake's address.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "fakepipedrive:", err)
		os.Exit(1)
	}
}

const usage = `Usage: fakepipedrive [flags]

Runs a fake Pipedrive API (webhooks, users/me, OAuth, v2 lists, /v1/recents,
leads, notes, users) for many companies, with documented token costs,
rate-limit headers and optional latency. Company <id> authenticates with the
API token token-<id>; its domain is company<id>.

Control API (unauthenticated; keep the fake on localhost):
  POST /_fake/companies/{id}/objects    {"op":"put|change|archive|unarchive|delete",
                                          "kind":"deal","id":7,"fields":{...}}
  GET  /_fake/companies/{id}/objects    ?kind=deal
  GET  /_fake/companies/{id}/webhooks
  POST /_fake/companies/{id}/webhooks/{webhook id}/delete
  POST /_fake/companies/{id}/budget     {"tokens":1000}
  GET  /_fake/calls                     calls and tokens per route, in-flight gauge
  POST /_fake/calls/reset
  POST /_fake/latency                   {"latency":"250ms"}

Flags:
`

type config struct {
	addr       string
	companies  int
	firstID    int64
	tokensFile string
	latency    time.Duration
	burst      int
	keepCalls  bool
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fakepipedrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8081", "address to listen on")
	fs.IntVar(&c.companies, "companies", 1, "number of companies to make (ids -first-id …)")
	fs.Int64Var(&c.firstID, "first-id", 1, "id of the first company")
	fs.StringVar(&c.tokensFile, "tokens-file", "", "write company_id,domain,api_token lines here (default: print them when there are at most 20)")
	fs.DurationVar(&c.latency, "latency", 0, "delay every API call by this much")
	fs.IntVar(&c.burst, "burst", 0, "enforce this many requests per token per 2 s with 429s (0: headers only)")
	fs.BoolVar(&c.keepCalls, "keep-calls", false, "record every call in memory (grows without bound); /_fake/calls counts them anyway")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.companies < 1 || c.firstID < 1:
		return c, errors.New("-companies and -first-id must be positive")
	case c.latency < 0:
		return c, errors.New("-latency must not be negative")
	}
	return c, nil
}

// run serves until ctx ends. The first line on stdout names the URL.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	s := pipedrivetest.New(pipedrivetest.Options{DiscardCalls: !c.keepCalls, Latency: c.latency})
	s.AddCompanies(c.companies, c.firstID)
	s.SetBurstLimit(c.burst)

	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fakepipedrive: listening on http://%s with %d companies (ids %d-%d)\n",
		l.Addr(), c.companies, c.firstID, c.firstID+int64(c.companies)-1)
	if err := writeTokens(c, stdout); err != nil {
		l.Close()
		return err
	}

	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	if err := s.Close(); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeTokens(c config, stdout io.Writer) error {
	w := stdout
	if c.tokensFile != "" {
		f, err := os.Create(c.tokensFile)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	} else if c.companies > 20 {
		fmt.Fprintln(stdout, "fakepipedrive: company <id> has the API token token-<id> (use -tokens-file for a list)")
		return nil
	}
	bw := bufio.NewWriter(w)
	for id := c.firstID; id < c.firstID+int64(c.companies); id++ {
		fmt.Fprintf(bw, "%d,company%d,%s\n", id, id, pipedrivetest.RangeToken(id))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if c.tokensFile != "" {
		fmt.Fprintf(stdout, "fakepipedrive: tokens written to %s\n", c.tokensFile)
	}
	return nil
}
