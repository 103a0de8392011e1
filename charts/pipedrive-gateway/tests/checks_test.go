package tests

import (
	"cmp"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// specSettings is every variable the binary reads (OTEL_* aside), as the main README's
// configuration table lists them.
var specSettings = []string{
	"HTTP_ADDR", "OPS_ADDR", "PUBLIC_URL",
	"NATS_URL", "NATS_CREDS", "NATS_NKEY_SEED", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY",
	"EMBEDDED_NATS_LISTEN", "DATA_DIR",
	"SUBJECT_PREFIX", "STREAM_NAME", "STREAM_MAX_AGE", "STREAM_REPLICAS", "STREAM_MAX_BYTES", "STREAM_MANAGE",
	"DEDUPE_WINDOW", "PUBLISH_TIMEOUT", "MAX_BODY_BYTES",
	"PIPEDRIVE_API_TOKENS", "WEBHOOK_USER", "WEBHOOK_PASSWORD",
	"PIPEDRIVE_CLIENT_ID", "PIPEDRIVE_CLIENT_SECRET", "PIPEDRIVE_API_URL", "PIPEDRIVE_OAUTH_URL",
	"RECONCILE_CONCURRENCY", "RESYNC_INTERVAL", "WEBHOOK_NAME", "ADMIN_TOKEN", "OAUTH_INSTALL",
	"STATE_KEY", "STATE_KEY_PREVIOUS", "SHUTDOWN_DELAY", "BACKFILL", "BACKFILL_MAX_TOKENS",
	"LOG_LEVEL", "LOG_FORMAT",
}

// secretSettings must come from a Secret through secretKeyRef, never as a value.
var secretSettings = []string{
	"ADMIN_TOKEN", "STATE_KEY", "STATE_KEY_PREVIOUS", "PIPEDRIVE_API_TOKENS", "PIPEDRIVE_CLIENT_SECRET", "WEBHOOK_PASSWORD",
}

// fileSettings are paths to files that must be mounted from a Secret volume.
var fileSettings = []string{
	"NATS_CREDS", "NATS_NKEY_SEED", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY",
}

// publicPaths are the only paths the Ingress may route.
var publicPaths = []string{"/webhooks/pipedrive", "/oauth/install", "/oauth/callback"}

func knownSetting(name string) bool {
	return slices.Contains(specSettings, name) || strings.HasPrefix(name, "OTEL_")
}

// workload is the pod-owning object of a rendering, whichever kind it is.
type workload struct {
	kind     string
	replicas *int32
	pod      corev1.PodTemplateSpec
}

func theWorkload(t *testing.T, m manifests) workload {
	t.Helper()
	switch {
	case len(m.Deployments) == 1 && len(m.StatefulSets) == 0:
		d := m.Deployments[0]
		return workload{kind: "Deployment", replicas: d.Spec.Replicas, pod: d.Spec.Template}
	case len(m.StatefulSets) == 1 && len(m.Deployments) == 0:
		s := m.StatefulSets[0]
		return workload{kind: "StatefulSet", replicas: s.Spec.Replicas, pod: s.Spec.Template}
	}
	t.Fatalf("want exactly one Deployment or StatefulSet, got %v", m)
	return workload{}
}

func gatewayContainer(t *testing.T, pod corev1.PodTemplateSpec) corev1.Container {
	t.Helper()
	for _, c := range pod.Spec.Containers {
		if c.Name == "gateway" {
			return c
		}
	}
	t.Fatalf("no container named gateway")
	return corev1.Container{}
}

func configMap(t *testing.T, m manifests, name string) corev1.ConfigMap {
	t.Helper()
	for _, cm := range m.ConfigMaps {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %q", name)
	return corev1.ConfigMap{}
}

// settings is what the gateway process sees: ConfigMap values through envFrom plus env.
func settings(t *testing.T, m manifests) map[string]string {
	t.Helper()
	c := gatewayContainer(t, theWorkload(t, m).pod)
	got := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			for k, v := range configMap(t, m, ef.ConfigMapRef.Name).Data {
				got[k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			got[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			got[e.Name] = e.Value
		}
	}
	return got
}

// checkCommon holds for every rendering.
func checkCommon(t *testing.T, m manifests) {
	t.Helper()
	w := theWorkload(t, m)
	pod := w.pod
	c := gatewayContainer(t, pod)

	// Rolling on config and secret changes.
	for _, a := range []string{"checksum/config", "checksum/secret"} {
		if len(pod.Annotations[a]) != 64 {
			t.Errorf("pod annotation %s = %q, want a sha256", a, pod.Annotations[a])
		}
	}

	// Probes on the ops port.
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")

	// Pod and container security.
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.FSGroup == nil || *psc.FSGroup != 65532 || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot, runAsUser/fsGroup 65532, seccomp RuntimeDefault", psc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext = %+v, want readOnlyRootFilesystem, no privilege escalation, drop ALL", sc)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken must be false")
	}
	delay, err := time.ParseDuration(cmp.Or(settings(t, m)["SHUTDOWN_DELAY"], "0s"))
	if err != nil {
		t.Errorf("SHUTDOWN_DELAY: %v", err)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < delay+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds = %v, want SHUTDOWN_DELAY (%v) plus at least 10 s to drain", g, delay)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		t.Errorf("a preStop sleep action needs Kubernetes 1.30; SHUTDOWN_DELAY does its work")
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v, want memory request and limit", c.Resources)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
	}
	if vm, ok := mounts["/tmp"]; !ok || volume(t, pod, vm.Name).EmptyDir == nil {
		t.Errorf("want an emptyDir at /tmp, mounts %v", c.VolumeMounts)
	}

	checkEnv(t, m, c, pod)
	checkServices(t, m)
	checkIngress(t, m)
	checkNetworkPolicy(t, m)
	checkTestPod(t, m)
	for _, sa := range m.ServiceAccounts {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s must not automount its token", sa.Name)
		}
	}

	// DATA_DIR is a mounted volume.
	dataDir := settings(t, m)["DATA_DIR"]
	if dataDir == "" {
		t.Errorf("DATA_DIR not set")
	} else if _, ok := mounts[dataDir]; !ok {
		t.Errorf("nothing mounted at DATA_DIR %q, mounts %v", dataDir, c.VolumeMounts)
	}
}

