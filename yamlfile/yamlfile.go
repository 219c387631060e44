// Package yamlfile loads YAML configuration files with errors that point at
// the place to fix: every value remembers its file, line, column and dotted
// field path ("agents[1].arrival_config.rate_per_tick").
//
// Reading is linear and error-collecting: getters never fail on their own,
// they record an *Error in the Doc and return the default, so a loader can
// read a whole file and report everything wrong at once.
//
//	doc, err := yamlfile.ReadFile("scenario.yaml")
//	if err != nil {
//		return err // malformed YAML, already an *Error with file and line
//	}
//	doc.Strict = opts.Strict // unknown keys become errors instead of warnings
//	root := doc.Root().Map()
//	root.Known("simulation", "agents")
//	sim := root.Require("simulation").Map()
//	ticks := sim.Require("ticks_per_day").Int(0)
//	if ticks <= 0 {
//		sim.Get("ticks_per_day").Errorf("must be > 0, got %d", ticks)
//	}
//	for _, a := range root.Require("agents").List() {
//		id := a.Map().Require("id").String("")
//		_ = id
//	}
//	if err := doc.Err(); err != nil {
//		return err
//	}
//	warnings := doc.Warnings()
package yamlfile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Error is a problem at a place in a file. Warnings have the same shape.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Field  string
	Msg    string
}

// Error formats as "file:line:col: field: msg", leaving out unknown parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// maxErrors bounds how many errors a Doc keeps, so one early mistake does
// not bury the useful messages under a cascade.
const maxErrors = 20

// Doc is one parsed file plus the errors and warnings found while reading it.
type Doc struct {
	File string
	// Strict turns unknown-key warnings into errors.
	Strict bool

	root     *yaml.Node
	errs     []*Error
	warnings []*Error
}

// MaxFileBytes bounds every input file simcash reads (experiments,
// scenarios, policies, prompts): a larger one, or an endless one such as
// /dev/zero, is an error instead of a process that runs out of memory.
const MaxFileBytes = 16 << 20

// ReadLimited reads the file at path, failing when it is larger than
// MaxFileBytes.
func ReadLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB: not an input file", path, MaxFileBytes>>20)
	}
	return data, nil
}

// ReadFile reads and parses the YAML file at path.
func ReadFile(path string) (*Doc, error) {
	data, err := ReadLimited(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	return Parse(path, data)
}

var lineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses data; name is used as the file name in messages. A syntax
// error is returned as an *Error.
func Parse(name string, data []byte) (*Doc, error) {
	if e := checkText(name, data); e != nil {
		return nil, e
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		e := &Error{File: name, Msg: "malformed YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = "malformed YAML: " + m[2]
		}
		return nil, e
	}
	d := &Doc{File: name}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		d.root = n.Content[0]
	}
	if d.root == nil || (d.root.Kind == yaml.ScalarNode && d.root.Tag == "!!null") {
		return nil, &Error{File: name, Line: 1, Msg: "file is empty"}
	}
	return d, nil
}

// checkText locates the first byte that cannot be in a YAML text file
// (invalid UTF-8, a NUL or another control character), which the YAML
// parser would report without a line.
func checkText(name string, data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		var msg string
		switch {
		case r == utf8.RuneError && size <= 1:
			msg = fmt.Sprintf("not UTF-8 text (byte 0x%02x): is this a YAML file?", data[i])
		case r < 0x20 && r != '\n' && r != '\r' && r != '\t':
			msg = fmt.Sprintf("control character 0x%02x: is this a YAML file?", r)
		}
		if msg != "" {
			return &Error{File: name, Line: line, Column: col, Msg: msg}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// Root returns the top-level value.
func (d *Doc) Root() Value { return Value{doc: d, n: d.root} }

// Err returns nil, the one recorded error, or all of them joined (errors.As
// finds the first *Error).
func (d *Doc) Err() error {
	switch len(d.errs) {
	case 0:
		return nil
	case 1:
		return d.errs[0]
	}
	es := make([]error, len(d.errs))
	for i, e := range d.errs {
		es[i] = e
	}
	return errors.Join(es...)
}

// Errors returns the recorded errors in the order found.
func (d *Doc) Errors() []*Error { return d.errs }

// Warnings returns the recorded warnings in the order found.
func (d *Doc) Warnings() []*Error { return d.warnings }

func (d *Doc) addErr(e *Error) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, e)
	}
}

// Value is a node of the document with its path. The zero Value of a Doc
// (an absent key) is not Present; its getters return their defaults.
type Value struct {
	doc  *Doc
	n    *yaml.Node
	path string
	// parent locates an absent value: the mapping it is missing from.
	parent *yaml.Node
}

// Present reports whether the value exists and is not null.
func (v Value) Present() bool {
	return v.n != nil && !(v.n.Kind == yaml.ScalarNode && v.n.Tag == "!!null")
}

// Path is the dotted field path, e.g. "agents[1].policy.type".
func (v Value) Path() string { return v.path }

