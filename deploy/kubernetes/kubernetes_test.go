package kubernetes

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
)

// kustomizations are every directory with a kustomization.yaml; each is
// built and checked on its own.
var kustomizations = []string{"base", "base/ingress", "base/egress", "overlays/hk", "overlays/us-west"}

// minDrainMargin is what terminationGracePeriodSeconds must leave after the
// preStop sleep and drain_timeout: the leave, the log, the exit.
const minDrainMargin = 10 * time.Second

// bundle is one kustomization's output, decoded.
type bundle struct {
	dir          string
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	pdbs         []*policyv1.PodDisruptionBudget
}

// TestKustomizationsBuild checks that the list above is every kustomization
// in the tree, so a new overlay is never left unchecked.
func TestKustomizationsBuild(t *testing.T) {
	var found []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			found = append(found, filepath.Dir(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	want := slices.Sorted(slices.Values(kustomizations))
	if !slices.Equal(found, want) {
		t.Fatalf("kustomizations on disk %v, checked %v: add the new one to the list", found, want)
	}
	for _, dir := range kustomizations {
		build(t, dir)
	}
}

// TestManifests checks every workload of every kustomization.
func TestManifests(t *testing.T) {
	secrets := exampleSecrets(t)
	all := make(map[string]*bundle)
	for _, dir := range kustomizations {
		all[dir] = build(t, dir)
	}
	for _, dir := range kustomizations {
		b := all[dir]
		t.Run(dir, func(t *testing.T) {
			if len(b.statefulSets)+len(b.deployments) == 0 {
				t.Fatal("no workload")
			}
			for _, ss := range b.statefulSets {
				t.Run(ss.Name, func(t *testing.T) {
					checkStatefulSet(t, b, ss)
					checkPDB(t, b, ss.Spec.Template.Labels)
					checkPod(t, b, all, secrets, podNames(ss), &ss.Spec.Template)
				})
			}
			for _, d := range b.deployments {
				t.Fatalf("Deployment %s: llmesh nodes need stable names (their certificates name them): use a StatefulSet", d.Name)
			}
			for _, svc := range b.services {
				checkService(t, b, svc)
			}
		})
	}
}

// TestExampleSecretsAreRefused checks that the committed Secret template
// holds nothing a node would start with.
func TestExampleSecretsAreRefused(t *testing.T) {
	secrets := exampleSecrets(t)
	data, err := os.ReadFile("overlays/hk/config/ingress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tls := issueCerts(t, role.Ingress, "", "hk-llmesh-ingress-0")
	env := map[string]string{
		"POD_NAME":            "hk-llmesh-ingress-0",
		"POD_IP":              "127.0.0.1",
		"LLMESH_TLS_DIR":      tls,
		"LLMESH_GOSSIP_KEY":   secrets["llmesh-mesh"]["gossip-key"],
		"LLMESH_TUNNEL_TOKEN": secrets["llmesh-mesh"]["tunnel-token"],
	}
	_, err = config.Parse(data, "ingress.yaml", role.Ingress, lookup(env))
	if err == nil {
		t.Fatal("the config parsed with the template's placeholder secrets")
	}
	for _, key := range []string{"gossip.key", "tunnel.token"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("placeholder %s not refused: %v", key, err)
		}
	}
	for key, v := range secrets["llmesh-tls"] {
		if strings.Contains(v, "BEGIN") {
			t.Errorf("llmesh-tls %s holds PEM data: the template must hold placeholders only", key)
		}
	}
}

// build runs kustomize on dir and decodes every object strictly.
func build(t *testing.T, dir string) *bundle {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b := &bundle{dir: dir, services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("%s: %s %s", dir, r.GetKind(), r.GetName())
		switch r.GetKind() {
		case "StatefulSet":
			b.statefulSets = append(b.statefulSets, decode[appsv1.StatefulSet](t, id, y, "apps/v1"))
		case "Deployment":
			b.deployments = append(b.deployments, decode[appsv1.Deployment](t, id, y, "apps/v1"))
		case "Service":
			s := decode[corev1.Service](t, id, y, "v1")
			b.services[s.Name] = s
		case "ConfigMap":
			c := decode[corev1.ConfigMap](t, id, y, "v1")
			b.configMaps[c.Name] = c
		case "PodDisruptionBudget":
			b.pdbs = append(b.pdbs, decode[policyv1.PodDisruptionBudget](t, id, y, "policy/v1"))
		default:
			t.Fatalf("%s: a kind this test does not decode: add it", id)
		}
	}
	return b
}

// decode unmarshals y into a T, refusing unknown and duplicate fields.
func decode[T any](t *testing.T, id string, y []byte, apiVersion string) *T {
	t.Helper()
	obj := new(T)
	if err := yaml.UnmarshalStrict(y, obj); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(y, &tm); err != nil || tm.APIVersion != apiVersion {
		t.Fatalf("%s: apiVersion %q, want %q (%v)", id, tm.APIVersion, apiVersion, err)
	}
	return obj
}

// exampleSecrets decodes secrets.example.yaml: name -> key -> value.
func exampleSecrets(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile("secrets.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]string)
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		s := decode[corev1.Secret](t, fmt.Sprintf("secrets.example.yaml document %d", i), doc, "v1")
		out[s.Name] = s.StringData
	}
	return out
}

func checkStatefulSet(t *testing.T, b *bundle, ss *appsv1.StatefulSet) {
	svc := b.services[ss.Spec.ServiceName]
	if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("serviceName %q is not a headless Service of the build", ss.Spec.ServiceName)
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas < 2 {
		t.Errorf("replicas %v: run two or more, so a drain or a crash leaves one", ss.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v", ss.Spec.Selector, ss.Spec.Template.Labels)
	}
}

func checkPDB(t *testing.T, b *bundle, podLabels map[string]string) {
	for _, p := range b.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(podLabels)) {
			if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
				t.Errorf("PodDisruptionBudget %s sets no budget", p.Name)
			}
			return
		}
	}
	t.Errorf("no PodDisruptionBudget selects pods labelled %v", podLabels)
}

