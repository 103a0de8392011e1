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
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/sethvargo/go-envconfig"
)

// gcPercent is the GOGC the gateway runs with unless GOGC is set.
const gcPercent = 50

// defaultGC sets gcPercent unless the environment sets GOGC.
func defaultGC(lookup func(string) (string, bool)) {
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// No heap profile is ever read (the gateway serves no pprof), so none
	// is recorded: the profile's bucket table alone would take over a
	// megabyte of RSS. Go asks for this first thing in main.
	runtime.MemProfileRate = 0
	// The live heap is small and the allocation rate low (the embedded
	// NATS's block caches are most of it), so the heap may grow to 1.5
	// times what is live rather than Go's 2 (README, "Connecting many
	// companies": a quarter less RSS at 10,000 companies, CPU within the
	// noise). GOGC in the environment still decides.
	defaultGC(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is 0 for success (a command stopped by a signal included) and
// --help, 2 for a mistake in the command line, 1 for any other error.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintln(stderr, "pipedrive-gateway:", err)
		}
		return 2
	default:
		fmt.Fprintln(stderr, "pipedrive-gateway:", err)
		return 1
	}
}

// usageError is a mistake in the command line (exit code 2). printed: the
// flag package has already said what is wrong.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error { return usageError{err: fmt.Errorf(format, a...)} }

// parseArgs parses flags wherever they stand among the arguments
// (`tail 'pipedrive.delete.>' --all`) and returns the other arguments;
// everything after "--" is an argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err: err, printed: true}
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

const usage = `pipedrive-gateway — Pipedrive webhooks in, NATS JetStream out.

Usage:
  pipedrive-gateway [serve]                run the gateway (the default)
  pipedrive-gateway tail [--all] [SUBJECT] print events as they arrive (default <prefix>.>)
  pipedrive-gateway version                print the version

Settings come from the environment; see README.md. Each command takes --help.
Exit codes: 0 done (or stopped by a signal), 1 error, 2 wrong command line.
`

// run dispatches the subcommand; it is main without the process globals.
func run(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	cmd := "serve"
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		cmd = "help"
	case len(args) > 0 && args[0] != "" && args[0][0] != '-':
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
		return usageErrorf("unknown command %q", cmd)
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
