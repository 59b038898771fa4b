package happyeyeballs

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/synhold/synhold/internal/svgplot"
)

// maxDrawn bounds the rows of the picture; the summary still counts every
// pair.
const maxDrawn = 200

// Layout of the picture, in pixels.
const (
	svgWidth  = 1400
	svgLeft   = 270 // room for the row labels
	svgRight  = 30
	svgTop    = 124 // title, counts, legend and the axis' labels above the rows
	svgRowH   = 100
	svgAxisH  = 48
	colorV6   = "#1f4e9e"
	colorV4   = "#b35806"
	colorOK   = "#1b7a2f"
	colorBad  = "#d62728"
	colorGrey = "#8c8c8c"
	colorHold = "#e4e4e4"
)

// WriteSVG draws the report as an SVG timeline, titled title: one row per
// pair (the first 200), its IPv6 and IPv4 lanes against ms since the
// server's reply; in each lane the new connections' SYNs (filled circles,
// classes "syn"), retransmitted SYNs (hollow, "retransmit"), how long the
// server held them (grey bar, "hold"), the side's release instant (dashed,
// "want") and release ("release"), the SYN-ACKs (diamonds, "synack") and
// the winner's accept (a ringed star, "winner"); between the two families'
// first SYNs the attempt delay, drawn as a bracket and labelled
// ("attempt-delay"). Each row's label gives the verdict and deviations,
// and under the lanes the judgement's sentence. Above the rows: the counts
// per verdict and deviation.
func (r Report) WriteSVG(w io.Writer, title string) error {
	var b bytes.Buffer
	newTimeline(r).draw(&b, title)
	_, err := w.Write(b.Bytes())
	return err
}

// timeline is a report being drawn.
type timeline struct {
	r    Report
	rows []PairReport
	sc   svgplot.Scale // of ms since the reply
}

func newTimeline(r Report) *timeline {
	tl := &timeline{r: r, rows: r.Pairs[:min(len(r.Pairs), maxDrawn)]}
	lo, hi := 0.0, 100.0
	for _, p := range tl.rows {
		hi = math.Max(hi, math.Max(p.SlowMS, p.ClosedMS))
		for _, m := range p.Marks {
			lo, hi = math.Min(lo, m.MS), math.Max(hi, m.MS)
		}
	}
	tl.sc = svgplot.Scale{X0: svgLeft, W: svgWidth - svgLeft - svgRight, Lo: lo, Hi: hi * 1.03}
	return tl
}

func (tl *timeline) draw(b *bytes.Buffer, title string) {
	height := svgTop + max(1, len(tl.rows))*svgRowH + svgAxisH + 30
	svgplot.Start(b, svgWidth, height)
	// The sentences under the lanes, as wide as the row, are cut at its
	// right edge; each row's title holds the whole.
	fmt.Fprintf(b, `<clipPath id="why"><rect x="20" y="0" width="%d" height="%d"/></clipPath>`+"\n", svgWidth-40, height)
	tl.header(b, title)
	axisY := float64(svgTop + max(1, len(tl.rows))*svgRowH)
	tl.axis(b, axisY)
	if len(tl.rows) == 0 {
		fmt.Fprintf(b, `<text x="20" y="%d">%s</text>`+"\n", svgTop+svgRowH/2, svgplot.Esc("No pair was judged."))
	}
	for i, p := range tl.rows {
		tl.row(b, p, float64(svgTop+i*svgRowH))
	}
	if n := len(tl.r.Pairs) - len(tl.rows) + tl.r.Omitted; n > 0 {
		fmt.Fprintf(b, `<text x="20" y="%.1f" fill="#333333">%s</text>`+"\n", axisY+svgAxisH+14,
			svgplot.Esc(svgplot.Plural(n, "more pair")+" judged and counted above, not drawn."))
	}
	svgplot.End(b)
}

