package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestCIValues_Render(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("ci values files = %v (%v), want at least 4", files, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			t.Parallel()
			checkCommon(t, render(t, f))
		})
	}
}

func TestDefault_EmbeddedSingleReplicaWithVolume(t *testing.T) {
	t.Parallel()
	m := render(t, ciValues("default-values.yaml"))
	w := theWorkload(t, m)
	if w.kind != "StatefulSet" || w.replicas == nil || *w.replicas != 1 {
		t.Fatalf("got %s with replicas %v, want a StatefulSet with 1", w.kind, w.replicas)
	}
	s := settings(t, m)
	if _, ok := s["NATS_URL"]; ok {
		t.Errorf("NATS_URL set in embedded mode: %q", s["NATS_URL"])
	}
	if s["DATA_DIR"] != "/data" {
		t.Errorf("DATA_DIR = %q, want /data", s["DATA_DIR"])
	}
	vct := m.StatefulSets[0].Spec.VolumeClaimTemplates
	if len(vct) != 1 || vct[0].Name != "data" {
		t.Fatalf("volumeClaimTemplates = %+v, want one named data", vct)
	}
	if !mountedAt(t, w, "data", "/data") {
		t.Errorf("the data claim is not mounted at /data")
	}
	if len(m.HPAs)+len(m.PDBs)+len(m.Ingresses)+len(m.NetworkPolicies)+len(m.ServiceMonitors)+len(m.PrometheusRules) != 0 {
		t.Errorf("optional objects rendered by default")
	}
	if len(m.Secrets) != 0 {
		t.Errorf("a Secret without data rendered by default")
	}
}

func TestEmbeddedPersistence(t *testing.T) {
	t.Parallel()
	m := render(t, ciValues("embedded-persistence-values.yaml"))
	w := theWorkload(t, m)
	if w.kind != "StatefulSet" || *w.replicas != 1 {
		t.Fatalf("got %s with replicas %v, want a StatefulSet with 1", w.kind, *w.replicas)
	}
	s := settings(t, m)
	if s["DATA_DIR"] != "/var/lib/pipedrive-gateway" || !mountedAt(t, w, "data", "/var/lib/pipedrive-gateway") {
		t.Errorf("DATA_DIR = %q, want the data claim mounted at /var/lib/pipedrive-gateway", s["DATA_DIR"])
	}
	pvc := m.StatefulSets[0].Spec.VolumeClaimTemplates[0]
	if got := pvc.Spec.Resources.Requests.Storage().String(); got != "20Gi" {
		t.Errorf("claim size = %s, want 20Gi", got)
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" {
		t.Errorf("storageClassName = %v, want standard", pvc.Spec.StorageClassName)
	}
	if s["EMBEDDED_NATS_LISTEN"] != "0.0.0.0:4222" {
		t.Errorf("EMBEDDED_NATS_LISTEN = %q", s["EMBEDDED_NATS_LISTEN"])
	}
	nats := service(t, m, fullname+"-nats")
	if nats.Spec.Ports[0].Port != 4222 || nats.Spec.Ports[0].TargetPort.String() != "nats" {
		t.Errorf("nats Service ports = %+v", nats.Spec.Ports)
	}
	if s["PUBLIC_URL"] != "https://hooks.example.com" {
		t.Errorf("PUBLIC_URL = %q", s["PUBLIC_URL"])
	}
}