func checkProbe(t *testing.T, name string, p *corev1.Probe, wantPath string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe missing or not httpGet: %+v", name, p)
		return
	}
	if p.HTTPGet.Path != wantPath || p.HTTPGet.Port.String() != "ops" {
		t.Errorf("%s probe = %s on port %s, want %s on port ops", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), wantPath)
	}
}

func volume(t *testing.T, pod corev1.PodTemplateSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{Name: name}
}

func checkEnv(t *testing.T, m manifests, c corev1.Container, pod corev1.PodTemplateSpec) {
	t.Helper()
	for _, e := range c.Env {
		if !knownSetting(e.Name) {
			t.Errorf("env %s is not a setting of the binary nor OTEL_*", e.Name)
		}
		if e.ValueFrom == nil && e.Value == "" {
			t.Errorf("env %s rendered empty: it would override the binary's default", e.Name)
		}
		if slices.Contains(secretSettings, e.Name) {
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("env %s must come from a secretKeyRef, got %+v", e.Name, e)
			}
		}
		if slices.Contains(fileSettings, e.Name) {
			checkSecretFile(t, c, pod, e)
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm := configMap(t, m, ef.ConfigMapRef.Name)
		for k, v := range cm.Data {
			if !knownSetting(k) {
				t.Errorf("ConfigMap %s key %s is not a setting of the binary nor OTEL_*", cm.Name, k)
			}
			if slices.Contains(secretSettings, k) || slices.Contains(fileSettings, k) {
				t.Errorf("ConfigMap %s holds %s, which belongs in a Secret", cm.Name, k)
			}
			if v == "" {
				t.Errorf("ConfigMap %s key %s is empty: it would override the binary's default", cm.Name, k)
			}
		}
	}
	for _, s := range m.Secrets {
		for k, v := range s.Data {
			if len(v) == 0 {
				t.Errorf("Secret %s key %s is empty", s.Name, k)
			}
		}
		if len(s.StringData) != 0 {
			t.Errorf("Secret %s uses stringData", s.Name)
		}
	}
}

