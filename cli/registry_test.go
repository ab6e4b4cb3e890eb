package cli

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/kube"
)

func TestRegistryFlags(t *testing.T) {
	var none registryFlags
	if m, err := none.mixer(zap.NewNop(), time.Millisecond); m != nil || err != nil {
		t.Fatalf("without --registry: %v, %v; want no mixer", m, err)
	}
	bad := registryFlags{urls: []string{"zookeeper://127.0.0.1:2181", "nacos://127.0.0.1:8848"}}
	if _, err := bad.mixer(zap.NewNop(), time.Millisecond); err == nil || !strings.Contains(err.Error(), "--registry") {
		t.Fatalf("nacos:// accepted (err %v)", err)
	}
	two := registryFlags{urls: []string{"zookeeper://127.0.0.1:2181?port=20880", "etcd://127.0.0.1:2379", "zookeeper://127.0.0.1:2181?port=20880"}}
	m, err := two.mixer(zap.NewNop(), time.Millisecond)
	if err != nil || len(m.Sources) != 2 || m.ListenPorts["zookeeper://127.0.0.1:2181?port=20880"] != 20880 {
		t.Fatalf("two registries (one repeated): %+v, %v", m, err)
	}
	// The Kubernetes source's status and the merge share one mixer.
	if s, err := two.status(zap.NewNop(), time.Millisecond); err != nil || s != kube.RegistryStatus(m) {
		t.Fatalf("status: %v, %v; want the mixer addPipeline merges with", s, err)
	}
	if s, err := none.status(zap.NewNop(), time.Millisecond); s != nil || err != nil {
		t.Fatalf("status without --registry: %v, %v; want none", s, err)
	}
}