func TestExternalHA(t *testing.T) {
	t.Parallel()
	m := render(t, ciValues("external-ha-values.yaml"))
	w := theWorkload(t, m)
	if w.kind != "Deployment" {
		t.Fatalf("got %s, want a Deployment", w.kind)
	}
	// With the HPA on, the Deployment leaves replicas to it (else every upgrade resets them).
	if w.replicas != nil {
		t.Errorf("Deployment replicas = %d with an HPA, want unset", *w.replicas)
	}
	if len(m.HPAs) != 1 || m.HPAs[0].Spec.MinReplicas == nil || *m.HPAs[0].Spec.MinReplicas != 3 ||
		m.HPAs[0].Spec.ScaleTargetRef.Kind != "Deployment" || m.HPAs[0].Spec.ScaleTargetRef.Name != fullname {
		t.Errorf("HPAs = %+v, want one with minReplicas 3 on the Deployment", m.HPAs)
	}
	if len(m.PDBs) != 1 || m.PDBs[0].Spec.MaxUnavailable == nil || m.PDBs[0].Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDBs = %+v, want one with maxUnavailable 1", m.PDBs)
	}
	tsc := w.pod.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].TopologyKey != "kubernetes.io/hostname" || tsc[0].WhenUnsatisfiable != "ScheduleAnyway" {
		t.Errorf("topologySpreadConstraints = %+v, want a soft spread by hostname", tsc)
	}
	s := settings(t, m)
	if s["NATS_URL"] != "nats://nats.nats.svc.cluster.local:4222" || s["STREAM_REPLICAS"] != "3" {
		t.Errorf("NATS_URL = %q, STREAM_REPLICAS = %q", s["NATS_URL"], s["STREAM_REPLICAS"])
	}
	if s["PUBLIC_URL"] != "https://hooks.example.com" {
		t.Errorf("PUBLIC_URL = %q, want it derived from the TLS ingress host", s["PUBLIC_URL"])
	}
	if len(m.Ingresses) != 1 || len(m.Ingresses[0].Spec.TLS) != 1 {
		t.Fatalf("want one Ingress with TLS, got %+v", m.Ingresses)
	}
	var paths []string
	for _, p := range m.Ingresses[0].Spec.Rules[0].HTTP.Paths {
		paths = append(paths, p.Path)
	}
	if !slices.Equal(paths, publicPaths) {
		t.Errorf("Ingress paths = %v, want %v (OAuth on since pipedrive.clientId is set)", paths, publicPaths)
	}
	if len(m.ServiceMonitors) != 1 || m.ServiceMonitors[0].Spec.Endpoints[0].Port != "ops" ||
		m.ServiceMonitors[0].Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "ops" {
		t.Errorf("ServiceMonitors = %+v, want one scraping the ops Service", m.ServiceMonitors)
	}
	checkAlerts(t, m)
	if len(m.NetworkPolicies) != 1 {
		t.Errorf("want a NetworkPolicy")
	}

	// Without the HPA the Deployment runs replicaCount.
	m = render(t, ciValues("external-ha-values.yaml"), "autoscaling.enabled=false")
	if w := theWorkload(t, m); w.replicas == nil || *w.replicas != 3 {
		t.Errorf("replicas = %v, want 3", w.replicas)
	}
}

func checkAlerts(t *testing.T, m manifests) {
	t.Helper()
	if len(m.PrometheusRules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(m.PrometheusRules))
	}
	want := map[string]string{
		"PipedriveGatewayPublishFailures":         "pipedrive_gateway_publish_errors_total",
		"PipedriveGatewayWebhookErrors":           "pipedrive_gateway_webhook_requests_total",
		"PipedriveGatewayReconcileErrors":         `pipedrive_gateway_reconcile_runs_total{namespace="gw",job="pg-pipedrive-gateway-ops",result=~"error|retry"}`,
		"PipedriveGatewayCompanyWebhookUnhealthy": "pipedrive_gateway_company_webhook_healthy",
		"PipedriveGatewayNoLeader":                "pipedrive_gateway_leader",
		// A per-replica counter: only a sum over replicas counts a company's failures.
		"PipedriveGatewayWebhookBanRisk": `sum by (company_id) (increase(pipedrive_gateway_first_attempt_failures_total{namespace="gw",job="pg-pipedrive-gateway-ops"}[30m])) >= 5`,
		"PipedriveGatewayStreamFull":     `pipedrive_gateway_stream_size_bytes{namespace="gw",job="pg-pipedrive-gateway-ops"} / pipedrive_gateway_stream_limit_bytes{namespace="gw",job="pg-pipedrive-gateway-ops"}) > 0.8`,
		// Runs end on whichever replica leads: summed over replicas too.
		"PipedriveGatewayBackfillIncomplete": `sum by (company_id) (increase(pipedrive_gateway_backfill_runs_total{namespace="gw",job="pg-pipedrive-gateway-ops",result=~"incomplete|failed"}[1h])) > 0`,
	}
	got := map[string]string{}
	for _, g := range m.PrometheusRules[0].Spec.Groups {
		for _, r := range g.Rules {
			got[r.Alert] = r.Expr
			if r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s lacks for/severity/summary", r.Alert)
			}
		}
	}
	for alert, metric := range want {
		if !strings.Contains(got[alert], metric) {
			t.Errorf("alert %s expr = %q, want it to use %s", alert, got[alert], metric)
		}
	}
}

