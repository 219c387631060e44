package experiment

import "testing"

// Expected values were computed independently with Python's hashlib.
func TestIterationSeed(t *testing.T) {
	tests := []struct {
		master int64
		iter   int
		agent  string
		want   int64
	}{
		{42, 0, "BANK_A", 1088125515},
		{42, 0, "BANK_B", 747645807},
		{42, 1, "BANK_A", 8987875},
		{42, 24, "BANK_B", 279504173},
		{7, 3, "X", 120751257},
		{-5, 0, "BANK_A", 1905040934},
	}
	for _, tt := range tests {
		if got := IterationSeed(tt.master, tt.iter, tt.agent); got != tt.want {
			t.Errorf("IterationSeed(%d, %d, %q) = %d, want %d", tt.master, tt.iter, tt.agent, got, tt.want)
		}
	}
}

func TestSampleSeed(t *testing.T) {
	tests := []struct {
		seed int64
		k    int
		want int64
	}{
		{42, 0, 914360478},
		{42, 1, 535076046},
		{42, 49, 1021448408},
		{1088125515, 0, 58745492},
		{123456789, 7, 1795513869},
	}
	for _, tt := range tests {
		if got := SampleSeed(tt.seed, tt.k); got != tt.want {
			t.Errorf("SampleSeed(%d, %d) = %d, want %d", tt.seed, tt.k, got, tt.want)
		}
	}
}
