// Package cdf draws the bench's plots: the cumulative distribution of
// release errors per row, on a log-scale axis in microseconds, as SVG.
package cdf

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Series is one curve of the plot: a name and its samples in microseconds.
type Series struct {
	Name   string
	Values []float64
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH           = 1200, 560
	plotLeft, plotRight    = 80, 720 // the axes' box
	plotTop, plotBottom    = 50, 490
	legendX, legendY       = 760, 60
	legendStep             = 20
	minDecade, maxDecadeLn = -1, 7 // clamp the x axis to 0.1 us .. 10 s
)

// palette holds the curves' colours; past its end they repeat dashed.
var palette = []string{
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
	"#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
}

// Write writes an SVG plot of the cumulative distribution of each series
// on a log-scale x axis in microseconds. Values at or below the axis's
// lower end are drawn at it; series without values are left out of the
// curves but kept in the legend, marked "no data".
func Write(w io.Writer, title, xLabel string, series []Series) error {
	lo, hi := decades(series)
	bw := bufio.NewWriter(w)
	p := &svgPlot{w: bw, lo: lo, hi: hi}
	p.header(title)
	p.axes(xLabel)
	for i, s := range series {
		p.curve(i, s)
		p.legend(i, s)
	}
	p.printf("</svg>\n")
	if p.err != nil {
		return p.err
	}
	return bw.Flush()
}

// decades returns the x axis's range as powers of ten that hold every
// positive value of every series, clamped to [minDecade, maxDecadeLn].
func decades(series []Series) (lo, hi int) {
	vmin, vmax := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, v := range s.Values {
			if v > 0 {
				vmin, vmax = math.Min(vmin, v), math.Max(vmax, v)
			}
		}
	}
	if math.IsInf(vmin, 1) {
		return 0, 3
	}
	lo = max(int(math.Floor(math.Log10(vmin))), minDecade)
	// Twice the largest value, so that a curve never runs along the edge.
	hi = min(max(int(math.Ceil(math.Log10(2*vmax))), lo+1), maxDecadeLn)
	return lo, hi
}

// svgPlot writes one plot; the first write error sticks.
type svgPlot struct {
	w      io.Writer
	lo, hi int
	err    error
}

func (p *svgPlot) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// x maps a value in microseconds to the plot's x coordinate.
func (p *svgPlot) x(v float64) float64 {
	lv := float64(p.lo)
	if v > 0 {
		lv = math.Log10(v)
	}
	lv = math.Min(math.Max(lv, float64(p.lo)), float64(p.hi))
	return plotLeft + (lv-float64(p.lo))/float64(p.hi-p.lo)*(plotRight-plotLeft)
}

// y maps a cumulative fraction to the plot's y coordinate.
func (p *svgPlot) y(f float64) float64 { return plotBottom - f*(plotBottom-plotTop) }

func (p *svgPlot) header(title string) {
	p.printf(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	p.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p.printf(`<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", plotLeft, esc(title))
}

// axes draws the box, the decade grid and ticks, the fraction grid, and the
// axis labels.
func (p *svgPlot) axes(xLabel string) {
	p.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n",
		plotLeft, plotTop, plotRight-plotLeft, plotBottom-plotTop)
	for d := p.lo; d <= p.hi; d++ {
		x := p.x(math.Pow(10, float64(d)))
		p.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, plotTop, x, plotBottom)
		p.printf(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, plotBottom+18, esc(decadeLabel(d)))
		for m := 2; m <= 9 && d < p.hi; m++ {
			xm := p.x(float64(m) * math.Pow(10, float64(d)))
			p.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", xm, plotBottom, xm, plotBottom-4)
		}
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := p.y(f)
		p.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y, plotRight, y)
		p.printf(`<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", plotLeft-6, y+4, f)
	}
	for _, q := range []struct {
		f    float64
		name string
	}{{0.5, "p50"}, {0.99, "p99"}} {
		y := p.y(q.f)
		p.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>`+"\n", plotLeft, y, plotRight, y)
		p.printf(`<text x="%d" y="%.1f" fill="#666">%s</text>`+"\n", plotRight+4, y+4, q.name)
	}
	p.printf(`<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (plotLeft+plotRight)/2, plotBottom+42, esc(xLabel))
	p.printf(`<text x="%d" y="%d" text-anchor="middle" transform="rotate(-90 %d %d)">cumulative fraction of handshakes</text>`+"\n",
		24, (plotTop+plotBottom)/2, 24, (plotTop+plotBottom)/2)
}

// decadeLabel names 10^d microseconds the way a person reads it.
func decadeLabel(d int) string {
	switch {
	case d < 0:
		return fmt.Sprintf("%g µs", math.Pow(10, float64(d)))
	case d < 3:
		return fmt.Sprintf("%d µs", int(math.Pow(10, float64(d))))
	case d < 6:
		return fmt.Sprintf("%d ms", int(math.Pow(10, float64(d-3))))
	default:
		return fmt.Sprintf("%d s", int(math.Pow(10, float64(d-6))))
	}
}

// style returns the stroke attributes of series i.
func style(i int) string {
	s := fmt.Sprintf(`stroke="%s" stroke-width="1.8"`, palette[i%len(palette)])
	if i >= len(palette) {
		s += ` stroke-dasharray="6 3"`
	}
	return s
}

// curve draws series i as a step function.
func (p *svgPlot) curve(i int, s Series) {
	if len(s.Values) == 0 {
		return
	}
	v := slices.Clone(s.Values)
	slices.Sort(v)
	n := float64(len(v))
	var b strings.Builder
	fmt.Fprintf(&b, "%.1f,%.1f", p.x(v[0]), p.y(0))
	for k, val := range v {
		x := p.x(val)
		fmt.Fprintf(&b, " %.1f,%.1f %.1f,%.1f", x, p.y(float64(k)/n), x, p.y(float64(k+1)/n))
	}
	p.printf(`<polyline fill="none" %s points="%s"><title>%s</title></polyline>`+"\n", style(i), b.String(), esc(s.Name))
}

// legend writes series i's entry.
func (p *svgPlot) legend(i int, s Series) {
	y := legendY + i*legendStep
	name := s.Name
	if len(s.Values) == 0 {
		name += " (no data)"
	} else {
		name += fmt.Sprintf(" (n=%d)", len(s.Values))
	}
	p.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`+"\n", legendX, y, legendX+24, y, style(i))
	p.printf(`<text x="%d" y="%d">%s</text>`+"\n", legendX+30, y+4, esc(name))
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}
