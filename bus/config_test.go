package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"simcash/bus"
)

func TestLoadConfig(t *testing.T) {
	t.Setenv("SIMCASH_NATS_URL", "nats://a:4222,nats://b:4222")
	t.Setenv("SIMCASH_NATS_USER", "u")
	t.Setenv("SIMCASH_NATS_PASSWORD", "p")
	t.Setenv("SIMCASH_NATS_TLS_CA", "/ca.pem")
	t.Setenv("SIMCASH_STREAM_REPLICAS", "3")
	c, err := bus.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := bus.Config{URL: "nats://a:4222,nats://b:4222", User: "u", Password: "p", TLSCA: "/ca.pem",
		StreamReplicas: 3, ConnectTimeout: 30 * time.Second}
	if c != want {
		t.Fatalf("LoadConfig = %+v, want %+v", c, want)
	}

	for env, wantErr := range map[string]string{
		"SIMCASH_NATS_TLS_CERT":   "SIMCASH_NATS_TLS_KEY",
		"SIMCASH_NATS_TOKEN":      "only one",
		"SIMCASH_STREAM_REPLICAS": "between 1 and 5",
	} {
		t.Run(env, func(t *testing.T) {
			val := "x"
			if env == "SIMCASH_STREAM_REPLICAS" {
				val = "7"
			}
			t.Setenv(env, val)
			if _, err := bus.LoadConfig(); err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s=%s: error %v, want one mentioning %q", env, val, err, wantErr)
			}
		})
	}
}

// Connect gives up after ConnectTimeout with a message naming the URL,
// without the password in it.
func TestConnectUnreachable(t *testing.T) {
	ports := freePorts(t, 1)
	url := fmt.Sprintf("nats://u:secret@127.0.0.1:%d", ports[0])
	_, err := bus.Connect(context.Background(), bus.Config{URL: url, ConnectTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("error %q: want the address without the password", err)
	}
}