// Line and Column locate the value (or, when absent, its parent mapping).
func (v Value) Line() int   { return v.pos().Line }
func (v Value) Column() int { return v.pos().Column }

func (v Value) pos() *yaml.Node {
	if v.n != nil {
		return v.n
	}
	if v.parent != nil {
		return v.parent
	}
	return &yaml.Node{}
}

// Node returns the underlying YAML node (nil when absent).
func (v Value) Node() *yaml.Node { return v.n }

// Doc returns the document the value belongs to.
func (v Value) Doc() *Doc { return v.doc }

// At returns an *Error located at v, without recording it.
func (v Value) At(format string, args ...any) *Error {
	p := v.pos()
	return &Error{File: v.doc.File, Line: p.Line, Column: p.Column, Field: v.path, Msg: fmt.Sprintf(format, args...)}
}

// Errorf records an error located at v.
func (v Value) Errorf(format string, args ...any) { v.doc.addErr(v.At(format, args...)) }

// Warnf records a warning located at v.
func (v Value) Warnf(format string, args ...any) {
	v.doc.warnings = append(v.doc.warnings, v.At(format, args...))
}

func (v Value) describe() string {
	switch v.n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch v.n.Tag {
		case "!!str":
			return fmt.Sprintf("string %q", v.n.Value)
		case "!!bool":
			return "boolean " + v.n.Value
		}
		return v.n.Value
	}
	return "a " + v.n.Tag
}

func (v Value) scalar(want string) bool {
	if v.n.Kind != yaml.ScalarNode {
		v.Errorf("want %s, got %s", want, v.describe())
		return false
	}
	return true
}

// String returns the scalar as text, or def when absent.
func (v Value) String(def string) string {
	if !v.Present() || !v.scalar("a string") {
		return def
	}
	return v.n.Value
}

// Float returns a number, or def when absent.
func (v Value) Float(def float64) float64 {
	if !v.Present() || !v.scalar("a number") {
		return def
	}
	if v.n.Tag != "!!int" && v.n.Tag != "!!float" {
		v.Errorf("want a number, got %s", v.describe())
		return def
	}
	var f float64
	if err := v.n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		v.Errorf("want a finite number, got %s", v.describe())
		return def
	}
	return f
}

// Int64 returns an integer, or def when absent. A float with an integral
// value (1e6, 2.0) is accepted; a fraction is an error.
func (v Value) Int64(def int64) int64 {
	if !v.Present() || !v.scalar("an integer") {
		return def
	}
	switch v.n.Tag {
	case "!!int":
		var i int64
		if err := v.n.Decode(&i); err != nil {
			v.Errorf("want an integer that fits in 64 bits, got %s", v.describe())
			return def
		}
		return i
	case "!!float":
		var f float64
		if err := v.n.Decode(&f); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
	}
	v.Errorf("want an integer, got %s", v.describe())
	return def
}

// Int is Int64 for values that fit an int.
func (v Value) Int(def int) int { return int(v.Int64(int64(def))) }

// Money returns an amount in integer cents, or def when absent. Fractional
// cents are an error rather than rounded, since a file with them is wrong.
func (v Value) Money(def int64) int64 {
	if v.Present() && v.n.Kind == yaml.ScalarNode && v.n.Tag == "!!float" {
		var f float64
		if err := v.n.Decode(&f); err == nil && f != math.Trunc(f) {
			v.Errorf("want an amount in integer cents, got %s", v.n.Value)
			return def
		}
	}
	return v.Int64(def)
}

// Bool returns true/false, or def when absent.
func (v Value) Bool(def bool) bool {
	if !v.Present() || !v.scalar("true or false") {
		return def
	}
	var b bool
	if v.n.Tag != "!!bool" || v.n.Decode(&b) != nil {
		v.Errorf("want true or false, got %s", v.describe())
		return def
	}
	return b
}

// List returns the items of a sequence (nil when absent or not a list).
func (v Value) List() []Value {
	if !v.Present() {
		return nil
	}
	if v.n.Kind != yaml.SequenceNode {
		v.Errorf("want a list, got %s", v.describe())
		return nil
	}
	out := make([]Value, len(v.n.Content))
	for i, c := range v.n.Content {
		out[i] = Value{doc: v.doc, n: resolve(c), path: fmt.Sprintf("%s[%d]", v.path, i)}
	}
	return out
}

// IsMap reports whether v is a mapping.
func (v Value) IsMap() bool { return v.Present() && v.n.Kind == yaml.MappingNode }

// IsScalar reports whether v is a non-null scalar.
func (v Value) IsScalar() bool { return v.Present() && v.n.Kind == yaml.ScalarNode }