// checkService checks that a Service selects a workload of the build and
// targets ports its pods name.
func checkService(t *testing.T, b *bundle, svc *corev1.Service) {
	var pod *corev1.PodTemplateSpec
	for _, ss := range b.statefulSets {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) {
			pod = &ss.Spec.Template
		}
	}
	if pod == nil {
		t.Errorf("Service %s selects no pod of the build", svc.Name)
		return
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := containerPort(pod.Spec.Containers[0], p.TargetPort.String(), p.Protocol); !ok {
			t.Errorf("Service %s port %s targets %s/%s, which the pod does not declare", svc.Name, p.Name, p.TargetPort.String(), p.Protocol)
		}
	}
}

// podNames returns the names a StatefulSet gives its pods.
func podNames(ss *appsv1.StatefulSet) []string {
	n := 1
	if ss.Spec.Replicas != nil {
		n = int(*ss.Spec.Replicas)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = ss.Name + "-" + strconv.Itoa(i)
	}
	return names
}

// checkPod checks a pod template against the invariants of a node, and
// parses its llmesh config with the environment each of its pods gets.
func checkPod(t *testing.T, b *bundle, all map[string]*bundle, secrets map[string]map[string]string, pods []string, tmpl *corev1.PodTemplateSpec) {
	spec := tmpl.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	checkSecurity(t, spec, c)
	checkResources(t, c)

	if len(c.Args) < 3 || c.Args[1] != "-config" {
		t.Fatalf("args %q: want [ingress|egress -config FILE]", c.Args)
	}
	r := role.Role(c.Args[0])
	if !r.Valid() {
		t.Fatalf("args[0] %q is not a role", c.Args[0])
	}
	data := configFile(t, b, spec, c, c.Args[2])

	// Parse the config as each pod would see it, with real certificates.
	cfg := &config.Runtime{}
	for _, pod := range pods {
		env := podEnv(t, c, secrets, pod)
		tlsDir := env["LLMESH_TLS_DIR"]
		if m := mountAt(c, tlsDir); m == nil || secretVolume(spec, m.Name) != "llmesh-tls" {
			t.Errorf("LLMESH_TLS_DIR %q is not where the llmesh-tls Secret is mounted", tlsDir)
		}
		env["LLMESH_TLS_DIR"] = issueCerts(t, r, hintOf(t, data, r), pod)
		var err error
		cfg, err = config.Parse(data, c.Args[2], r, lookup(env))
		if err != nil {
			t.Fatalf("pod %s: the llmesh config does not parse: %v", pod, err)
		}
		if cfg.Node.Name != pod {
			t.Errorf("node.name %q, want the pod name %q (its certificate names it)", cfg.Node.Name, pod)
		}
	}

	checkPorts(t, c, cfg)
	checkProbes(t, c, cfg)
	checkDrain(t, spec, c, cfg)
	checkSeeds(t, b, all, cfg)
}

