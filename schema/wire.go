package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Version is the wire schema version written into every envelope. Decode
// rejects any other version, so a persister never guesses at a format it does
// not know.
const Version = 1

// SubjectRoot is the first token of every record subject; the stream captures
// SubjectRoot + ".>".
const SubjectRoot = "simcash"

// Decode errors. Decode wraps exactly one of them, so callers can tell with
// errors.Is why a message can never be stored.
var (
	ErrMalformed           = errors.New("malformed record")
	ErrUnknownVersion      = errors.New("unknown schema version")
	ErrUnknownKind         = errors.New("unknown record kind")
	ErrMissingKey          = errors.New("missing record key")
	ErrMissingExperimentID = errors.New("missing experiment id")
	ErrInvalid             = errors.New("invalid record field")
)

// envelope is the wire form: a version, the kind and natural key (so a
// consumer can route or deduplicate without decoding data), and the record.
type envelope struct {
	V            int             `json:"v"`
	Kind         Kind            `json:"kind"`
	ExperimentID string          `json:"experiment_id"`
	Key          string          `json:"key"`
	Data         json.RawMessage `json:"data"`
}

// ValidID reports whether s is non-empty and made only of [A-Za-z0-9_-], so
// it can be used as a NATS subject token and in message ids.
func ValidID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Subject returns the NATS subject of r:
// simcash.<experiment_id>.started|iteration|evaluation|event.<event_type>|completed.
func Subject(r Record) string {
	s := SubjectRoot + "." + r.ExperimentID() + "." + string(r.Kind())
	if e, ok := r.(*Event); ok {
		s += "." + e.EventType
	}
	return s
}

// MsgID returns the deterministic Nats-Msg-Id of r, derived from its natural
// key, so a republished record is dropped by the stream's duplicate window.
func MsgID(r Record) string {
	id := r.ExperimentID() + "." + string(r.Kind())
	if k := r.Key(); k != "" {
		id += "." + k
	}
	return id
}

// Validate checks what the store and the subjects rely on: a valid experiment
// id, a complete natural key, a subject-safe event type and a known status.
func Validate(r Record) error {
	if r.ExperimentID() == "" {
		return fmt.Errorf("%w: set experiment_id", ErrMissingExperimentID)
	}
	if !ValidID(r.ExperimentID()) {
		return fmt.Errorf("%w: experiment id %q may contain only letters, digits, '_' and '-'", ErrInvalid, r.ExperimentID())
	}
	switch r := r.(type) {
	case *ExperimentStarted:
		if r.Name == "" {
			return fmt.Errorf("%w: experiment_name is empty", ErrInvalid)
		}
	case *Iteration:
		if r.Iteration < 1 {
			return fmt.Errorf("%w: iteration number %d, want >= 1", ErrMissingKey, r.Iteration)
		}
	case *PolicyEvaluation:
		if r.Iteration < 1 {
			return fmt.Errorf("%w: iteration number %d, want >= 1", ErrMissingKey, r.Iteration)
		}
		if r.Agent == "" {
			return fmt.Errorf("%w: agent_id is empty", ErrMissingKey)
		}
	case *Event:
		if r.Seq < 0 {
			return fmt.Errorf("%w: event seq %d, want >= 0", ErrMissingKey, r.Seq)
		}
		if !ValidID(r.EventType) {
			return fmt.Errorf("%w: event type %q may contain only letters, digits, '_' and '-'", ErrInvalid, r.EventType)
		}
	case *Heartbeat:
		if r.Beat < 1 {
			return fmt.Errorf("%w: heartbeat %d, want >= 1", ErrMissingKey, r.Beat)
		}
	case *ExperimentCompleted:
		switch r.Status {
		case StatusCompleted, StatusFailed, StatusInterrupted:
		default:
			return fmt.Errorf("%w: status %q, want completed, failed or interrupted", ErrInvalid, r.Status)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnknownKind, r)
	}
	return nil
}

