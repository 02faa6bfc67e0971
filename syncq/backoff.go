package syncq

import (
	"math/rand/v2"
	"time"
)

// Defaults of the engine's backoff.
const (
	DefaultMinBackoff    = 2 * time.Second
	DefaultMaxBackoff    = 10 * time.Minute
	DefaultMaxRetryAfter = time.Hour
)

// backoff is how long to wait after the n-th consecutive failure (n ≥ 1):
// min doubled n-1 times, capped at max, with "equal jitter" (a random point
// in the upper half), so nodes that lost the link together do not all come
// back at the same second.
func backoff(n int, minD, maxD time.Duration, rnd func() float64) time.Duration {
	if n < 1 {
		n = 1
	}
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	if rnd == nil {
		rnd = rand.Float64
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}