func checkSecurity(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: want runAsNonRoot and a non-zero runAsUser")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext: want seccompProfile RuntimeDefault")
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Error("container securityContext missing")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container: want allowPrivilegeEscalation: false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container: want readOnlyRootFilesystem: true")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Error("container: want capabilities drop [ALL], add none")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken: want false (a node never calls the API server)")
	}
}

func checkResources(t *testing.T, c corev1.Container) {
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
		t.Fatalf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
	}
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		// GOMEMLIMIT's suffixes are KiB, MiB, GiB: Kubernetes' Ki, Mi, Gi.
		q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		if err != nil || q.Cmp(*lim.Memory()) >= 0 {
			t.Errorf("GOMEMLIMIT %q must be below the memory limit %s (%v)", e.Value, lim.Memory(), err)
		}
		return
	}
	t.Error("no GOMEMLIMIT: the Go heap would not know the memory limit")
}

// checkPorts checks that every address the config listens on is a port
// the container declares (gossip on TCP and UDP).
func checkPorts(t *testing.T, c corev1.Container, cfg *config.Runtime) {
	want := map[string]string{"http.listen": cfg.HTTP.Listen, "admin.listen": cfg.Admin.Listen, "gossip.bind": cfg.Gossip.Bind}
	if cfg.Role == role.Egress {
		want["tunnel.listen"] = cfg.Tunnel.Listen
	}
	for key, addr := range want {
		if addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s %q: %v", key, addr, err)
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s %q: a pod must listen on every interface, or its pod IP is not served", key, addr)
		}
		protos := []corev1.Protocol{corev1.ProtocolTCP}
		if key == "gossip.bind" {
			protos = append(protos, corev1.ProtocolUDP)
		}
		for _, proto := range protos {
			if _, ok := containerPort(c, port, proto); !ok {
				t.Errorf("%s %q: the container declares no %s port %s", key, addr, proto, port)
			}
		}
	}
	for key, adv := range map[string]string{"gossip.advertise": cfg.Gossip.Advertise, "tunnel.advertise": cfg.Tunnel.Advertise} {
		if cfg.Role == role.Ingress && key == "tunnel.advertise" {
			continue
		}
		if host, _, _ := net.SplitHostPort(adv); host != "127.0.0.1" { // POD_IP in this test
			t.Errorf("%s %q: want ${POD_IP}:port", key, adv)
		}
	}
}

// checkProbes wants readiness and liveness on GET /health of the main
// listener (http.listen): what load balancers and the drain rely on.
func checkProbes(t *testing.T, c corev1.Container, cfg *config.Runtime) {
	_, httpPort, _ := net.SplitHostPort(cfg.HTTP.Listen)
	for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" {
			t.Errorf("%s: want httpGet /health", name)
			continue
		}
		port, ok := containerPort(c, p.HTTPGet.Port.String(), corev1.ProtocolTCP)
		if !ok || strconv.Itoa(int(port)) != httpPort {
			t.Errorf("%s: port %s is not http.listen %s", name, p.HTTPGet.Port.String(), cfg.HTTP.Listen)
		}
	}
}

// checkDrain wants a preStop sleep (endpoints are removed before SIGTERM
// closes the listener) and a grace period that covers it, drain_timeout
// and a margin: else the kubelet kills live streams.
func checkDrain(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg *config.Runtime) {
	var pre time.Duration
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("want a preStop sleep (the image has no shell)")
	} else {
		pre = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds unset (default 30 s)")
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if need := pre + cfg.DrainTimeout + minDrainMargin; grace < need {
		t.Errorf("terminationGracePeriodSeconds %v < preStop %v + drain_timeout %v + margin %v", grace, pre, cfg.DrainTimeout, minDrainMargin)
	}
}

