// Package svgplot holds what synhold's SVG pictures share (the backoff
// analysis and the Happy Eyeballs timeline): the document's frame, a time
// axis (linear, or logarithmic so that the first of many growing gaps stay
// apart) with steps a reader counts in, a legend laid out left to right, and
// the text helpers every picture needs (escaping, wrapping, clipping,
// plurals).
//
// It writes SVG text by hand, as the pictures do: no dependency, and the
// output is the same byte for byte from one run to the next.
package svgplot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// CharW is the average width, in pixels, of a character of the 12 px
// sans-serif font the pictures use: enough to keep labels from running into
// each other without measuring text.
const CharW = 6.6

// TextWidth estimates how wide s is drawn, in pixels, at 12 px.
func TextWidth(s string) float64 { return float64(len(s)) * CharW }

// Start writes the XML declaration, the opening svg element of a picture
// width × height pixels in the pictures' font, and a white background (a
// transparent one shows as black in some viewers).
func Start(b *bytes.Buffer, width, height int) {
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
}

// End closes what Start opened.
func End(b *bytes.Buffer) { b.WriteString("</svg>\n") }

// Legend lays out a legend's items on one line, left to right.
type Legend struct {
	B     *bytes.Buffer
	X, Y  float64 // where the next item's mark starts; Y is the marks' middle
	Space float64 // between one item's text and the next mark
}

// Item writes mark (drawn by the caller at X, the mark width pixels wide)
// and text after it, and moves X past both.
func (l *Legend) Item(width float64, mark, text string) {
	l.B.WriteString(mark)
	fmt.Fprintf(l.B, `<text x="%.1f" y="%.1f">%s</text>`+"\n", l.X+width, l.Y+4, Esc(text))
	l.X += width + TextWidth(text) + l.Space
}

// Scale maps a time (in any unit: seconds, ms) to an abscissa: linearly,
// or when Log is set in log(1 + t/Unit), which keeps the first gaps of a
// long exponential backoff apart while the last still fit.
type Scale struct {
	X0, W  float64 // the axis' left end and width, in pixels
	Lo, Hi float64 // the times at its ends
	Unit   float64 // for the logarithmic scale: the time that maps to log 2
	Log    bool
}

// f is the scale's warp of t.
func (s Scale) f(t float64) float64 {
	if !s.Log {
		return t
	}
	return math.Copysign(math.Log1p(math.Abs(t)/s.Unit), t)
}

// X returns the abscissa of t.
func (s Scale) X(t float64) float64 {
	lo, hi := s.f(s.Lo), s.f(s.Hi)
	if hi <= lo {
		return s.X0
	}
	return s.X0 + s.W*(s.f(t)-lo)/(hi-lo)
}

// Ticks returns the times to label on the axis: on a linear scale about a
// dozen, a round step apart (see [NiceStep]); on a logarithmic one 0 and
// 1, 2, 3 and 5 times the powers of ten from 0.1, from half a Unit on.
func (s Scale) Ticks() []float64 {
	var out []float64
	if s.Log {
		out = append(out, 0)
		for p := 0.1; p <= s.Hi; p *= 10 {
			for _, m := range []float64{1, 2, 3, 5} {
				if t := p * m; t >= s.Unit/2 && t <= s.Hi {
					out = append(out, t)
				}
			}
		}
		return out
	}
	step := NiceStep((s.Hi - s.Lo) / 12)
	for t := math.Ceil(s.Lo/step) * step; t <= s.Hi; t += step {
		out = append(out, t)
	}
	return out
}

// NiceStep rounds d up to 1, 2 or 5 times a power of ten, a step a reader
// counts in; 1 for d <= 0.
func NiceStep(d float64) float64 {
	if d <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(d)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= d {
			return m * p
		}
	}
	return 10 * p
}

// TrimFloat prints f with at most two decimals and no trailing zeros.
func TrimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Wrap breaks text into lines of at most width characters at spaces,
// indenting the lines after the first by four spaces.
func Wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(text) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
			cur.WriteString("    ")
		}
		if cur.Len() > 0 && strings.TrimSpace(cur.String()) != "" {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if strings.TrimSpace(cur.String()) != "" {
		lines = append(lines, cur.String())
	}
	return lines
}

// Clip shortens s to n characters, the last an ellipsis.
func Clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Esc escapes s for XML text and attributes (and replaces what XML cannot
// hold, so that a client's odd bytes cannot break the document).
func Esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Plural prints n and noun, with an s unless n is 1.
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
