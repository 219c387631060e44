package main

import (
	"fmt"

	"simcash/store"
)

// openRemote returns a Reader served by the persister that holds dbPath.
// This stub is replaced by remote.go (bus engineer), which asks the
// persister over NATS.
func openRemote(dbPath string) (store.Reader, error) {
	return nil, fmt.Errorf("database %s is locked by a running persister; reading through the persister is not available in this build: stop the persister or copy the file", dbPath)
}