// checkSeeds wants every gossip seed to be a headless Service that lists
// pods before they are ready: one of this build by its short name, or one
// of another overlay by its Multi-Cluster Services name
// (<svc>.<namespace>.svc.clusterset.local).
func checkSeeds(t *testing.T, b *bundle, all map[string]*bundle, cfg *config.Runtime) {
	if len(cfg.Gossip.Join) == 0 {
		t.Error("gossip.join is empty")
	}
	for _, seed := range cfg.Gossip.Join {
		host, port, err := net.SplitHostPort(seed)
		if err != nil {
			t.Errorf("seed %q: %v", seed, err)
			continue
		}
		var svc *corev1.Service
		switch name, rest, _ := strings.Cut(host, "."); rest {
		case "":
			svc = b.services[name]
			if svc == nil && strings.HasPrefix(b.dir, "base/") {
				svc = all["base"].services[name] // a part of base, seeded by the other part
			}
		case "llmesh.svc.clusterset.local":
			for dir, other := range all {
				if strings.HasPrefix(dir, "overlays/") && other != b && other.services[name] != nil {
					svc = other.services[name]
				}
			}
		default:
			t.Errorf("seed %q: want a Service of the build or <svc>.llmesh.svc.clusterset.local", seed)
			continue
		}
		switch {
		case svc == nil:
			t.Errorf("seed %q names no Service", seed)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses:
			t.Errorf("seed %q: want a headless Service with publishNotReadyAddresses", seed)
		default:
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
					return strconv.Itoa(int(p.Port)) == port && p.Protocol == proto
				}) {
					t.Errorf("seed %q: Service %s has no %s port %s", seed, svc.Name, proto, port)
				}
			}
		}
	}
}

// configFile returns the llmesh config the container reads at path, from
// the ConfigMap mounted there.
func configFile(t *testing.T, b *bundle, spec corev1.PodSpec, c corev1.Container, path string) []byte {
	t.Helper()
	m := mountAt(c, path)
	if m == nil || m.SubPath == "" {
		t.Fatalf("%s is not mounted from a ConfigMap key", path)
	}
	for _, v := range spec.Volumes {
		if v.Name == m.Name && v.ConfigMap != nil {
			cm := b.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("ConfigMap %s is not in the build", v.ConfigMap.Name)
			}
			data, ok := cm.Data[m.SubPath]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %s", cm.Name, m.SubPath)
			}
			return []byte(data)
		}
	}
	t.Fatalf("volume %s is not a ConfigMap", m.Name)
	return nil
}

// podEnv returns the container's environment as pod would see it: the
// downward API's name and IP (127.0.0.1 here), and test values for
// Secrets, each of which must be a key of the example Secrets.
func podEnv(t *testing.T, c corev1.Container, secrets map[string]map[string]string, pod string) map[string]string {
	t.Helper()
	env := make(map[string]string)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				env[e.Name] = pod
			case "status.podIP":
				env[e.Name] = "127.0.0.1"
			default:
				t.Fatalf("env %s: field %s not handled by this test", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := secrets[ref.Name][ref.Key]; !ok {
				t.Errorf("env %s: Secret %s key %s is not in secrets.example.yaml", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = testSecret(ref.Key)
		default:
			t.Fatalf("env %s: source not handled by this test", e.Name)
		}
	}
	return env
}

// testSecret returns a valid value for a key of llmesh-mesh.
func testSecret(key string) string {
	if key == "gossip-key" {
		k := make([]byte, 32)
		rand.Read(k)
		return base64.StdEncoding.EncodeToString(k)
	}
	return "test-token-" + key
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// hintOf reads node.hint from an egress config (its certificate names it).
func hintOf(t *testing.T, data []byte, r role.Role) string {
	if r != role.Egress {
		return ""
	}
	var c struct {
		Node struct{ Hint string } `json:"node"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c.Node.Hint
}

// issueCerts makes a CA and the certificate of node, as `certs init` and
// `certs issue` do, and returns the directory laid out like the llmesh-tls
// Secret: ca.pem, NAME.pem, NAME-key.pem. (pkg/meshtls rather than the
// command itself keeps the deploy module's dependencies to the few packages
// it imports.)
func issueCerts(t *testing.T, r role.Role, hint, name string) string {
	t.Helper()
	dir := t.TempDir()
	caCert, caKey, err := meshtls.NewCA("llmesh test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := meshtls.Issue(caCert, caKey, meshtls.Identity{Role: r, Hint: hint, Name: name}, nil, time.Hour)
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	for file, data := range map[string][]byte{"ca.pem": caCert, name + ".pem": cert, name + "-key.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mountAt(c corev1.Container, path string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if m.MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func secretVolume(spec corev1.PodSpec, name string) string {
	for _, v := range spec.Volumes {
		if v.Name == name && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	return ""
}

// containerPort finds a declared port by name or number.
func containerPort(c corev1.Container, nameOrNumber string, proto corev1.Protocol) (int32, bool) {
	for _, p := range c.Ports {
		if p.Protocol == proto && (p.Name == nameOrNumber || strconv.Itoa(int(p.ContainerPort)) == nameOrNumber) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}
