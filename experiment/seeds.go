package experiment

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// IterationSeed returns the simulation seed for the 0-based iteration index
// iter and agent, derived exactly as SimCash does so that runs are comparable:
// the first 4 bytes (big-endian) of SHA-256("{master}:iter:{iter}:agent:{agent}")
// modulo 2^31.
func IterationSeed(master int64, iter int, agent string) int64 {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:iter:%d:agent:%s", master, iter, agent))
	return int64(binary.BigEndian.Uint32(sum[:4])) % (1 << 31)
}

// SampleSeed returns the seed of bootstrap sample k drawn from seed, as
// SimCash does: the first 8 bytes (big-endian) of SHA-256("{seed}:sample:{k}")
// modulo 2^31.
func SampleSeed(seed int64, k int) int64 {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:sample:%d", seed, k))
	return int64(binary.BigEndian.Uint64(sum[:8]) % (1 << 31))
}
