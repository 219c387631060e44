package yamlfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `name: demo
count: 3
rate: 2.5
big: 1e6
on: true
money: 150000
items:
  - id: A
    weight: 1
  - id: B
    extra: x
nested:
  inner:
    deep: 7
`

func mustParse(t *testing.T, src string) *Doc {
	t.Helper()
	d, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

func TestGetters(t *testing.T) {
	d := mustParse(t, sample)
	m := d.Root().Map()
	if got := m.Get("name").String(""); got != "demo" {
		t.Errorf("name = %q", got)
	}
	if got := m.Get("count").Int(0); got != 3 {
		t.Errorf("count = %d", got)
	}
	if got := m.Get("count").Float(0); got != 3 {
		t.Errorf("count as float = %v", got)
	}
	if got := m.Get("rate").Float(0); got != 2.5 {
		t.Errorf("rate = %v", got)
	}
	if got := m.Get("big").Money(0); got != 1000000 {
		t.Errorf("big = %d", got)
	}
	if got := m.Get("on").Bool(false); !got {
		t.Errorf("on = %v", got)
	}
	if got := m.Get("missing").Int64(42); got != 42 {
		t.Errorf("default = %d", got)
	}
	items := m.Get("items").List()
	if len(items) != 2 {
		t.Fatalf("items = %d", len(items))
	}
	if p := items[1].Map().Get("extra").Path(); p != "items[1].extra" {
		t.Errorf("path = %q", p)
	}
	deep := m.Get("nested").Map().Get("inner").Map().Get("deep")
	if deep.Int(0) != 7 || deep.Path() != "nested.inner.deep" || deep.Line() != 14 || deep.Column() != 11 {
		t.Errorf("deep = %d at %s %d:%d", deep.Int(0), deep.Path(), deep.Line(), deep.Column())
	}
	if err := d.Err(); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestTypeErrors(t *testing.T) {
	cases := []struct {
		name, src string
		get       func(m Map)
		want      string
	}{
		{"int from string", "a: x\n", func(m Map) { m.Get("a").Int(0) }, `t.yaml:1:4: a: want an integer, got string "x"`},
		{"int from fraction", "a: 2.5\n", func(m Map) { m.Get("a").Int(0) }, `t.yaml:1:4: a: want an integer, got 2.5`},
		{"money fraction", "a: 10.5\n", func(m Map) { m.Get("a").Money(0) }, `t.yaml:1:4: a: want an amount in integer cents, got 10.5`},
		{"float not finite", "a: .nan\n", func(m Map) { m.Get("a").Float(0) }, `t.yaml:1:4: a: want a finite number, got .nan`},
		{"require in non-mapping", "a: 5\n", func(m Map) { m.Get("a").Map().Require("b") }, `t.yaml:1:4: a: want a mapping, got 5`},
		{"float from bool", "a: true\n", func(m Map) { m.Get("a").Float(0) }, `t.yaml:1:4: a: want a number, got boolean true`},
		{"bool from int", "a: 1\n", func(m Map) { m.Get("a").Bool(false) }, `t.yaml:1:4: a: want true or false, got 1`},
		{"list from scalar", "a: 1\n", func(m Map) { m.Get("a").List() }, `t.yaml:1:4: a: want a list, got 1`},
		{"map from list", "a: [1]\n", func(m Map) { m.Get("a").Map() }, `t.yaml:1:4: a: want a mapping, got a list`},
		{"string from map", "a: {b: 1}\n", func(m Map) { m.Get("a").String("") }, `t.yaml:1:4: a: want a string, got a mapping`},
		{"required", "x:\n  b: 1\n", func(m Map) { m.Get("x").Map().Require("a") }, `t.yaml:2:3: x.a: required field missing (in the mapping at line 2)`},
		{"duplicate key", "a: 1\na: 2\n", func(m Map) {}, `t.yaml:2:1: a: duplicate key (first at line 1)`},
		{"list item path", "l:\n  - {a: 1}\n  - {a: z}\n", func(m Map) { m.Get("l").List()[1].Map().Get("a").Int(0) }, `t.yaml:3:9: l[1].a: want an integer, got string "z"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustParse(t, c.src)
			c.get(d.Root().Map())
			err := d.Err()
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if err.Error() != c.want {
				t.Errorf("got  %q\nwant %q", err.Error(), c.want)
			}
			var ye *Error
			if !errors.As(err, &ye) {
				t.Errorf("error is not *Error: %T", err)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	cases := []struct{ src, want string }{
		{"a: 1\nb: 2\nc 2\nd: 3\n", "t.yaml:3: malformed YAML: could not find expected ':'"},
		{"", "t.yaml:1: file is empty"},
		{"a: *nope\n", "t.yaml: malformed YAML: unknown anchor 'nope' referenced"},
	}
	for _, c := range cases {
		_, err := Parse("t.yaml", []byte(c.src))
		if err == nil || err.Error() != c.want {
			t.Errorf("Parse(%q) = %v, want %q", c.src, err, c.want)
		}
	}
}

func TestKnown(t *testing.T) {
	for _, strict := range []bool{false, true} {
		d := mustParse(t, "ticks_per_dya: 1\nnum_days: 2\nzzz: 3\n")
		d.Strict = strict
		m := d.Root().Map()
		m.Known("ticks_per_day", "num_days")
		var got []*Error
		if strict {
			got = d.Errors()
			if len(d.Warnings()) != 0 {
				t.Errorf("strict: warnings %v", d.Warnings())
			}
		} else {
			got = d.Warnings()
			if d.Err() != nil {
				t.Errorf("lenient: error %v", d.Err())
			}
		}
		if len(got) != 2 {
			t.Fatalf("strict=%v: got %d, want 2: %v", strict, len(got), got)
		}
		if got[0].Field != "ticks_per_dya" || got[0].Line != 1 || !strings.Contains(got[0].Msg, `did you mean "ticks_per_day"?`) {
			t.Errorf("first = %v", got[0])
		}
		if got[1].Field != "zzz" || got[1].Line != 3 || strings.Contains(got[1].Msg, "did you mean") {
			t.Errorf("second = %v", got[1])
		}
	}
}

func TestAliasAndEach(t *testing.T) {
	d := mustParse(t, "base: &b {x: 1, y: 2}\nuse: *b\n")
	var keys []string
	sum := 0
	d.Root().Map().Get("use").Map().Each(func(k string, v Value) {
		keys = append(keys, k)
		sum += v.Int(0)
	})
	if strings.Join(keys, ",") != "x,y" || sum != 3 {
		t.Errorf("keys %v sum %d", keys, sum)
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("a: [1, 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	var ye *Error
	if !errors.As(err, &ye) || ye.File != p {
		t.Fatalf("ReadFile error = %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file error = %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 1, Column: 2, Field: "a.b", Msg: "m"}, "f:1:2: a.b: m"},
		{Error{File: "f", Line: 1, Msg: "m"}, "f:1: m"},
		{Error{File: "f", Msg: "m"}, "f: m"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q want %q", got, c.want)
		}
	}
}

func TestKnownHint(t *testing.T) {
	d := mustParse(t, "a: 1\nold_key: 2\n")
	d.Root().Map().KnownHint(map[string]string{"old_key": "use new_key"}, "a", "new_key")
	w := d.Warnings()
	if len(w) != 1 || w[0].Error() != "t.yaml:2:1: old_key: unknown key, ignored; use new_key" {
		t.Fatalf("warnings = %v", w)
	}
}

// Bytes that cannot be in a YAML text file are reported at their line and
// column, which the YAML parser does not give.
func TestParseNonText(t *testing.T) {
	for _, tc := range []struct {
		data, want string
	}{
		{"name: x\nscenario: \xff\xfe\n", "f.yaml:2:11: not UTF-8 text (byte 0xff)"},
		{"a: 1\nb: 2\x00\n", "f.yaml:2:5: control character 0x00"},
		{"\x1b[2Ja: 1\n", "f.yaml:1:1: control character 0x1b"},
	} {
		_, err := Parse("f.yaml", []byte(tc.data))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q...", tc.data, err, tc.want)
		}
	}
	if _, err := Parse("f.yaml", []byte("\ufeffa: \"é\t\"\r\nb: 2\n")); err != nil {
		t.Errorf("a BOM, tabs, CRLF and accents: %v", err)
	}
}
