package svgplot

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/synhold/synhold/internal/svgplot/svgtest"
)

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{-1, 1}, {0, 1}, {0.07, 0.1}, {0.1, 0.1}, {0.11, 0.2}, {3, 5}, {8.6, 10}, {10, 10}, {12, 20}, {450, 500}, {140000, 200000},
	} {
		if got := NiceStep(tc.in); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("NiceStep(%g) = %g, want %g", tc.in, got, tc.want)
		}
	}
}

func TestScale(t *testing.T) {
	lin := Scale{X0: 100, W: 1000, Lo: 0, Hi: 1030}
	for _, tc := range []struct{ t, x float64 }{{0, 100}, {1030, 1100}, {515, 600}} {
		if got := lin.X(tc.t); math.Abs(got-tc.x) > 1e-9 {
			t.Errorf("linear X(%g) = %g, want %g", tc.t, got, tc.x)
		}
	}
	if got, want := lin.Ticks(), []float64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}; !slices.Equal(got, want) {
		t.Errorf("linear ticks %v, want %v", got, want)
	}
	log := Scale{X0: 0, W: 100, Lo: 0, Hi: 540, Unit: 1, Log: true}
	// The first second takes as much room as from 1 to 3 s: log2(1+t).
	if a, b := log.X(1)-log.X(0), log.X(3)-log.X(1); math.Abs(a-b) > 1e-9 {
		t.Errorf("logarithmic: 0-1 s is %g px, 1-3 s %g px; want equal", a, b)
	}
	if got, want := log.Ticks(), []float64{0, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500}; !slices.Equal(got, want) {
		t.Errorf("logarithmic ticks %v, want %v", got, want)
	}
	if got := (Scale{X0: 7, Lo: 5, Hi: 5}).X(9); got != 7 {
		t.Errorf("an empty scale puts 9 at %g, want its left end 7", got)
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{TrimFloat(2.50), "2.5"}, {TrimFloat(3), "3"}, {TrimFloat(0.125), "0.12"},
		{Clip("abcdef", 4), "abc…"}, {Clip("abc", 4), "abc"},
		{Plural(1, "pair"), "1 pair"}, {Plural(0, "pair"), "0 pairs"}, {Plural(3, "more pair"), "3 more pairs"},
		{Esc(`<a & "b">`), "&lt;a &amp; &#34;b&#34;&gt;"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if got, want := Wrap("one two three four", 9), []string{"one two", "    three", "    four"}; !slices.Equal(got, want) {
		t.Errorf("Wrap: %q, want %q", got, want)
	}
}

// TestDocument draws a picture with every piece and reads it back: it must
// be well-formed SVG even with text that XML would choke on.
func TestDocument(t *testing.T) {
	var b bytes.Buffer
	Start(&b, 300, 100)
	l := Legend{B: &b, X: 20, Y: 50, Space: 10}
	l.Item(14, `<circle class="mark" cx="25" cy="50" r="5"/>`, `a <b> & "c"`+"\x01")
	if want := 20 + 14 + TextWidth(`a <b> & "c"`+"\x01") + 10; l.X != want {
		t.Errorf("after one item the legend is at %g, want %g", l.X, want)
	}
	End(&b)
	classes, text := svgtest.Parse(t, b.Bytes())
	if classes["mark"] != 1 || !strings.Contains(text, `a <b> & "c"`) {
		t.Errorf("read back classes %v and text %q", classes, text)
	}
}
