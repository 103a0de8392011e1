package tests

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const testStateKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// TestShutdownDelay_Grace: the chart sets SHUTDOWN_DELAY and a grace period that
// covers it plus the drain, without a preStop hook; a grace period too short for
// the delay is refused.
func TestShutdownDelay_Grace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sets      []string
		wantDelay string
		wantGrace int64
	}{
		{"default", nil, "10s", 40},
		{"one_minute", []string{"config.shutdownDelay=1m"}, "1m", 90},
		{"none", []string{"config.shutdownDelay=0s"}, "0s", 30},
		{"explicit_grace", []string{"terminationGracePeriodSeconds=120"}, "10s", 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := render(t, ciValues("default-values.yaml"), tc.sets...)
			pod := theWorkload(t, m).pod
			if got := settings(t, m)["SHUTDOWN_DELAY"]; got != tc.wantDelay {
				t.Errorf("SHUTDOWN_DELAY = %q, want %q", got, tc.wantDelay)
			}
			if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != tc.wantGrace {
				t.Errorf("terminationGracePeriodSeconds = %v, want %d", g, tc.wantGrace)
			}
			if c := gatewayContainer(t, pod); c.Lifecycle != nil {
				t.Errorf("lifecycle = %+v, want none", c.Lifecycle)
			}
		})
	}
	for _, tc := range []struct{ sets []string }{
		{[]string{"terminationGracePeriodSeconds=15"}},
		{[]string{"config.shutdownDelay=6m"}},
	} {
		if _, stderr, err := helmTemplate(t, nil, tc.sets...); err == nil || !strings.Contains(stderr, "shutdownDelay") {
			t.Errorf("helm template %v: err %v, stderr %q; want a refusal naming config.shutdownDelay", tc.sets, err, stderr)
		}
	}
}

// TestStateKeySecret_KeptOnUninstall: STATE_KEY (and STATE_KEY_PREVIOUS) live in a
// Secret of their own that helm uninstall keeps; the other secrets do not.
func TestStateKeySecret_KeptOnUninstall(t *testing.T) {
	t.Parallel()
	m := render(t, ciValues("external-ha-values.yaml"), "secrets.stateKeyPrevious="+testStateKey)
	byName := map[string]map[string]string{}
	keys := map[string][]string{}
	for _, s := range m.Secrets {
		byName[s.Name] = s.Annotations
		for k := range s.Data {
			keys[s.Name] = append(keys[s.Name], k)
		}
		slices.Sort(keys[s.Name])
	}
	state := fullname + "-state-key"
	if byName[state]["helm.sh/resource-policy"] != "keep" || !slices.Equal(keys[state], []string{"state-key", "state-key-previous"}) {
		t.Errorf("Secret %s: annotations %v, keys %v; want helm.sh/resource-policy keep and the two state keys", state, byName[state], keys[state])
	}
	if byName[fullname]["helm.sh/resource-policy"] != "" || slices.Contains(keys[fullname], "state-key") {
		t.Errorf("Secret %s: annotations %v, keys %v; want the other secrets, not kept", fullname, byName[fullname], keys[fullname])
	}
	s := settings(t, m)
	if s["STATE_KEY"] != "secret:"+state+"/state-key" || s["STATE_KEY_PREVIOUS"] != "secret:"+state+"/state-key-previous" {
		t.Errorf("STATE_KEY from %q, STATE_KEY_PREVIOUS from %q; want Secret %s", s["STATE_KEY"], s["STATE_KEY_PREVIOUS"], state)
	}
}

