package policy

import "testing"

func TestReleasesAll(t *testing.T) {
	fifo, err := Builtin("Fifo")
	if err != nil {
		t.Fatal(err)
	}
	dl, err := Builtin("Deadline")
	if err != nil {
		t.Fatal(err)
	}
	if !fifo.ReleasesAll() || dl.ReleasesAll() {
		t.Fatalf("ReleasesAll: Fifo %v (want true), Deadline %v (want false)", fifo.ReleasesAll(), dl.ReleasesAll())
	}
}