func TestExistingSecret(t *testing.T) {
	t.Parallel()
	m := render(t, ciValues("existing-secret-values.yaml"))
	if len(m.Secrets) != 0 {
		t.Errorf("the chart made a Secret although secrets.existingSecret is set")
	}
	c := gatewayContainer(t, theWorkload(t, m).pod)
	got := map[string]string{}
	for _, e := range c.Env {
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			if ref.SecretKeyRef.Name != "pipedrive-gateway-secrets" || ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional {
				t.Errorf("env %s from %+v, want optional key of pipedrive-gateway-secrets", e.Name, ref.SecretKeyRef)
			}
			got[e.Name] = ref.SecretKeyRef.Key
		}
	}
	want := map[string]string{"ADMIN_TOKEN": "ADMIN_TOKEN", "STATE_KEY": "STATE_KEY", "STATE_KEY_PREVIOUS": "STATE_KEY_PREVIOUS", "PIPEDRIVE_API_TOKENS": "PIPEDRIVE_API_TOKENS"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("secret env = %v, want %v (keys set to \"\" are not read)", got, want)
	}
	s := settings(t, m)
	for _, name := range []string{"NATS_NKEY_SEED", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY"} {
		if s[name] == "" {
			t.Errorf("%s not set", name)
		}
	}
	pod := theWorkload(t, m).pod
	if len(pod.Spec.ImagePullSecrets) != 1 || !strings.Contains(gatewayContainer(t, pod).Image, "@sha256:") {
		t.Errorf("imagePullSecrets/digest not applied")
	}
}

// TestEverySettingReachable: each setting of the binary can be set from values.
func TestEverySettingReachable(t *testing.T) {
	t.Parallel()
	all := settings(t, render(t, filepath.Join("testdata", "all-settings-values.yaml")))
	// The nkey seed excludes creds and the embedded listener excludes external NATS:
	// those come from other renderings.
	for _, f := range []string{ciValues("existing-secret-values.yaml"), ciValues("embedded-persistence-values.yaml")} {
		for k, v := range settings(t, render(t, f)) {
			if _, ok := all[k]; !ok {
				all[k] = v
			}
		}
	}
	for _, name := range specSettings {
		if all[name] == "" {
			t.Errorf("%s cannot be set from values", name)
		}
	}
	if all["PUBLIC_URL"] != "https://hooks.example.com" || all["HTTP_ADDR"] != ":8081" || all["OTEL_METRIC_EXPORT_INTERVAL"] != "10000" {
		t.Errorf("PUBLIC_URL = %q, HTTP_ADDR = %q, OTEL_METRIC_EXPORT_INTERVAL = %q", all["PUBLIC_URL"], all["HTTP_ADDR"], all["OTEL_METRIC_EXPORT_INTERVAL"])
	}
	m := render(t, filepath.Join("testdata", "all-settings-values.yaml"))
	checkCommon(t, m)
	c := gatewayContainer(t, theWorkload(t, m).pod)
	if c.Ports[0].ContainerPort != 8081 || c.Ports[1].ContainerPort != 9091 {
		t.Errorf("container ports = %+v, want 8081 and 9091 from the addresses", c.Ports)
	}
}

