package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A persister that hosts NATS requires credentials: the configured user
// and password or token, or else a token it generates and writes with mode
// 0600 next to the database (TokenFile) and in the user's config directory
// under the server's port (LocalTokenFile), where Connect finds it for a
// loopback URL given without credentials. Local runners and results thus
// connect as before, and other local users cannot.

// TokenFile is where a hosting persister keeps its generated token.
func TokenFile(dbPath string) string { return dbPath + ".nats-token" }

// LocalTokenFile is where Connect looks for the token of a server on
// this machine's loopback port.
func LocalTokenFile(port int) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory for the NATS token: %w", err)
	}
	return filepath.Join(dir, "simcash", "nats", strconv.Itoa(port)+".token"), nil
}

// NewToken returns a random token for a hosted server.
func NewToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// hasAuth reports whether c carries credentials of its own.
func (c Config) hasAuth() bool {
	return c.Token != "" || c.User != "" || c.Creds != ""
}

// withLocalToken fills in the token of a server on this machine when c
// names a loopback URL and has no credentials.
func (c Config) withLocalToken() Config {
	if c.hasAuth() {
		return c
	}
	for _, s := range strings.Split(c.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User != nil || !isLoopback(u.Hostname()) {
			continue
		}
		port, err := strconv.Atoi(u.Port())
		if err != nil {
			continue
		}
		f, err := LocalTokenFile(port)
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(f); err == nil {
			c.Token = strings.TrimSpace(string(b))
			return c
		}
	}
	return c
}

// isLoopback reports whether host is this machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrExposed is returned for a listen address beyond loopback without TLS.
var ErrExposed = errors.New("refusing to serve NATS beyond this machine without TLS")

// Host starts an embedded server for other processes on o.Listen. Unless o
// carries credentials it requires a token: the one kept in
// TokenFile(dbPath) by an earlier run (so clients of a restarted persister
// reconnect), else a new one written there. The token is also written to
// LocalTokenFile(port), where Connect finds it; Shutdown removes that one.
// dbPath may be empty (tests): then only the local file is written.
func Host(ctx context.Context, o EmbeddedOptions, dbPath string) (*Embedded, error) {
	if o.Listen == "" {
		return nil, errors.New("host NATS: a listen address is required")
	}
	if o.Token == "" && o.User == "" && dbPath != "" {
		if b, err := os.ReadFile(TokenFile(dbPath)); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
			o.Token = strings.TrimSpace(string(b))
		}
	}
	generated := false
	if o.Token == "" && o.User == "" {
		t, err := NewToken()
		if err != nil {
			return nil, err
		}
		o.Token, generated = t, true
	}
	e, err := StartEmbedded(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.Token == "" {
		return e, nil // user and password: the operator hands them out
	}
	local, err := LocalTokenFile(e.Port)
	if err == nil {
		err = writePrivate(local, o.Token)
	}
	if err == nil && dbPath != "" && generated {
		err = writePrivate(TokenFile(dbPath), o.Token)
	}
	if err != nil {
		e.Shutdown()
		return nil, fmt.Errorf("host NATS: %w", err)
	}
	e.cleanup = func() { _ = os.Remove(local) }
	return e, nil
}

// writePrivate writes a secret readable by its owner only.
func writePrivate(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write NATS token: %w", err)
	}
	_ = os.Remove(path) // an old file of another mode is not reused
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write NATS token: %w", err)
	}
	return nil
}

// ParseListen checks a listen address, host:port with a port from 0 (a
// free one) to 65535.
func ParseListen(listen string) (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: want host:port, e.g. 127.0.0.1:4222 (port 0 picks a free one)", listen)
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("listen address %q: the port must be a number from 0 to 65535", listen)
	}
	return host, port, nil
}

// CheckListen refuses a malformed listen address, and one beyond loopback
// for a server without TLS, saying how to do it safely.
func CheckListen(listen string, tls bool) error {
	host, _, err := ParseListen(listen)
	if err != nil || isLoopback(host) || tls {
		return err
	}
	return fmt.Errorf("%w: --listen %s: give the server a certificate (SIMCASH_NATS_SERVER_TLS_CERT and SIMCASH_NATS_SERVER_TLS_KEY; clients then set SIMCASH_NATS_TLS_CA), or listen on 127.0.0.1", ErrExposed, listen)
}
