package schema

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the wire decoder, as a hostile
// publisher could: it must return a record or an error, never panic, and a
// record it accepts must encode again and decode to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, r := range sampleRecords() {
		b, err := Encode(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"kind":"event","experiment_id":"e","key":"4","data":{"seq":4,"event_type":"iteration_start"}}`))
	f.Add([]byte(`{"v":1,"kind":"iteration","experiment_id":"e","key":"1","data":null}`))
	f.Add([]byte(`{"v":1,"kind":"heartbeat","experiment_id":"e\u001b[2J","data":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if r != nil {
				t.Fatal("Decode returned a record with an error")
			}
			return
		}
		b, err := Encode(r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v\n%s", err, data)
		}
		r2, err := Decode(b)
		if err != nil {
			t.Fatalf("an encoded record does not decode: %v\n%s", err, b)
		}
		b2, err := Encode(r2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}
