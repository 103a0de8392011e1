package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the gateway's module, three levels up from this test module.
const repoRoot = "../../.."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gatewayBinary builds the gateway once for the tests that run it.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chart-tests-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pipedrive-gateway")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gatewayProc is the binary running with exactly the given environment.
type gatewayProc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// startGateway runs the binary and waits until /healthz answers, which it does
// only once every setting was accepted and the service is built. It fails the
// test with the binary's output when the process exits first.
func startGateway(t *testing.T, args []string, env map[string]string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{cmd: exec.Command(gatewayBinary(t), args...), done: make(chan struct{})}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	client := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("the gateway exited at start (%v) with this environment:\n%s\noutput:\n%s", p.err, envText(env), p.out.String())
		default:
		}
		if resp, err := client.Get("http://" + env["OPS_ADDR"] + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not answer /healthz within 30s; output:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func envText(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s=%s\n", k, env[k])
	}
	return b.String()
}

// processEnv is the environment the rendering gives the gateway container, with
// secretKeyRefs resolved from the chart's Secrets, moved to free loopback ports,
// a temporary DATA_DIR and, for an external NATS, natsURL.
func processEnv(t *testing.T, m manifests, natsURL string) map[string]string {
	t.Helper()
	secrets := map[string][]byte{}
	for _, s := range m.Secrets {
		for k, v := range s.Data {
			secrets["secret:"+s.Name+"/"+k] = v
		}
	}
	env := settings(t, m)
	for k, v := range env {
		if strings.HasPrefix(v, "secret:") {
			val, ok := secrets[v]
			if !ok {
				t.Fatalf("%s refers to %s, which the chart does not make", k, v)
			}
			env[k] = string(val)
		}
		if slices.Contains(fileSettings, k) {
			t.Fatalf("%s is a mounted file: give the enum test values without NATS files", k)
		}
	}
	env["HTTP_ADDR"], env["OPS_ADDR"] = freeAddr(t), freeAddr(t)
	env["DATA_DIR"] = t.TempDir()
	if env["NATS_URL"] != "" {
		env["NATS_URL"] = natsURL
	} else {
		env["EMBEDDED_NATS_LISTEN"] = "127.0.0.1:0"
	}
	return env
}

// schemaEnums lists every enum of values.schema.json that sets a scalar value, by
// dotted value path.
func schemaEnums(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var walk func(prefix string, node map[string]any)
	walk = func(prefix string, node map[string]any) {
		if enum, ok := node["enum"].([]any); ok {
			for _, v := range enum {
				out[prefix] = append(out[prefix], fmt.Sprint(v))
			}
		}
		props, _ := node["properties"].(map[string]any)
		for k, child := range props {
			if c, ok := child.(map[string]any); ok {
				walk(strings.TrimPrefix(prefix+"."+k, "."), c)
			}
		}
	}
	walk("", schema)
	return out
}

// TestSchemaEnums_BinaryAccepts: the chart and the binary agree on every value the
// schema offers. Each enum value is rendered (on the defaults, plus an OTLP
// endpoint so that the protocol is read at all) and the binary is started with
// the resulting environment: it must accept every setting. nats.mode=external
// connects to another gateway's embedded NATS.
func TestSchemaEnums_BinaryAccepts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipping: builds and starts the gateway binary for every enum value")
	}
	helmBinary(t)
	provider := map[string]string{"HTTP_ADDR": freeAddr(t), "OPS_ADDR": freeAddr(t), "DATA_DIR": t.TempDir(),
		"EMBEDDED_NATS_LISTEN": freeAddr(t), "LOG_LEVEL": "warn"}
	startGateway(t, []string{"serve"}, provider)
	natsURL := "nats://" + provider["EMBEDDED_NATS_LISTEN"]

	base := []string{"otel.exporterOtlpEndpoint=http://127.0.0.1:1"}
	external := []string{"nats.url=nats://nats.example:4222", "secrets.stateKey=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	enums := schemaEnums(t)
	if len(enums["otel.exporterOtlpProtocol"]) == 0 || len(enums["stream.manage"]) == 0 {
		t.Fatalf("schema enums = %v, want otel.exporterOtlpProtocol and stream.manage among them", enums)
	}
	paths := make([]string, 0, len(enums))
	for p := range enums {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	seen := map[string]string{} // environment → the case that checked it
	for _, path := range paths {
		for _, v := range enums[path] {
			name := path + "=" + v
			sets := append(slices.Clone(base), path+"="+v)
			if path == "nats.mode" && v == "external" {
				sets = append(sets, external...)
			}
			out, stderr, err := helmTemplate(t, nil, sets...)
			if err != nil {
				t.Errorf("%s: helm template: %v\n%s", name, err, stderr)
				continue
			}
			m := decodeAll(t, out)
			key := envText(settings(t, m))
			if other, ok := seen[key]; ok {
				t.Logf("%s: same environment as %s", name, other)
				continue
			}
			seen[key] = name
			args := gatewayContainer(t, theWorkload(t, m).pod).Args
			t.Run(strings.NewReplacer("/", "_", ".", "_").Replace(name), func(t *testing.T) {
				t.Parallel()
				startGateway(t, args, processEnv(t, m, natsURL))
			})
		}
	}
}

// TestBinaryRefusesOutsideSchema makes sure the check above can fail: a protocol
// the schema leaves out stops the binary at start, naming the variable.
func TestBinaryRefusesOutsideSchema(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipping: builds and starts the gateway binary")
	}
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "OPS_ADDR": freeAddr(t), "DATA_DIR": t.TempDir(), "EMBEDDED_NATS_LISTEN": "127.0.0.1:0",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
	cmd := exec.CommandContext(context.Background(), gatewayBinary(t), "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the gateway ran with OTEL_EXPORTER_OTLP_PROTOCOL=http/json; want it refused at start")
	}
	if err == nil || !strings.Contains(string(out), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("exit %v, output %q; want a refusal naming OTEL_EXPORTER_OTLP_PROTOCOL", err, out)
	}
}