// header writes the title, the counts and the legend.
func (tl *timeline) header(b *bytes.Buffer, title string) {
	if title == "" {
		title = "Happy Eyeballs timeline"
	}
	s := tl.r.Summary
	fmt.Fprintf(b, `<text x="20" y="28" font-size="18" font-weight="bold">%s</text>`+"\n", svgplot.Esc(title))
	var devs []string
	for _, d := range deviationOrder {
		if n := s.Deviations[d]; n > 0 {
			devs = append(devs, fmt.Sprintf("%s %d", d, n))
		}
	}
	if len(devs) == 0 {
		devs = append(devs, "none")
	}
	fmt.Fprintf(b, `<text x="20" y="52" font-size="14"><tspan font-weight="bold">%d pairs:</tspan> <tspan fill="%s">%d conform</tspan>, <tspan fill="%s">%d deviate</tspan>, %d unknown.   Deviations: %s.</text>`+"\n",
		s.Pairs, colorOK, s.Verdicts[Conforms], colorBad, s.Verdicts[Deviates], s.Verdicts[Unknown], svgplot.Esc(strings.Join(devs, ", ")))
	l := svgplot.Legend{B: b, X: 20, Y: 84, Space: 22}
	item, y := l.Item, l.Y
	item(14, synMark(l.X+5, y, colorGrey, false), "SYN")
	item(14, synMark(l.X+5, y, colorGrey, true), "retransmitted SYN")
	item(26, fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="20" height="10" fill="%s"/>`, l.X, y-5, colorHold), "held")
	item(14, fmt.Sprintf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,2"/>`, l.X+5, y-8, l.X+5, y+8, colorGrey), "release instant")
	item(14, fmt.Sprintf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`, l.X+5, y-8, l.X+5, y+8, colorGrey), "released")
	item(14, diamond(l.X+5, y, colorGrey), "SYN-ACK")
	item(22, star(l.X+8, y, colorOK), "winner accepted")
	item(40, fmt.Sprintf(`<path d="M%.1f %.1fV%.1fH%.1fV%.1f" fill="none" stroke="#333333"/>`, l.X, y+6, y-4, l.X+34, y+6), "attempt delay (first SYN to the other family's first SYN)")
}

// axis draws the time axis and the grid.
func (tl *timeline) axis(b *bytes.Buffer, y float64) {
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", svgLeft, y+6, svgWidth-svgRight, y+6)
	for _, t := range tl.sc.Ticks() {
		x := tl.sc.X(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e2e2e2"/>`+"\n", x, svgTop, x, y+6)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x, y+6, x, y+11)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", x, y+25, t)
		// Again above the rows, for a report too long to see both ends.
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10" fill="#666666">%g ms</text>`+"\n", x, svgTop-9, t)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333333">%s</text>`+"\n",
		float64(svgLeft+svgWidth-svgRight)/2, y+42, svgplot.Esc("ms since the server replied with the pair's ports"))
}

// row draws one pair, its top at y.
func (tl *timeline) row(b *bytes.Buffer, p PairReport, top float64) {
	color := map[Conformance]string{Conforms: colorOK, Deviates: colorBad, Unknown: colorGrey}[p.Verdict]
	fmt.Fprintf(b, `<g class="pair"><title>%s</title>`+"\n", svgplot.Esc(p.Why))
	fmt.Fprintf(b, `<rect x="10" y="%.1f" width="%d" height="%d" fill="#f7f7f7"/>`+"\n", top+3, svgWidth-20, svgRowH-6)
	kind := fmt.Sprintf("slow IPv%d; IPv4 port %d", p.Slow, p.IPv4Port)
	if p.SamePort {
		kind = fmt.Sprintf("slow IPv%d; one port %d", p.Slow, p.IPv4Port)
	}
	fmt.Fprintf(b, `<text x="20" y="%.1f" font-size="14" font-weight="bold">pair %d</text>`+"\n", top+20, p.Pair)
	fmt.Fprintf(b, `<text x="20" y="%.1f">%s</text>`+"\n", top+36, svgplot.Esc(kind))
	devs := strings.Join(deviationStrings(p.Deviations), ", ")
	fmt.Fprintf(b, `<text x="20" y="%.1f" fill="%s" font-weight="bold">%s</text>`+"\n", top+54, color, svgplot.Esc(string(p.Verdict)))
	if devs != "" {
		fmt.Fprintf(b, `<text x="20" y="%.1f" fill="%s" font-size="11">%s</text>`+"\n", top+70, color, svgplot.Esc(devs))
	}
	lanes := map[Family]float64{6: top + 22, 4: top + 48}
	for _, f := range []Family{6, 4} {
		tl.lane(b, p, f, lanes[f])
	}
	tl.attemptDelay(b, p, lanes)
	fmt.Fprintf(b, `<text x="20" y="%.1f" fill="#333333" clip-path="url(#why)">%s</text>`+"\n", top+88, svgplot.Esc(p.Why))
	b.WriteString("</g>\n")
}

