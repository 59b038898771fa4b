package cdf

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// parseSVG decodes every token of an SVG document and returns the names of
// its elements, failing the test if it is not well-formed XML.
func parseSVG(t *testing.T, doc string) map[string]int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	elems := map[string]int{}
	depth, root := 0, ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = e.Name.Local
			}
			depth++
			elems[e.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if root != "svg" || depth != 0 {
		t.Fatalf("root element %q, depth at the end %d; want a closed <svg>", root, depth)
	}
	return elems
}

func TestWriteIsWellFormedXML(t *testing.T) {
	series := []Series{
		{Name: "Replay <timerfd> & spin \"200 µs\"", Values: []float64{12, 50.5, 7, 480, 3000}},
		{Name: "Retransmit", Values: []float64{990000, 1e6}},
		{Name: "zeros, negatives and huge", Values: []float64{0, -3, 1e12}},
		{Name: "empty", Values: nil},
	}
	for i := range 12 { // past the palette's end: dashed curves
		series = append(series, Series{Name: "extra", Values: []float64{float64(i + 1)}})
	}
	var b strings.Builder
	if err := Write(&b, "Release error <&>", "µs", series); err != nil {
		t.Fatal(err)
	}
	elems := parseSVG(t, b.String())
	if got, want := elems["polyline"], len(series)-1; got != want {
		t.Errorf("%d curves, want %d (one per series with values)", got, want)
	}
	for _, want := range []string{"Replay &lt;timerfd&gt; &amp; spin", "(no data)", "1 s", "µs", "cumulative fraction"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

func TestWriteWithNoSeries(t *testing.T) {
	var b strings.Builder
	if err := Write(&b, "nothing", "µs", nil); err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b.String())
}

func TestDecades(t *testing.T) {
	for _, tc := range []struct {
		values []float64
		lo, hi int
	}{
		{nil, 0, 3},
		{[]float64{5, 150}, 0, 3},
		{[]float64{5, 600}, 0, 4},
		{[]float64{0.5, 2e6}, -1, 7},
		{[]float64{1e-9, 1e12}, minDecade, maxDecadeLn},
		{[]float64{100}, 2, 3},
	} {
		lo, hi := decades([]Series{{Values: tc.values}})
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("decades(%v) = %d, %d, want %d, %d", tc.values, lo, hi, tc.lo, tc.hi)
		}
	}
}

// sampleResults is a run with one row of every kind.
