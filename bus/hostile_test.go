package bus_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

// persisterPeakRSS is the stated bound on the persister's peak resident
// memory while it works through oversized and junk messages: DuckDB's
// memory_limit (512 MB) would be reached long before it with unbounded
// batches of 7 MiB records, which drove the persister to 2-3 GB.
const persisterPeakRSS = 400 << 20

// TestLargeRecordsDoNotWedgePersister publishes what once drove the
// persister out of memory and invalidated its database (issue 8, break 1):
// 100 valid 7 MiB records (under the server's 8 MiB payload limit) and 500
// junk messages of 1 MiB. The persister, a real process on a NATS server
// hosted by the test, must dead-letter all of them with a bounded prefix,
// store a small record published after them within a deadline, and keep
// its peak RSS under persisterPeakRSS.
func TestLargeRecordsDoNotWedgePersister(t *testing.T) {
	bin := buildPersister(t)
	ctx := testCtx(t, 10*time.Minute)
	srv, _, js := startServer(t, ctx, t.TempDir(), "127.0.0.1:0")
	db := dbIn(t)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--db", db, "--nats-url", srv.URL, "--log-level", "warn")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	const big, junk, valid = 100, 500, 300
	pad := strings.Repeat("x", 7<<20)
	for i := range big {
		// A well-formed record of 7 MiB, as a publisher not using
		// schema.Encode (which cuts long texts to fit) could send.
		raw := fmt.Sprintf(`{"v":1,"kind":"event","experiment_id":"big-1","key":"%d","data":{"seq":%d,"iteration":1,"event_type":"llm_interaction","data":{"pad":%q},"timestamp":"2026-01-02T03:04:05Z"}}`, i, i, pad)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "simcash.big-1.event", Data: []byte(raw)}); err != nil {
			t.Fatalf("publish 7 MiB record %d: %v", i, err)
		}
	}
	// Valid records just under the limit (long prompts cut to fit) are
	// stored whole, their texts in blob files: inline, 300 of them took
	// the persister to 1.4-1.6 GB (DuckDB keeps a row group's appended
	// strings in memory).
	for i := range valid {
		ev := event("valid-1", int64(i), 2<<20)
		ev.Data = json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":"%d%s"}`, i, i, pad[:2<<20])) // distinct texts, each its own blob
		m, err := bus.NewMsg(ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) < 1<<19 {
			t.Fatalf("a valid record of %d bytes; want one near the limit", len(m.Data))
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish valid record %d: %v", i, err)
		}
	}
	for i := range junk {
		raw := make([]byte, 1<<20)
		_, _ = rand.Read(raw)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "simcash.junk-1.event", Data: raw}); err != nil {
			t.Fatalf("publish junk %d: %v", i, err)
		}
	}
	small, err := bus.NewMsg(event("small-1", 1, 300))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, small)
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	durable := "persister-" + bus.DBToken(db)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := js.Consumer(ctx, bus.StreamName, durable)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= ack.Sequence {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("persister exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the small record was not committed within 5 minutes of being published; stderr:\n%s", stderr.String())
		}
	}
	took := time.Since(published)
	hwm, err := procKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("small record committed %v after publication (behind %d x 7 MiB, %d x 1 MiB junk, %d valid records of 1 MiB); persister peak RSS %.0f MB",
		took.Round(time.Millisecond), big, junk, valid, hwm/1024)
	if hwm*1024 > persisterPeakRSS {
		t.Errorf("persister peak RSS %.0f MB, over the %d MB bound", hwm/1024, persisterPeakRSS>>20)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("persister on SIGTERM: %v\n%s", err, stderr.String())
	}
	exited <- nil

	if n := query(t, db, `SELECT count(*) FROM events WHERE experiment_id = 'small-1'`)[0][0].(int64); n != 1 {
		t.Fatalf("small record stored %d times, want once", n)
	}
	if n := query(t, db, `SELECT count(*) FROM events WHERE experiment_id = 'valid-1'`)[0][0].(int64); n != valid {
		t.Fatalf("%d valid large records stored, want %d", n, valid)
	}
	if files, _ := filepath.Glob(filepath.Join(store.BlobDir(db), "*.json.gz")); len(files) != valid {
		t.Errorf("%d blob files for %d distinct long texts", len(files), valid)
	}
	rows := query(t, db, `SELECT count(*), max(octet_length(raw)), min(raw_bytes), count(*) FILTER (reason LIKE '%limit%') FROM dead_letters`)
	n, maxKept, minSize, overSize := rows[0][0].(int64), rows[0][1].(int64), rows[0][2].(int64), rows[0][3].(int64)
	if n != big+junk || maxKept > store.DeadLetterPrefix || minSize < 1<<20 {
		t.Errorf("dead letters: %d (want %d), largest kept prefix %d bytes (at most %d), smallest size %d", n, big+junk, maxKept, store.DeadLetterPrefix, minSize)
	}
	if !strings.Contains(stderr.String(), "dead letters stored") {
		t.Errorf("no warning about dead letters; stderr:\n%s", stderr.String())
	}
	if lines := strings.Count(stderr.String(), "\n"); lines > 200 {
		t.Errorf("%d log lines for %d dead letters: want one per batch", lines, big+junk)
	}
	if overSize != big {
		t.Errorf("%v dead letters name the size limit, want the %d records over schema.MaxRecordBytes", overSize, big)
	}
}

