// Package clock is the time source of the parts that wait: the scheduler
// and the leader lease take one, so that their tests move time instead of
// sleeping. It must not know what waits on it.
package clock

import "time"

// Clock tells the time and fires at a given time.
type Clock interface {
	Now() time.Time
	// At fires once the clock reaches t. An absolute time, not a duration,
	// so that time passing between reading Now and arming the timer is not
	// added to the wait.
	At(t time.Time) <-chan time.Time
}

// Real returns the wall clock.
func Real() Clock { return wall{} }

type wall struct{}

func (wall) Now() time.Time                  { return time.Now() }
func (wall) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }
