package bus_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"simcash/bus"
)

// The 3-node cluster of deploy/nats/ (moved to loopback ports) forms, holds
// the SIMCASH stream with 3 replicas, and keeps persisting everything while
// one node is shut down.
func TestDeployCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	ctx := testCtx(t, 60*time.Second)
	t.Setenv("SIMCASH_NATS_PASSWORD", "s3cret")
	routePorts := freePorts(t, 3)
	var servers []*server.Server
	var urls []string
	for i := range 3 {
		opts, err := server.ProcessConfigFile(filepath.Join("..", "deploy", "nats", fmt.Sprintf("nats-%d.conf", i+1)))
		if err != nil {
			t.Fatalf("deploy/nats/nats-%d.conf: %v", i+1, err)
		}
		if opts.Cluster.Name != "simcash" || len(opts.Routes) != 3 || !opts.JetStream || opts.MaxPayload != 8<<20 {
			t.Fatalf("nats-%d.conf: cluster %q, %d routes, jetstream %v, max payload %d", i+1, opts.Cluster.Name, len(opts.Routes), opts.JetStream, opts.MaxPayload)
		}
		// Same configuration, loopback ports and a temporary store.
		opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePorts[i]
		opts.StoreDir = t.TempDir()
		opts.NoLog, opts.NoSigs = true, true
		for j, r := range opts.Routes {
			opts.Routes[j] = &url.URL{Scheme: r.Scheme, Host: fmt.Sprintf("127.0.0.1:%d", routePorts[j])}
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-%d did not start", i+1)
		}
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	cfg := bus.Config{URL: strings.Join(urls, ","), User: "simcash", Password: "s3cret", StreamReplicas: 3}
	if _, err := bus.Connect(ctx, bus.Config{URL: urls[0], ConnectTimeout: 2 * time.Second}); err == nil {
		t.Fatal("connected without the password")
	}
	nc, err := bus.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := bus.NewJetStream(nc)
	// The meta leader is elected a moment after the routes connect.
	// Each attempt has its own deadline: a request sent before the meta
	// leader exists may never be answered, and must not use up the test's.
	var lastErr error
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, lastErr = bus.EnsureStream(actx, js, cfg.StreamReplicas)
		cancel()
		if lastErr == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for the R3 stream (last error: %v)", lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p := startPersister(t, ctx, js, dbIn(t), bus.PersisterOptions{MaxWait: 10 * time.Millisecond})
	pub := bus.NewPublisher(js, bus.WithAttemptTimeout(2*time.Second))
	if err := pub.PublishBatch(ctx, experiment("cluster-1", 3, 200, 500)); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, p.st, wantCounts(1, 3, 200))
	// Lose the node this client uses: R3 keeps a quorum of two, the client
	// reconnects to another node, and publishing and consuming go on.
	victim := -1
	for i, u := range urls {
		if u == nc.ConnectedUrl() {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("connected to %s, not one of %v", nc.ConnectedUrl(), urls)
	}
	servers[victim].Shutdown()
	if err := pub.PublishBatch(ctx, experiment("cluster-2", 3, 200, 500)); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, p.st, wantCounts(2, 3, 200))
	if nc.Stats().Reconnects == 0 {
		t.Fatal("the client never reconnected: the node loss did not happen")
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	n := query(t, p.path, `SELECT count(*) FROM events`)[0][0].(int64)
	if n != 400 {
		t.Fatalf("%d events, want 400", n)
	}
	if d := query(t, p.path, `SELECT count(*) FROM dead_letters`)[0][0].(int64); d != 0 {
		t.Fatalf("%d dead letters", d)
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
