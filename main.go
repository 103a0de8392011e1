// Command pipedrive-gateway keeps one webhook registered at every connected
// Pipedrive company and relays each delivered event to NATS JetStream.
//
// main only dispatches: each command's file (serve.go, tail.go,
// version.go) owns its flags and usage text, and the service is wired in
// internal/service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-envconfig"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "pipedrive-gateway:", err)
		os.Exit(1)
	}
}

const usage = `pipedrive-gateway — Pipedrive webhooks in, NATS JetStream out.

Usage:
  pipedrive-gateway [serve]        run the gateway (the default)
  pipedrive-gateway tail [SUBJECT] print events as they arrive (default <prefix>.>)
  pipedrive-gateway version        print the version

Settings come from the environment; see README.md. Each command takes --help.
`

// run dispatches the subcommand; it is main without the process globals.
func run(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, env, stderr)
	case "tail":
		return runTail(ctx, args, env, stdout, stderr)
	case "version":
		return runVersion(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// newFlagSet is a command's flag set; --help prints "Usage: pipedrive-gateway
// name args", the command's about text and its flags.
func newFlagSet(name, args, about string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: pipedrive-gateway %s %s\n\n%s\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}
