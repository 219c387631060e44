package bus_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The compose file parses, runs 3 NATS nodes, a persister and runners, and
// every file it mounts exists; the systemd units start binaries this module
// builds.
func TestDeployFiles(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "persister", "runner"} {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("compose: no service %s", name)
		}
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./nats/") {
				if _, err := os.Stat(filepath.Join("..", "deploy", src)); err != nil {
					t.Errorf("compose service %s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	if cmd := c.Services["persister"].Command; len(cmd) == 0 || cmd[0] != "persister" {
		t.Errorf("compose persister command %v", cmd)
	}
	for unit, bin := range map[string]string{"simcash-persister.service": "persister", "simcash-runner@.service": "runner", "simcash-worker@.service": "runner"} {
		b, err := os.ReadFile(filepath.Join("..", "deploy", "systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ExecStart=/usr/local/bin/"+bin+" ") {
			t.Errorf("%s: no ExecStart of /usr/local/bin/%s", unit, bin)
		}
		if _, err := os.Stat(filepath.Join("..", "cmd", bin)); err != nil {
			t.Errorf("%s starts %s, which this module does not build: %v", unit, bin, err)
		}
	}
}