// TestNetworkPolicy_EgressFromSettings: the egress ports are those of the
// configured endpoints.
func TestNetworkPolicy_EgressFromSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sets []string
		want [][]int32 // ports of each egress rule, in order
	}{
		{"embedded_no_otlp", []string{"networkPolicy.enabled=true"}, [][]int32{{53, 53}, {443}}},
		{"external_otlp_http", []string{"networkPolicy.enabled=true", "nats.mode=external", "secrets.stateKey=" + testStateKey,
			`nats.url=nats://a:4222\,tls://user:pass@b:7422\,nats://c`, "otel.exporterOtlpEndpoint=http://collector.observability:4318"},
			[][]int32{{53, 53}, {443}, {4222, 7422}, {4318}}},
		{"grpc_and_api_override", []string{"networkPolicy.enabled=true", "otel.exporterOtlpEndpoint=http://collector:4317", "otel.exporterOtlpProtocol=grpc",
			"pipedrive.apiUrl=http://proxy.internal:8080", "pipedrive.oauthUrl=https://oauth.example.com"},
			[][]int32{{53, 53}, {443, 8080}, {4317}}},
		{"traces_endpoint_without_port", []string{"networkPolicy.enabled=true", "otel.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://otlp.example.com/v1/traces"},
			[][]int32{{53, 53}, {443}, {443}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := render(t, ciValues("default-values.yaml"), tc.sets...)
			if len(m.NetworkPolicies) != 1 {
				t.Fatalf("%d NetworkPolicies, want 1", len(m.NetworkPolicies))
			}
			var got [][]int32
			for _, r := range m.NetworkPolicies[0].Spec.Egress {
				var ports []int32
				for _, p := range r.Ports {
					ports = append(ports, p.Port.IntVal)
				}
				got = append(got, ports)
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("egress ports = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStreamMaxBytes_FromVolume: in embedded mode the stream is capped below the
// volume, so that the volume never fills; elsewhere nothing is set unless asked.
func TestStreamMaxBytes_FromVolume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sets []string
		want string // "" = not set
	}{
		{"default_5Gi", nil, "4032MiB"},
		{"20Gi", []string{"persistence.size=20Gi"}, "16320MiB"},
		{"512Mi", []string{"persistence.size=512Mi"}, "345MiB"},
		{"unit_not_derived", []string{"persistence.size=5G"}, ""},
		{"existing_claim", []string{"persistence.existingClaim=data"}, ""},
		{"no_volume", []string{"persistence.enabled=false"}, ""},
		{"explicit", []string{"stream.maxBytes=1GiB"}, "1GiB"},
		{"explicit_none", []string{"stream.maxBytes=0"}, "0"},
		{"external", []string{"nats.mode=external", "nats.url=nats://x:4222", "secrets.stateKey=" + testStateKey}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := settings(t, render(t, ciValues("default-values.yaml"), tc.sets...))["STREAM_MAX_BYTES"]
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("STREAM_MAX_BYTES = %q (set %v), want %q", got, ok, tc.want)
			}
		})
	}
}

// TestKubeVersion: the chart says which Kubernetes it needs and refuses older.
func TestKubeVersion(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		KubeVersion string `json:"kubeVersion"`
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil || chart.KubeVersion != ">="+kubeVersion+"-0" {
		t.Errorf("Chart.yaml kubeVersion = %q (%v), want >=%s-0", chart.KubeVersion, err, kubeVersion)
	}
	helm := helmBinary(t)
	out, err := runHelm(t, helm, "template", release, chartDir, "--kube-version", "1.24.0")
	if err == nil || !strings.Contains(out, "incompatible with Kubernetes v1.24.0") {
		t.Errorf("helm template --kube-version 1.24.0: %v %s; want it refused", err, out)
	}
}

// TestNotes_Warnings: NOTES.txt warns about a PUBLIC_URL that is not https and
// names the kept STATE_KEY Secret.
func TestNotes_Warnings(t *testing.T) {
	t.Parallel()
	chart := notesChart(t)
	tests := []struct {
		name     string
		sets     []string
		want     []string
		wantNone []string
	}{
		{"ingress_without_tls", []string{"ingress.enabled=true"}, []string{"WARNING: PUBLIC_URL (http://hooks.example.com) is not https"}, nil},
		{"https", []string{"config.publicUrl=https://hooks.example.com"}, nil, []string{"is not https"}},
		{"state_key", []string{"secrets.stateKey=" + testStateKey, "config.publicUrl=https://h.example.com"}, []string{"STATE_KEY is in Secret " + fullname + "-state-key, which helm uninstall"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"template", release, chart, "--namespace", namespace, "--kube-version", kubeVersion, "--show-only", "templates/notes.yaml"}
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			rendered, err := runHelm(t, helmBinary(t), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, rendered)
			}
			var notes struct{ Notes string }
			if err := yaml.Unmarshal([]byte(rendered), &notes); err != nil {
				t.Fatalf("%v\n%s", err, rendered)
			}
			out := notes.Notes
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("NOTES lack %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(out, w) {
					t.Errorf("NOTES contain %q:\n%s", w, out)
				}
			}
		})
	}
}

// notesChart copies the chart with NOTES.txt renamed, so that helm template
// renders it (it leaves NOTES.txt out).
func notesChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "pipedrive-gateway")
	err := filepath.WalkDir(chartDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		if d.IsDir() {
			if rel == "tests" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == filepath.Join("templates", "NOTES.txt") {
			// helm template reads every output as YAML: wrap the text.
			rel = filepath.Join("templates", "notes.yaml")
			b = append(append([]byte(`{{- define "notes-under-test" }}`), b...),
				"{{- end }}\nnotes: {{ include \"notes-under-test\" . | toJson }}\n"...)
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDocs_StandAlone: what ships with the chart explains itself and cites no
// document that is not there.
func TestDocs_StandAlone(t *testing.T) {
	t.Parallel()
	files := []string{"README.md", "values.yaml", "values.schema.json", "Chart.yaml"}
	templates, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	for _, f := range files {
		templates = append(templates, filepath.Join(chartDir, f))
	}
	for _, f := range templates {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"SPEC", "§"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s cites %q, which does not ship with the chart", f, bad)
			}
		}
	}
}

// runHelm runs helm with args and returns its combined output.
func runHelm(t *testing.T, helm string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, helm, args...).CombinedOutput()
	return string(out), err
}
