package analysis

import "errors"

// ErrBadArgument marks a request the caller can fix: an unknown agent or
// parameter, an iteration range outside the run.
var ErrBadArgument = errors.New("bad argument")