// lane draws one family of a pair at height y.
func (tl *timeline) lane(b *bytes.Buffer, p PairReport, f Family, y float64) {
	color := colorV4
	if f == 6 {
		color = colorV6
	}
	want := p.FastMS
	if f == p.Slow {
		want = p.SlowMS
	}
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", svgLeft-6, y+4, color, ipName(int(f)))
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#cccccc"/>`+"\n", svgLeft, y, svgWidth-svgRight, y)
	fmt.Fprintf(b, `<line class="want" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,2"><title>%s</title></line>`+"\n",
		tl.sc.X(want), y-11, tl.sc.X(want), y+11, color, svgplot.Esc(fmt.Sprintf("%s release instant: %.2f ms", f, want)))
	// Held: from each new connection's SYN to its side's release (or
	// SYN-ACK, or the pair's close).
	var release, synack float64 = -1, -1
	for _, m := range p.Marks {
		if m.Family != f {
			continue
		}
		switch m.Kind {
		case "release":
			if release < 0 {
				release = m.MS
			}
		case "synack":
			if synack < 0 {
				synack = m.MS
			}
		}
	}
	for _, m := range p.Marks {
		if m.Family != f || m.Kind != "syn" {
			continue
		}
		end := p.ClosedMS
		for _, e := range []float64{release, synack} {
			if e >= m.MS && e < end {
				end = e
			}
		}
		fmt.Fprintf(b, `<rect class="hold" x="%.1f" y="%.1f" width="%.1f" height="10" fill="%s"><title>%s</title></rect>`+"\n",
			tl.sc.X(m.MS), y-5, math.Max(tl.sc.X(end)-tl.sc.X(m.MS), 1), colorHold, svgplot.Esc(fmt.Sprintf("%s held %.2f ms", f, end-m.MS)))
	}
	for _, m := range p.Marks {
		if m.Family != f {
			continue
		}
		x := tl.sc.X(m.MS)
		tip := svgplot.Esc(fmt.Sprintf("%s %s at %.3f ms (%s) %s", f, m.Kind, m.MS, m.At.Format("15:04:05.000000"), m.Client))
		switch m.Kind {
		case "syn", "retransmit":
			fmt.Fprintf(b, `<g class="%s"><title>%s</title>%s</g>`+"\n", m.Kind, tip, synMark(x, y, color, m.Kind == "retransmit"))
		case "release":
			fmt.Fprintf(b, `<line class="release" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"><title>%s</title></line>`+"\n", x, y-9, x, y+9, color, tip)
		case "synack":
			fmt.Fprintf(b, `<g class="synack"><title>%s</title>%s</g>`+"\n", tip, diamond(x, y, color))
		case "connected":
			fmt.Fprintf(b, `<g class="winner"><title>%s</title>%s</g>`+"\n", tip, star(x, y, colorOK))
			label := fmt.Sprintf("won %.1f ms", m.MS)
			lx, anchor := x+12, "start"
			if lx+svgplot.TextWidth(label) > svgWidth-svgRight {
				lx, anchor = x-12, "end"
			}
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s" font-weight="bold">%s</text>`+"\n", lx, y+4, anchor, colorOK, svgplot.Esc(label))
		}
	}
}

// attemptDelay draws the bracket from the first family's first SYN to the
// other's, labelled with the delay.
func (tl *timeline) attemptDelay(b *bytes.Buffer, p PairReport, lanes map[Family]float64) {
	if p.AttemptDelayMS == nil || p.First == 0 {
		return
	}
	first := firstSYNMS(p, p.First)
	x1, x2 := tl.sc.X(first), tl.sc.X(first+*p.AttemptDelayMS)
	y := math.Min(lanes[4], lanes[6]) - 14
	color := "#333333"
	if p.Has(NoAttemptDelay) || p.Has(ShortAttemptDelay) || p.Has(LongAttemptDelay) {
		color = colorBad
	}
	label := fmt.Sprintf("attempt delay %.2f ms", *p.AttemptDelayMS)
	fmt.Fprintf(b, `<g class="attempt-delay"><path d="M%.1f %.1fV%.1fH%.1fV%.1f" fill="none" stroke="%s"/>`, x1, lanes[p.First]-7, y, x2, lanes[10-p.First]-7, color)
	lx := math.Min(math.Max(x2+4, (x1+x2)/2-svgplot.TextWidth(label)/2), svgWidth-svgRight-svgplot.TextWidth(label))
	anchor := "start"
	if x2-x1 > svgplot.TextWidth(label)+8 {
		lx, anchor = (x1+x2)/2, "middle"
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s" font-size="11">%s</text></g>`+"\n", lx, y-3, anchor, color, svgplot.Esc(label))
}

// firstSYNMS is when family f's first new SYN came, in ms after the reply.
func firstSYNMS(p PairReport, f Family) float64 {
	for _, m := range p.Marks {
		if m.Family == f && m.Kind == "syn" {
			return m.MS
		}
	}
	return 0
}

func deviationStrings(ds []Deviation) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}

// synMark is a SYN: a filled circle, hollow for a retransmission.
func synMark(x, y float64, color string, hollow bool) string {
	if hollow {
		return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="4.5" fill="white" stroke="%s" stroke-width="2"/>`, x, y, color)
	}
	return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/>`, x, y, color)
}

// diamond is a SYN-ACK.
func diamond(x, y float64, color string) string {
	return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="%s"/>`, x, y-6, x+6, y, x, y+6, x-6, y, color)
}

// star is the winner's accept: a five-pointed star in a ring.
func star(x, y float64, color string) string {
	var d strings.Builder
	for i := range 10 {
		r := 7.0
		if i%2 == 1 {
			r = 3
		}
		a := math.Pi/2 + float64(i)*math.Pi/5
		fmt.Fprintf(&d, "%s%.1f %.1f", map[bool]string{true: "M", false: "L"}[i == 0], x+r*math.Cos(a), y-r*math.Sin(a))
	}
	return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="9" fill="none" stroke="%s" stroke-opacity="0.4" stroke-width="2"/><path d="%sZ" fill="%s"/>`, x, y, color, d.String(), color)
}
