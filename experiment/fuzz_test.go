package experiment

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadBytes feeds arbitrary bytes to the experiment loader next to a
// real scenario file: loading, validating against the scenario's agents,
// and recording the resolved config must never panic.
func FuzzLoadBytes(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "experiments", "*.yaml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\nscenario: s.yaml\nevaluation: {mode: bootstrap, num_samples: 2000000000}\n"))
	f.Add([]byte("name: x\nscenario: s.yaml\nllm: {model: 'openai:m', base_url: 'https://u:secret@h/v1'}\n"))
	scn, err := os.ReadFile(filepath.Join("..", "testdata", "scenarios", "exp1.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		// The seeds name ../scenarios/exp1.yaml; the hand-written ones s.yaml.
		for _, p := range []string{filepath.Join(dir, "s.yaml"), filepath.Join(dir, "scenarios", "exp1.yaml")} {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, scn, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sub := filepath.Join(dir, "experiments")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := LoadBytes(filepath.Join(sub, "e.yaml"), data, LoadOptions{})
		if err != nil {
			if cfg != nil {
				t.Fatal("LoadBytes returned a config with an error")
			}
			return
		}
		if err := cfg.Validate([]string{"BANK_A", "BANK_B"}); err != nil {
			return
		}
		_ = cfg.ResolvedJSON()
	})
}