// A persister hosting NATS (issue 8, break 2) refuses clients without its
// token, writes the token with mode 0600 next to the database, and lets a
// local client that names only the URL in (Connect finds the token); a
// listen address beyond loopback without TLS, or a malformed one, is a
// usage error.
func TestHostedNATSRequiresCredentials(t *testing.T) {
	bin := buildPersister(t)
	ctx := testCtx(t, time.Minute)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // where LocalTokenFile goes, for this test and its child
	db := dbIn(t)
	cmd := exec.Command(bin, "--db", db, "--listen", "127.0.0.1:0")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var url string
	waitFor(t, ctx, func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if u, ok := strings.CutPrefix(strings.TrimSpace(l), "export SIMCASH_NATS_URL="); ok {
				url = u
			}
		}
		return url != ""
	}, "the persister's URL (stderr %s)", &stderr)
	fi, err := os.Stat(bus.TokenFile(db))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file next to the database: %v, mode %v; want mode 0600", err, fi.Mode())
	}
	token, _ := os.ReadFile(bus.TokenFile(db))

	// A raw client without credentials, or with a wrong token, is refused.
	for _, opts := range [][]nats.Option{nil, {nats.Token("guess")}} {
		if nc, err := nats.Connect(url, opts...); err == nil {
			nc.Close()
			t.Errorf("a client with options %v connected to the hosted server", opts)
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("refusal %q does not say authorization", err)
		}
	}
	// With the token it may; bus.Connect finds it by itself.
	nc, err := nats.Connect(url, nats.Token(strings.TrimSpace(string(token))))
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	nc.Close()
	nc, err = bus.Connect(ctx, bus.Config{URL: url})
	if err != nil {
		t.Fatalf("bus.Connect with the URL only: %v", err)
	}
	nc.Close()

	for _, tc := range []struct{ listen, want string }{
		{"0.0.0.0:0", "TLS"},
		{"nonsense", "host:port"},
		{"127.0.0.1:99999", "port"},
	} {
		c := exec.Command(bin, "--db", dbIn(t), "--listen", tc.listen)
		b, err := c.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(b), tc.want) || strings.Count(string(b), "\n") != 1 {
			t.Errorf("--listen %s: %v, output %q; want exit 2 and one line with %q", tc.listen, err, b, tc.want)
		}
	}
}

// A stream at its byte limit (issue 8, break 3) refuses new records rather
// than dropping unstored ones; a publisher fails within its store timeout
// with the server's reason, and publishes again once space returns,
// without any restart.
func TestStreamAtItsLimitFailsLoudly(t *testing.T) {
	t.Setenv("SIMCASH_STREAM_MAX_BYTES", "200000")
	ctx := testCtx(t, time.Minute)
	_, _, js := startServer(t, ctx, t.TempDir(), "")
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; cfg.MaxBytes != 200000 || cfg.MaxAge != 720*time.Hour {
		t.Fatalf("stream limits %d bytes, %s; want 200000 and 720h", cfg.MaxBytes, cfg.MaxAge)
	}
	const timeout = 2 * time.Second
	pub := bus.NewPublisher(js, bus.WithStoreTimeout(timeout), bus.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	var failed error
	start := time.Now()
	for i := range 100 {
		start = time.Now()
		if failed = pub.Publish(ctx, event("full-1", int64(i), 10_000)); failed != nil {
			break
		}
	}
	took := time.Since(start)
	if !errors.Is(failed, bus.ErrCannotStore) || !strings.Contains(failed.Error(), "maximum bytes") {
		t.Fatalf("publishing into a full stream: %v; want ErrCannotStore with the server's reason", failed)
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("the failing publish took %v, want about the %v store timeout", took, timeout)
	}
	t.Logf("full stream: publish failed after %v: %v", took.Round(time.Millisecond), failed)
	batch := bus.NewPublisher(js, bus.WithStoreTimeout(timeout), bus.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err := batch.PublishBatch(ctx, []schema.Record{event("full-1", 1000, 10_000)}); !errors.Is(err, bus.ErrCannotStore) {
		t.Errorf("PublishBatch into a full stream: %v, want ErrCannotStore", err)
	}
	// Space returns (a persister stored and an operator purged, say).
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, event("full-1", 2000, 10_000)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
}

// A persister that cannot open its database because a reader holds it
// says so, naming readers, not only "another persister" (issue 8, break 9).
func TestPersisterBlockedByReader(t *testing.T) {
	bin := buildPersister(t)
	db := dbIn(t)
	st, err := store.Open(testCtx(t, time.Minute), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := store.OpenReadOnly(testCtx(t, time.Minute), db)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	out, err := exec.Command(bin, "--db", db, "--listen", "127.0.0.1:0").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("persister with a reader holding %s: %v, want exit 1\n%s", db, err, out)
	}
	if !strings.Contains(string(out), "reader") || !strings.Contains(string(out), "held by another process") {
		t.Errorf("message %q does not say a reader may hold the file", out)
	}
}
