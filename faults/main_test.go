package faults

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

var long = flag.Bool("long", false, "run the long versions: a 10-minute chaos soak and longer loads")

// pick returns the short or the long value.
func pick[T any](short, longer T) T {
	if *long {
		return longer
	}
	return short
}

// binDir holds the gateway binary built for the subprocess tests.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	// The tests spend most of their time waiting (a soak, outages, timeouts):
	// unless -parallel was given, run them all at once instead of
	// GOMAXPROCS at a time, so that the short suite stays about as long as
	// its longest test.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "8")
	}
	// The long soak alone runs 10 minutes: go test's default -timeout
	// (10m) would kill it halfway, so say so at once.
	if f := flag.Lookup("test.timeout"); *long && f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 && d < 20*time.Minute {
			fmt.Fprintln(os.Stderr, "faults: -long needs -timeout 30m (go test ./faults -long -timeout 30m)")
			os.Exit(2)
		}
	}
	dir, err := os.MkdirTemp("", "pipedrive-gateway-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gatewayBinary builds the module's main package once per test binary.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = binDir + "/pipedrive-gateway"
		start := time.Now()
		out, err := runGo("build", "-o", binPath, "..")
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		t.Logf("built %s in %v", binPath, time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