// Encode validates r and returns its versioned envelope:
// {"v":1,"kind":"iteration","experiment_id":"...","key":"...","data":{...}}.
func Encode(r Record) ([]byte, error) {
	if err := Validate(r); err != nil {
		return nil, fmt.Errorf("encode %s record: %w", r.Kind(), err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w: %w", r.Kind(), ErrMalformed, err)
	}
	b, err := json.Marshal(envelope{V: Version, Kind: r.Kind(), ExperimentID: r.ExperimentID(), Key: r.Key(), Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode %s envelope: %w", r.Kind(), err)
	}
	if len(b) <= MaxRecordBytes {
		return b, nil
	}
	if ev, ok := r.(*Event); ok {
		// A long prompt or answer: keep the head of each long text field
		// and say how much was cut, rather than refuse the record.
		over := len(b) - MaxRecordBytes
		cut := *ev
		if cut.Data, err = FitEventData(ev.Data, len(ev.Data)-over-1024); err == nil {
			return Encode(&cut)
		}
	}
	return nil, fmt.Errorf("encode %s record: %w: %d bytes, over the %d-byte limit of a record", r.Kind(), ErrInvalid, len(b), MaxRecordBytes)
}

// FitEventData shrinks an event's JSON object to at most limit bytes by
// cutting its longest string fields (prompts, answers), each to its head
// plus a note with the original length and SHA-256. It fails when the
// data is not an object or its other fields alone are too large.
func FitEventData(data json.RawMessage, limit int) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: event data is not an object", ErrInvalid)
	}
	for range 64 {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if len(b) <= limit {
			return b, nil
		}
		longest, n := "", 0
		for k, v := range m {
			if s, ok := v.(string); ok && len(s) > n && !strings.HasSuffix(s, cutMark) {
				longest, n = k, len(s)
			}
		}
		if n < 1024 {
			break
		}
		s := m[longest].(string)
		keep := max(n-(len(b)-limit)-256, n/8, 0)
		keep = min(keep, n-1)
		for keep > 0 && !utf8.RuneStart(s[keep]) {
			keep--
		}
		sum := sha256.Sum256([]byte(s))
		m[longest] = fmt.Sprintf("%s\n[... cut by simcash: %d of %d bytes kept, sha256 of the whole %x]%s", s[:keep], keep, n, sum, cutMark)
	}
	return nil, fmt.Errorf("%w: event data cannot be cut to %d bytes", ErrInvalid, limit)
}

// cutMark ends a field FitEventData cut (an invisible marker, so that a
// field is cut once).
const cutMark = "\u200b"

// New returns an empty record of kind k, or nil for an unknown kind.
func New(k Kind) Record {
	switch k {
	case KindStarted:
		return &ExperimentStarted{}
	case KindIteration:
		return &Iteration{}
	case KindEvaluation:
		return &PolicyEvaluation{}
	case KindEvent:
		return &Event{}
	case KindCompleted:
		return &ExperimentCompleted{}
	case KindHeartbeat:
		return &Heartbeat{}
	}
	return nil
}

// Decode parses an envelope produced by Encode. Its errors wrap ErrMalformed,
// ErrUnknownVersion, ErrUnknownKind, ErrMissingKey, ErrMissingExperimentID or
// ErrInvalid.
func Decode(b []byte) (Record, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.V != Version {
		return nil, fmt.Errorf("%w: v=%d, this program reads v=%d", ErrUnknownVersion, env.V, Version)
	}
	r := New(env.Kind)
	if r == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, env.Kind)
	}
	if env.ExperimentID == "" {
		return nil, fmt.Errorf("%w in %s envelope", ErrMissingExperimentID, env.Kind)
	}
	if len(env.Data) == 0 || bytes.Equal(env.Data, []byte("null")) {
		return nil, fmt.Errorf("%w: %s envelope has no data", ErrMalformed, env.Kind)
	}
	if err := json.Unmarshal(env.Data, r); err != nil {
		return nil, fmt.Errorf("%w: %s data: %w", ErrMalformed, env.Kind, err)
	}
	if err := fillID(r, env.ExperimentID); err != nil {
		return nil, err
	}
	if err := Validate(r); err != nil {
		return nil, err
	}
	if r.Key() != "" && env.Key == "" {
		return nil, fmt.Errorf("%w in %s envelope (want %q)", ErrMissingKey, env.Kind, r.Key())
	}
	if env.Key != r.Key() {
		return nil, fmt.Errorf("%w: %s envelope key %q does not match data key %q", ErrMalformed, env.Kind, env.Key, r.Key())
	}
	return r, nil
}

// fillID takes the experiment id from the envelope when the data omits it and
// rejects a record whose data names another experiment.
func fillID(r Record, id string) error {
	var p *string
	switch r := r.(type) {
	case *ExperimentStarted:
		p = &r.ExpID
	case *Iteration:
		p = &r.ExpID
	case *PolicyEvaluation:
		p = &r.ExpID
	case *Event:
		p = &r.ExpID
	case *ExperimentCompleted:
		p = &r.ExpID
	case *Heartbeat:
		p = &r.ExpID
	}
	switch *p {
	case "":
		*p = id
	case id:
	default:
		return fmt.Errorf("%w: envelope experiment id %q, data experiment id %q", ErrMalformed, id, *p)
	}
	return nil
}

// MaxRecordBytes is the largest encoded record (envelope included) that is
// published or stored: large prompt and answer texts are cut to fit before
// they are published (FitEventData), and a larger message reaching the
// persister is dead-lettered without being decoded. It keeps the
// persister's memory bounded by its batch size.
const MaxRecordBytes = 1 << 20
