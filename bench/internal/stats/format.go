package stats

import (
	"fmt"
)

// FmtUS formats a figure in microseconds with a unit that suits its size.
func FmtUS(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a < 10:
		return fmt.Sprintf("%.1f µs", v)
	case a < 1000:
		return fmt.Sprintf("%.0f µs", v)
	case a < 1e6:
		return fmt.Sprintf("%.2f ms", v/1e3)
	default:
		return fmt.Sprintf("%.3f s", v/1e6)
	}
}

// Dist formats s as p50 | p99 | max | mean table cells, or dashes when it
// holds nothing.
func Dist(s Summary) string {
	if s.N == 0 {
		return "– | – | – | –"
	}
	return fmt.Sprintf("%s | %s | %s | %s", FmtUS(s.P50US), FmtUS(s.P99US), FmtUS(s.MaxUS), FmtUS(s.MeanUS))
}

// Cell formats v, one figure of s (its P99US, say), or a dash when s holds
// nothing.
func Cell(s Summary, v float64) string {
	if s.N == 0 {
		return "–"
	}
	return FmtUS(v)
}

// OrDash is s, or a dash for an empty table cell.
func OrDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
