// Package svgtest reads back the SVG pictures synhold draws, for their
// tests: it checks that a picture is well-formed SVG and counts its marks.
package svgtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// Parse fails t unless doc is well-formed XML whose root is an svg element
// in the SVG namespace; it returns how many elements carry each class (an
// element of class "attempt outside" counts for both) and all the text, each
// piece followed by a space.
func Parse(t testing.TB, doc []byte) (classes map[string]int, text string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	classes = map[string]int{}
	var b strings.Builder
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
				if e.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root element %v, want svg in the SVG namespace", e.Name)
				}
			}
			for _, a := range e.Attr {
				if a.Name.Local == "class" {
					for _, c := range strings.Fields(a.Value) {
						classes[c]++
					}
				}
			}
		case xml.CharData:
			b.Write(e)
			b.WriteByte(' ')
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	return classes, b.String()
}
