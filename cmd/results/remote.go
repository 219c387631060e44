package main

import (
	"context"
	"time"

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