func TestInvalidValues_Fail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []string
		sets  []string
		want  string
	}{
		{name: "embedded_two_replicas", sets: []string{"replicaCount=2"},
			want: "nats.mode=embedded runs exactly one replica"},
		{name: "embedded_autoscaling", sets: []string{"autoscaling.enabled=true"},
			want: "autoscaling.enabled must be false"},
		{name: "embedded_pdb", sets: []string{"podDisruptionBudget.enabled=true"},
			want: "podDisruptionBudget.enabled must be false"},
		{name: "embedded_with_url", sets: []string{"nats.url=nats://x:4222"},
			want: "set nats.mode=external"},
		{name: "embedded_with_nats_auth", files: []string{filepath.Join("testdata", "embedded-nkey-values.yaml")},
			want: "they need nats.mode=external"},
		{name: "external_pdb_single_replica", sets: []string{"nats.mode=external", "nats.url=nats://x:4222", "secrets.stateKey=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "podDisruptionBudget.enabled=true"},
			want: "would block node drains"},
		{name: "external_without_url", sets: []string{"nats.mode=external"},
			want: "nats.mode=external requires nats.url"},
		{name: "external_without_state_key", sets: []string{"nats.mode=external", "nats.url=nats://x:4222"},
			want: "requires secrets.stateKey"},
		{name: "bad_state_key", sets: []string{"secrets.stateKey=c2hvcnQ="},
			want: "/secrets/stateKey"},
		{name: "unknown_mode", sets: []string{"nats.mode=cluster"},
			want: "/nats/mode"},
		{name: "top_level_typo", sets: []string{"replicas=2"},
			want: "additional properties 'replicas' not allowed"},
		{name: "group_typo", sets: []string{"ingress.host=x"},
			want: "additional properties 'host' not allowed"},
		{name: "otel_env_not_otel", sets: []string{"otel.env.FOO=1"},
			want: "^OTEL_"},
		{name: "otlp_http_json", sets: []string{"otel.exporterOtlpProtocol=http/json"},
			want: "/otel/exporterOtlpProtocol"},
		{name: "stream_manage_unknown", sets: []string{"stream.manage=always"},
			want: "/stream/manage"},
		{name: "service_on_loopback", sets: []string{"nats.embedded.service.enabled=true"},
			want: "nats.embedded.listen on a pod address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, err := helmTemplate(t, tc.files, tc.sets...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error containing %q\n%s", tc.sets, tc.want, out)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("helm template %v stderr = %q, want it to contain %q", tc.sets, stderr, tc.want)
			}
		})
	}
}

// TestReadme_ListsEveryValue: README.md names every key of values.yaml.
func TestReadme_ListsEveryValue(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	leafKeys("", values, &keys)
	sort.Strings(keys)
	documented := func(k string) bool { return strings.Contains(string(readme), "`"+k+"`") }
	for _, k := range keys {
		if documented(k) {
			continue
		}
		if p := freeFormParent(k); p != "" && documented(p) {
			continue
		}
		t.Errorf("README.md does not document `%s`", k)
	}
}

// freeFormValues are Kubernetes objects passed through as a whole: README documents
// the object, not its fields.
var freeFormValues = []string{
	"resources", "podSecurityContext", "securityContext",
	"livenessProbe", "readinessProbe", "startupProbe",
	"networkPolicy.ops.namespaceSelector", "networkPolicy.ops.podSelector", "networkPolicy.natsClients",
}

func freeFormParent(k string) string {
	for _, p := range freeFormValues {
		if strings.HasPrefix(k, p+".") {
			return p
		}
	}
	return ""
}

// leafKeys lists dotted paths down to scalars, lists and empty maps.
func leafKeys(prefix string, v any, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		*out = append(*out, prefix)
		return
	}
	for k, child := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		leafKeys(p, child, out)
	}
}

func mountedAt(t *testing.T, w workload, volumeName, mountPath string) bool {
	t.Helper()
	for _, vm := range gatewayContainer(t, w.pod).VolumeMounts {
		if vm.Name == volumeName && vm.MountPath == mountPath {
			return true
		}
	}
	return false
}
