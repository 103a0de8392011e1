// Package tests renders the pipedrive-gateway Helm chart with `helm template` and checks
// the manifests: strictly decoded into the Kubernetes types, then held to the rules the
// gateway's settings, routes and probes (the main README) and its safe defaults need.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = ".."
	release   = "pg"
	namespace = "gw"
	fullname  = "pg-pipedrive-gateway"
	// kubeVersion is the oldest Kubernetes the chart supports (Chart.yaml kubeVersion);
	// helm template assumes 1.20 unless told.
	kubeVersion = "1.25.0"
)

// helmBinary finds helm ($HELM, else PATH). Without it the tests skip on a developer's
// machine but fail in CI, where a skipped chart test would hide a broken chart.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	if os.Getenv("CI") != "" {
		t.Fatal("helm not found on PATH and $HELM is empty, but CI is set: the chart tests must run in CI (scripts/check-chart.sh installs helm)")
	}
	t.Skip("skipping chart tests: helm not found on PATH and $HELM is empty (run scripts/check-chart.sh, which installs it)")
	return ""
}

// helmTemplate runs `helm template` with the given values files and --set flags.
func helmTemplate(t *testing.T, valuesFiles []string, sets ...string) (stdout, stderr string, err error) {
	t.Helper()
	helm := helmBinary(t)
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// manifests holds one rendering, by kind.
type manifests struct {
	Deployments     []appsv1.Deployment
	StatefulSets    []appsv1.StatefulSet
	Services        []corev1.Service
	Secrets         []corev1.Secret
	ConfigMaps      []corev1.ConfigMap
	ServiceAccounts []corev1.ServiceAccount
	Pods            []corev1.Pod
	Ingresses       []networkingv1.Ingress
	NetworkPolicies []networkingv1.NetworkPolicy
	HPAs            []autoscalingv2.HorizontalPodAutoscaler
	PDBs            []policyv1.PodDisruptionBudget
	ServiceMonitors []serviceMonitor
	PrometheusRules []prometheusRule
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart uses;
// decoding is strict, so a field the chart renders must be listed here.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port              string           `json:"port"`
			Path              string           `json:"path"`
			Scheme            string           `json:"scheme"`
			Interval          string           `json:"interval"`
			ScrapeTimeout     string           `json:"scrapeTimeout"`
			Relabelings       []map[string]any `json:"relabelings"`
			MetricRelabelings []map[string]any `json:"metricRelabelings"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule the chart uses.
type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Record      string            `json:"record"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeAll splits a `helm template` stream and decodes every document strictly into
// the type its apiVersion/kind names. Unknown kinds and unknown fields are errors.
func decodeAll(t *testing.T, rendered string) manifests {
	t.Helper()
	var m manifests
	for i, doc := range docSeparator.Split(rendered, -1) {
		if isEmptyDoc(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d is not YAML: %v\n%s", i, err, doc)
		}
		var err error
		switch gvk := tm.APIVersion + "/" + tm.Kind; gvk {
		case "apps/v1/Deployment":
			err = appendStrict(doc, &m.Deployments)
		case "apps/v1/StatefulSet":
			err = appendStrict(doc, &m.StatefulSets)
		case "v1/Service":
			err = appendStrict(doc, &m.Services)
		case "v1/Secret":
			err = appendStrict(doc, &m.Secrets)
		case "v1/ConfigMap":
			err = appendStrict(doc, &m.ConfigMaps)
		case "v1/ServiceAccount":
			err = appendStrict(doc, &m.ServiceAccounts)
		case "v1/Pod":
			err = appendStrict(doc, &m.Pods)
		case "networking.k8s.io/v1/Ingress":
			err = appendStrict(doc, &m.Ingresses)
		case "networking.k8s.io/v1/NetworkPolicy":
			err = appendStrict(doc, &m.NetworkPolicies)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			err = appendStrict(doc, &m.HPAs)
		case "policy/v1/PodDisruptionBudget":
			err = appendStrict(doc, &m.PDBs)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			err = appendStrict(doc, &m.ServiceMonitors)
		case "monitoring.coreos.com/v1/PrometheusRule":
			err = appendStrict(doc, &m.PrometheusRules)
		default:
			t.Fatalf("document %d: unexpected kind %q; add it to decodeAll and its checks", i, gvk)
		}
		if err != nil {
			t.Fatalf("document %d (%s %s) does not decode strictly: %v\n%s", i, tm.APIVersion, tm.Kind, err, doc)
		}
	}
	return m
}

func appendStrict[T any](doc string, list *[]T) error {
	var v T
	if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

func isEmptyDoc(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// render renders a values file of the chart's ci/ folder (or any path) and decodes it.
func render(t *testing.T, valuesFile string, sets ...string) manifests {
	t.Helper()
	out, stderr, err := helmTemplate(t, []string{valuesFile}, sets...)
	if err != nil {
		t.Fatalf("helm template -f %s %v: %v\n%s", valuesFile, sets, err, stderr)
	}
	return decodeAll(t, out)
}

func ciValues(name string) string { return filepath.Join(chartDir, "ci", name) }

func (m manifests) String() string {
	return fmt.Sprintf("%d Deployments, %d StatefulSets, %d Services", len(m.Deployments), len(m.StatefulSets), len(m.Services))
}