// checkSecretFile: a NATS file setting is a path inside a read-only Secret volume.
func checkSecretFile(t *testing.T, c corev1.Container, pod corev1.PodTemplateSpec, e corev1.EnvVar) {
	t.Helper()
	if e.ValueFrom != nil || !path.IsAbs(e.Value) {
		t.Errorf("env %s must be a file path, got %+v", e.Name, e)
		return
	}
	for _, vm := range c.VolumeMounts {
		if path.Dir(e.Value) == vm.MountPath {
			if v := volume(t, pod, vm.Name); v.Secret == nil || !vm.ReadOnly {
				t.Errorf("env %s = %s: volume %s must be a read-only Secret volume", e.Name, e.Value, vm.Name)
			}
			return
		}
	}
	t.Errorf("env %s = %s: no volume mounted there", e.Name, e.Value)
}

func service(t *testing.T, m manifests, name string) corev1.Service {
	t.Helper()
	for _, s := range m.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %q", name)
	return corev1.Service{}
}

func checkServices(t *testing.T, m manifests) {
	t.Helper()
	in := service(t, m, fullname)
	if len(in.Spec.Ports) != 1 || in.Spec.Ports[0].Port != 80 || in.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("ingress Service ports = %+v, want 80 -> http only", in.Spec.Ports)
	}
	ops := service(t, m, fullname+"-ops")
	if ops.Spec.Type != corev1.ServiceTypeClusterIP || len(ops.Spec.Ports) != 1 || ops.Spec.Ports[0].TargetPort.String() != "ops" {
		t.Errorf("ops Service = %s %+v, want ClusterIP -> ops only", ops.Spec.Type, ops.Spec.Ports)
	}
}

func checkIngress(t *testing.T, m manifests) {
	t.Helper()
	in := service(t, m, fullname)
	for _, ing := range m.Ingresses {
		if ing.Spec.DefaultBackend != nil {
			t.Errorf("Ingress %s has a default backend: only the public paths may be routed", ing.Name)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if !slices.Contains(publicPaths, p.Path) {
					t.Errorf("Ingress routes %q, want only %v", p.Path, publicPaths)
				}
				b := p.Backend.Service
				if b == nil || b.Name != in.Name || strings.HasSuffix(b.Name, "-ops") {
					t.Errorf("Ingress path %s backend %+v, want Service %s", p.Path, b, in.Name)
					continue
				}
				if b.Port.Name != "" || b.Port.Number != in.Spec.Ports[0].Port {
					t.Errorf("Ingress path %s port %+v, want %d (http)", p.Path, b.Port, in.Spec.Ports[0].Port)
				}
			}
		}
	}
}

func checkNetworkPolicy(t *testing.T, m manifests) {
	t.Helper()
	for _, np := range m.NetworkPolicies {
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if p.Port != nil && p.Port.String() == "ops" && len(r.From) == 0 {
					t.Errorf("NetworkPolicy %s opens the ops port to everyone", np.Name)
				}
			}
		}
		if !slices.Contains(np.Spec.PolicyTypes, "Egress") || len(np.Spec.Egress) == 0 {
			t.Errorf("NetworkPolicy %s does not restrict egress", np.Name)
		}
	}
}

func checkTestPod(t *testing.T, m manifests) {
	t.Helper()
	if len(m.Pods) != 1 {
		t.Errorf("want 1 helm test Pod, got %d", len(m.Pods))
		return
	}
	p := m.Pods[0]
	if p.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("test Pod %s is not a helm test hook", p.Name)
	}
	if cmd := strings.Join(p.Spec.Containers[0].Command, " "); !strings.Contains(cmd, fullname+"-ops") || !strings.Contains(cmd, "/readyz") {
		t.Errorf("test Pod does not check /readyz on the ops Service: %s", cmd)
	}
}
