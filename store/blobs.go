package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"simcash/schema"
)

// Long texts of events (prompts and answers of llm_interaction events) are
// kept out of DuckDB, in gzip files named by their SHA-256 in a directory
// next to the database (BlobDir), each stored once however often it
// recurs. The event's data holds a reference in the text's place:
//
//	{"simcash_blob":"<sha256>","bytes":N,"head":"<first 256 bytes>"}
//
// and Events puts the text back, byte for byte. Why: DuckDB keeps the
// strings appended to a table's current row group in memory (a CHECKPOINT
// does not release them and memory_limit cannot evict them), so a
// persister storing hundreds of megabyte-sized texts grew to gigabytes and
// then ran out of memory (issue 8); with the texts outside, rows stay
// small and its memory flat.

// BlobMin is the length (of the JSON-encoded string) above which a
// top-level string field of an event's data goes to a blob file.
const BlobMin = 8 << 10

const blobMarker = `{"simcash_blob":`

type blobRef struct {
	Blob  string `json:"simcash_blob"`
	Bytes int    `json:"bytes"`
	Head  string `json:"head"`
}

// BlobDir is the directory of a database's blob files; it belongs with the
// database (copy both to move it).
func BlobDir(dbPath string) string { return CanonicalPath(dbPath) + ".blobs" }

// CanonicalPath is dbPath made absolute with symbolic links resolved (those
// of its directory when the file does not exist yet), so that a database
// named through a link finds its blobs, its persister and its bus.
func CanonicalPath(dbPath string) string {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return dbPath
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(d, filepath.Base(abs))
	}
	return abs
}

// externalize moves the long string fields of each event in b to blob
// files and puts references in their rows. Files are written (and synced)
// before the transaction commits; an orphan left by a failed commit is
// harmless and reused by the retry.
func (s *Store) externalize(b batch) error {
	for _, p := range b.groups[schema.KindEvent] {
		data, ok := p.row[4].(json.RawMessage)
		if !ok || len(data) <= BlobMin {
			continue
		}
		out, err := s.blobFields(data)
		if err != nil {
			return err
		}
		p.row[4] = json.RawMessage(out)
	}
	return nil
}

func (s *Store) blobFields(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return data, nil // not an object: stored as it is
	}
	out := data
	for _, v := range m {
		if len(v) <= BlobMin || v[0] != '"' {
			continue
		}
		sum := sha256.Sum256(v)
		name := hex.EncodeToString(sum[:])
		if err := s.writeBlob(name, v); err != nil {
			return nil, err
		}
		var text string
		_ = json.Unmarshal(v, &text)
		head := strings.ToValidUTF8(text[:min(len(text), 256)], "")
		ref, err := json.Marshal(blobRef{Blob: name, Bytes: len(v), Head: head})
		if err != nil {
			return nil, err
		}
		out = bytes.Replace(out, v, ref, 1)
	}
	return out, nil
}

func (s *Store) writeBlob(name string, raw []byte) error {
	dir := BlobDir(s.path)
	path := filepath.Join(dir, name+".json.gz")
	if _, err := os.Stat(path); err == nil {
		return nil // stored once
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("blob directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	zw := gzip.NewWriter(f)
	_, err = zw.Write(raw)
	err = errors.Join(err, zw.Close())
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("write blob %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write blob %s: %w", name, err)
	}
	return nil
}

// blobCache holds the texts one Events call has read: a system prompt
// recurs in every llm_interaction event of a run and is read once.
type blobCache map[string][]byte

// resolve puts the texts of blob references in data back.
func (s *Store) resolve(data json.RawMessage, cache blobCache) json.RawMessage {
	if !bytes.Contains(data, []byte(blobMarker)) {
		return data
	}
	var out []byte
	rest := []byte(data)
	for {
		i := bytes.Index(rest, []byte(blobMarker))
		if i < 0 {
			return append(out, rest...)
		}
		dec := json.NewDecoder(bytes.NewReader(rest[i:]))
		var ref blobRef
		if err := dec.Decode(&ref); err != nil {
			return append(out, rest...)
		}
		n := int(dec.InputOffset())
		raw, ok := cache[ref.Blob]
		if !ok {
			var err error
			if raw, err = s.readBlob(ref.Blob); err != nil {
				s.log.Warn("event text missing: its reference is shown instead", "blob", ref.Blob, "err", err)
				raw = rest[i : i+n]
			}
			cache[ref.Blob] = raw
		}
		out = append(append(out, rest[:i]...), raw...)
		rest = rest[i+n:]
	}
}

func (s *Store) readBlob(name string) ([]byte, error) {
	if b, err := hex.DecodeString(name); err != nil || len(b) != sha256.Size {
		return nil, fs.ErrInvalid // not a name this store wrote: never a path
	}
	f, err := os.Open(filepath.Join(BlobDir(s.path), name+".json.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(zr, schema.MaxRecordBytes+1))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != name {
		return nil, errors.New("content does not match its name")
	}
	return raw, nil
}
