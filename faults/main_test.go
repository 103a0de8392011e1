package faults

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
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

// newStateKey is a random STATE_KEY.
func newStateKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// freeAddr returns a loopback address whose port was free a moment ago.
// It is taken below the kernel's ephemeral range, so that the thousands of
// client connections the other tests open cannot grab it before the
// gateway binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		port := 20000 + mathrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return ln.Addr().String()
	}
	t.Fatal("no free port found in 20000-31999")
	return ""
}

// svc is an in-process gateway.
type svc struct{ *servicetest.Running }

func (s *svc) ingress() string { return s.IngressURL() }
func (s *svc) ops() string     { return s.OpsURL() }
func (s *svc) stop() error     { return s.Stop() }

// startService runs the service as `serve` would, logging errors only (a
// fault test makes the gateway warn on every request).
func startService(t *testing.T, env map[string]string, opts ...service.Option) *svc {
	return &svc{servicetest.Start(t, env, slog.LevelError, opts...)}
}

// baseEnv is the production defaults on free loopback ports.
func baseEnv(t *testing.T) map[string]string { return servicetest.Env(t) }

// status GETs url and returns the status code, 0 on a transport error.
func status(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url until it answers want, for at most timeout, and
// returns how long that took.
func waitStatus(t *testing.T, url string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := status(url)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s answered %d for %v, want %d", url, got, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
