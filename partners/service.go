package partners

import "time"

// Service makes the changes of this package: partners, keys,
// collaborations and their rules, each with its audit entry in the
// caller's transaction. Reads are package functions.
type Service struct {
	// Now stamps what the service records; default time.Now.
	Now func() time.Time
}

// now is the service's clock, to the microsecond the database keeps.
func (s *Service) now() time.Time {
	t := time.Now()
	if s != nil && s.Now != nil {
		t = s.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}
