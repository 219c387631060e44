package main

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/store"
)

// openRemote returns a Reader served by the persister that holds dbPath:
// it finds the persister through <db>.persister.json and queries it over
// NATS request/reply (credentials from SIMCASH_NATS_*).
func openRemote(dbPath string) (store.Reader, error) {
	cfg, err := bus.LoadConfig()
	if err != nil {
		return nil, usageErr(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bus.OpenRemote(ctx, dbPath, cfg)
}

// errNoBus: no URL was given and no persister holds the database.
var errNoBus = errors.New("no bus")

// connectBus connects to url, else $SIMCASH_NATS_URL, else the bus of the
// persister that holds db (errNoBus when there is none), as client name.
func connectBus(ctx context.Context, db, url, name string) (*nats.Conn, jetstream.JetStream, error) {
	cfg, err := bus.LoadConfig()
	if err != nil {
		return nil, nil, usageErr(err)
	}
	if url != "" {
		cfg.URL = url
	}
	if cfg.URL == "" {
		info, err := bus.ReadInfo(db)
		if err != nil || info.URL == "" {
			return nil, nil, errNoBus
		}
		cfg.URL = info.URL
	}
	cfg.Name = name
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := bus.Connect(cctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	js, err := bus.NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
