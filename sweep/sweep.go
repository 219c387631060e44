// Package sweep spreads many runs over many machines: a sweep expands one
// experiment over seeds, models and config values into jobs on a JetStream
// work-queue stream, and workers anywhere pull them, run them, keep them
// alive with in-progress acks, and ack them when the run is stored. A job
// whose worker died is redelivered and resumed from the run's records on
// the bus; one that keeps failing is recorded as failed after a bounded
// number of deliveries.
package sweep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// StreamName is the work-queue stream that holds pending jobs.
	StreamName = "SIMCASH_JOBS"
	// SubjectPrefix starts every job subject: simcashjobs.<sweep>.
	SubjectPrefix = "simcashjobs"
	// ConsumerName is the durable consumer all workers share.
	ConsumerName = "simcash-workers"
)

// Job is one run of a sweep.
type Job struct {
	SweepID string `json:"sweep_id"`
	Index   int    `json:"index"`  // 1-based, in expansion order
	RunID   string `json:"run_id"` // the run's experiment id: <sweep>-<index>
	Label   string `json:"label"`  // what varies, e.g. "seed=3 model=builtin:search"
	// Config is the run's resolved experiment config, scenario text
	// included, so a worker needs no files.
	Config json.RawMessage `json:"config"`
}

// NewID returns a sweep id: <name>-sweep-<YYYYMMDD-HHMMSS>-<4 hex>.
func NewID(name string, now time.Time) string {
	var x [2]byte
	_, _ = rand.Read(x[:])
	return fmt.Sprintf("%s-sweep-%s-%s", name, now.UTC().Format("20060102-150405"), hex.EncodeToString(x[:]))
}

// Set is one --set KEY=v1,v2: a dotted key of the resolved config and the
// values to sweep it over (JSON when they parse as JSON, else strings).
type Set struct {
	Key    string
	Values []string
}

// ParseSet reads KEY=v1,v2,...
func ParseSet(s string) (Set, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return Set{}, fmt.Errorf("--set %q: want KEY=VALUE[,VALUE...], e.g. evaluation.num_samples=20,50", s)
	}
	return Set{Key: k, Values: strings.Split(v, ",")}, nil
}

// ParseSeeds reads "1-50", "1,2,7" or a mix such as "1-3,10".
func ParseSeeds(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseInt(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds %q: %q is not a seed or a range like 1-50", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("--seeds %q: %q is not a range like 1-50", s, part)
			}
		}
		if b-a >= 100000 || len(out) > 100000 {
			return nil, fmt.Errorf("--seeds %q: more than 100,000 seeds", s)
		}
		for x := a; x <= b; x++ {
			out = append(out, x)
		}
	}
	return out, nil
}

// Expand makes one job per combination of seeds (none: the config's own),
// models and set values, in that nesting order.
func Expand(sweepID string, base json.RawMessage, seeds []int64, models []string, sets []Set) ([]Job, error) {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("sweep: config: %w", err)
	}
	type axis struct {
		key    string
		values []any
		labels []string
	}
	var axes []axis
	if len(seeds) > 0 {
		a := axis{key: "master_seed"}
		for _, s := range seeds {
			a.values, a.labels = append(a.values, s), append(a.labels, strconv.FormatInt(s, 10))
		}
		axes = append(axes, a)
	}
	if len(models) > 0 {
		a := axis{key: "llm.model"}
		for _, m := range models {
			a.values, a.labels = append(a.values, m), append(a.labels, m)
		}
		axes = append(axes, a)
	}
	for _, s := range sets {
		a := axis{key: s.Key}
		for _, v := range s.Values {
			var x any
			if json.Unmarshal([]byte(v), &x) != nil {
				x = v
			}
			a.values, a.labels = append(a.values, x), append(a.labels, v)
		}
		axes = append(axes, a)
	}
	var jobs []Job
	idx := make([]int, len(axes))
	for {
		cfg := clone(doc)
		var label []string
		for k, a := range axes {
			if err := setPath(cfg, a.key, a.values[idx[k]]); err != nil {
				return nil, err
			}
			label = append(label, shortKey(a.key)+"="+a.labels[idx[k]])
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		n := len(jobs) + 1
		jobs = append(jobs, Job{SweepID: sweepID, Index: n, RunID: sweepID + "-" + strconv.Itoa(n), Label: strings.Join(label, " "), Config: b})
		// Next combination, the last axis fastest.
		k := len(axes) - 1
		for ; k >= 0; k-- {
			if idx[k]++; idx[k] < len(axes[k].values) {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return jobs, nil
		}
	}
}

func shortKey(k string) string {
	switch k {
	case "master_seed":
		return "seed"
	case "llm.model":
		return "model"
	}
	return k
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// setPath sets a dotted key in a config document; every parent must be an
// object that exists (a typo in KEY is an error, not a new key).
func setPath(doc map[string]any, key string, v any) error {
	parts := strings.Split(key, ".")
	m := doc
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return fmt.Errorf("--set %s: the config has no object %q", key, strings.Join(parts[:i+1], "."))
		}
		m = next
	}
	last := parts[len(parts)-1]
	if _, ok := m[last]; !ok && len(parts) > 1 {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return fmt.Errorf("--set %s: the config has no key %q here (it has: %s)", key, last, strings.Join(keys, ", "))
	}
	m[last] = v
	return nil
}

// EnsureStream creates the job stream if it does not exist.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: StreamName, Description: "simcash sweep jobs", Subjects: []string{SubjectPrefix + ".>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: max(1, replicas),
		Duplicates: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("create job stream %s: %w", StreamName, err)
	}
	return s, nil
}

// Submit publishes jobs, each once (their message ids are sweep.index).
func Submit(ctx context.Context, js jetstream.JetStream, jobs []Job) error {
	for _, j := range jobs {
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		m := nats.NewMsg(SubjectPrefix + "." + j.SweepID)
		m.Data = b
		m.Header.Set(nats.MsgIdHdr, j.SweepID+"."+strconv.Itoa(j.Index))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("submit job %d of %s: %w", j.Index, j.SweepID, err)
		}
	}
	return nil
}

// ErrMalformedJob is a job message that does not decode.
var ErrMalformedJob = errors.New("malformed job")

// DecodeJob reads a job message.
func DecodeJob(b []byte) (Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("%w: %v", ErrMalformedJob, err)
	}
	if j.SweepID == "" || j.RunID == "" || len(j.Config) == 0 {
		return j, fmt.Errorf("%w: sweep_id, run_id and config are required", ErrMalformedJob)
	}
	return j, nil
}