// Map returns v as a mapping. An absent value gives an empty Map whose
// getters return defaults; a value of another kind records an error.
func (v Value) Map() Map {
	m := Map{Value: v}
	if !v.Present() {
		return m
	}
	if v.n.Kind != yaml.MappingNode {
		v.Errorf("want a mapping, got %s", v.describe())
		m.bad = true
		return m
	}
	seen := make(map[string]int, len(v.n.Content)/2)
	for i := 0; i+1 < len(v.n.Content); i += 2 {
		k, val := v.n.Content[i], v.n.Content[i+1]
		if k.Value == "<<" {
			v.child(k, k.Value).Errorf("YAML merge keys are not supported; write the keys out")
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			v.child(k, k.Value).Errorf("duplicate key (first at line %d)", v.n.Content[prev].Line)
			continue
		}
		seen[k.Value] = i
		m.keys = append(m.keys, k)
		m.vals = append(m.vals, resolve(val))
	}
	return m
}

// Decode decodes the value into out with the yaml package's rules; errors
// are recorded at v. It is the escape hatch for free-form content.
func (v Value) Decode(out any) bool {
	if !v.Present() {
		return false
	}
	if err := v.n.Decode(out); err != nil {
		v.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return false
	}
	return true
}

func (v Value) child(n *yaml.Node, key string) Value {
	p := key
	if v.path != "" {
		p = v.path + "." + key
	}
	return Value{doc: v.doc, n: n, path: p}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// Map is a mapping value with its keys in file order.
type Map struct {
	Value
	keys []*yaml.Node
	vals []*yaml.Node
	// bad marks a value that is not a mapping (already reported), so that
	// Require does not add a "missing" error for each key.
	bad bool
}

// Keys returns the mapping's keys in file order.
func (m Map) Keys() []string {
	out := make([]string, len(m.keys))
	for i, k := range m.keys {
		out[i] = k.Value
	}
	return out
}

// Len is the number of keys.
func (m Map) Len() int { return len(m.keys) }

// Has reports whether key is present and not null.
func (m Map) Has(key string) bool { return m.Get(key).Present() }

// Get returns the value at key; absent keys give a non-Present Value that
// still knows its path and its parent's position.
func (m Map) Get(key string) Value {
	for i, k := range m.keys {
		if k.Value == key {
			c := m.child(m.vals[i], key)
			c.parent = m.n
			return c
		}
	}
	c := m.child(nil, key)
	c.parent = m.n
	if c.parent == nil {
		c.parent = m.parent
	}
	return c
}

// Require is Get that records "required field missing" (at the parent
// mapping's position) when the key is absent or null.
func (m Map) Require(key string) Value {
	v := m.Get(key)
	if !v.Present() && !m.bad {
		where := "the file"
		if p := v.pos(); p.Line > 0 {
			where = fmt.Sprintf("the mapping at line %d", p.Line)
		}
		v.Errorf("required field missing (in %s)", where)
	}
	return v
}

// Each calls fn for every key in file order.
func (m Map) Each(fn func(key string, v Value)) {
	for i, k := range m.keys {
		c := m.child(m.vals[i], k.Value)
		c.parent = m.n
		fn(k.Value, c)
	}
}

// KeyAt returns the Value of the key node itself (for messages about a key,
// e.g. an unknown counterparty named as a key).
func (m Map) KeyAt(key string) Value {
	for _, k := range m.keys {
		if k.Value == key {
			return m.child(k, key)
		}
	}
	return m.Get(key)
}

// Known records every key not in known as a warning "unknown key" (an
// error when the Doc is Strict), located at the key.
func (m Map) Known(known ...string) { m.KnownHint(nil, known...) }

// KnownHint is Known with an explanation appended for particular unknown
// keys, e.g. legacy keys that a newer format replaced.
func (m Map) KnownHint(hints map[string]string, known ...string) {
	set := make(map[string]bool, len(known))
	for _, k := range known {
		set[k] = true
	}
	for _, k := range m.keys {
		if set[k.Value] {
			continue
		}
		msg := "unknown key, ignored"
		if m.doc.Strict {
			msg = "unknown key"
		}
		if h, ok := hints[k.Value]; ok {
			msg += "; " + h
		} else if s := closest(k.Value, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		e := m.child(k, k.Value).At("%s", msg)
		if m.doc.Strict {
			m.doc.addErr(e)
		} else {
			m.doc.warnings = append(m.doc.warnings, e)
		}
	}
}

// closest returns the known key within edit distance 2 of key, if any, to
// catch typos like "ticks_per_dya".
func closest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// FloatAtLeast returns a number that must be >= minimum (def when absent);
// a smaller one is recorded as an error and def is returned.
func (v Value) FloatAtLeast(def, minimum float64) float64 {
	f := v.Float(def)
	if f < minimum {
		v.Errorf("must be at least %g, got %g", minimum, f)
		return def
	}
	return f
}

// IntAtLeast is FloatAtLeast for integers.
func (v Value) IntAtLeast(def, minimum int) int {
	n := v.Int(def)
	if n < minimum {
		v.Errorf("must be at least %d, got %d", minimum, n)
		return def
	}
	return n
}
