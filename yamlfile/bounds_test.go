package yamlfile

import "testing"

func TestAtLeast(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		read    func(Value) float64
		want    float64
		wantErr bool
	}{
		{"float in range", "x: 0.5", func(v Value) float64 { return v.FloatAtLeast(9, 0) }, 0.5, false},
		{"float below gives default", "x: -1", func(v Value) float64 { return v.FloatAtLeast(9, 0) }, 9, true},
		{"float absent gives default", "y: 1", func(v Value) float64 { return v.FloatAtLeast(9, 0) }, 9, false},
		{"int in range", "x: 3", func(v Value) float64 { return float64(v.IntAtLeast(7, 1)) }, 3, false},
		{"int below gives default", "x: 0", func(v Value) float64 { return float64(v.IntAtLeast(7, 1)) }, 7, true},
	}
	for _, tc := range cases {
		d := mustParse(t, tc.src)
		got := tc.read(d.Root().Map().Get("x"))
		errs := d.Errors()
		if got != tc.want || (len(errs) > 0) != tc.wantErr {
			t.Errorf("%s: got %v with errors %v, want %v (error: %v)", tc.name, got, errs, tc.want, tc.wantErr)
		}
		if tc.wantErr && len(errs) > 0 && (errs[0].Line != 1 || errs[0].Field != "x") {
			t.Errorf("%s: error at line %d field %q, want line 1 field x", tc.name, errs[0].Line, errs[0].Field)
		}
	}
}
