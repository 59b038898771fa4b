package backoff

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/synhold/synhold/internal/svgplot"
)

// WriteSVG draws the analysis as an SVG picture, titled title: each attempt
// against time, one row per destination address; for every gap the window
// the reference rule allows after the previous attempt (shaded) and the
// expected time in it (dashed); the schedule without jitter from the first
// attempt (grey triangles); attempts whose gap is outside its window in red,
// with how early or late; removed attempts as grey crosses; and the verdict,
// the reference server's verdict, the fit and the named deviations written
// out. Every attempt kept is one element of class "attempt" ("attempt
// outside" when its gap is out of range), every removed one of class
// "removed".
//
// The time axis is linear for short runs and logarithmic (in 1 + t/Initial)
// when the run is longer than 40 initial backoffs, so that the first gaps of
// a long run stay apart; the axis label says which.
func (a Analysis) WriteSVG(w io.Writer, title string) error {
	var b bytes.Buffer
	newPicture(a).draw(&b, title)
	_, err := w.Write(b.Bytes())
	return err
}

// Layout of the picture, in pixels.
const (
	svgWidth   = 1400
	svgLeft    = 250 // room for the row labels
	svgRight   = 40
	svgTop     = 118 // title, verdict and legend above the rows
	svgRowH    = 120
	svgAxisH   = 50
	svgLineH   = 17
	svgRadius  = 5.5
	colorOK    = "#1f4e9e"
	colorBad   = "#d62728"
	colorBand  = "#cdebcf"
	colorExp   = "#1b7a2f"
	colorIdeal = "#8c8c8c"
)

// picture is an analysis being drawn.
type picture struct {
	a    Analysis
	sc   svgplot.Scale
	rows []row
}

// row is one line of the picture: a series, or the removed attempts.
type row struct {
	label, sub string
	series     *Series
	removed    []Removed
}

func newPicture(a Analysis) *picture {
	p := &picture{a: a}
	for i := range a.Series {
		s := &a.Series[i]
		sub := fmt.Sprintf("%s, %s", svgplot.Plural(len(s.Attempts), "attempt"), passFail(s.Passed))
		if s.Has(TooFewAttempts) {
			sub = svgplot.Plural(len(s.Attempts), "attempt") + ": too few to judge"
		}
		p.rows = append(p.rows, row{label: addrString(s.Dst), sub: sub, series: s})
	}
	if len(a.Removed) > 0 {
		p.rows = append(p.rows, row{label: "removed", sub: fmt.Sprintf("%d attempts left out", len(a.Removed)), removed: a.Removed})
	}
	lo, hi := 0.0, 1.0
	for _, s := range a.Series {
		for _, at := range s.Attempts {
			hi = math.Max(hi, secs(at.Time.Sub(a.Start)))
		}
		for _, g := range s.Gaps {
			hi = math.Max(hi, secs(g.At-g.Got+g.Hi))
		}
		hi = math.Max(hi, secs(idealEnd(s, a.Start, a.Policy)))
		if s.Has(TooFewAttempts) {
			_, nextHi := a.Policy.Range(len(s.Gaps))
			hi = math.Max(hi, secs(s.Attempts[len(s.Attempts)-1].Time.Sub(a.Start)+nextHi))
		}
	}
	for _, r := range a.Removed {
		lo, hi = math.Min(lo, secs(r.At)), math.Max(hi, secs(r.At))
	}
	unit := secs(a.Policy.Initial)
	if unit <= 0 {
		unit = 1
	}
	p.sc = svgplot.Scale{X0: svgLeft, W: svgWidth - svgLeft - svgRight, Lo: lo, Hi: hi * 1.02, Unit: unit, Log: hi > 40*unit}
	return p
}

// idealEnd is when the schedule without jitter, started at the series'
// first attempt, reaches its last attempt.
func idealEnd(s Series, start time.Time, p Policy) time.Duration {
	t := s.Attempts[0].Time.Sub(start)
	for n := range s.Gaps {
		t += p.Expected(n)
	}
	return t
}

// draw writes the whole picture.
func (p *picture) draw(b *bytes.Buffer, title string) {
	notes := p.notes()
	height := svgTop + len(p.rows)*svgRowH + svgAxisH + len(notes)*svgLineH + 20
	svgplot.Start(b, svgWidth, height)
	p.header(b, title)
	p.legend(b)
	// The axis and its grid first, so that the rows' marks and labels are
	// drawn over the grid lines.
	axisY := float64(svgTop + len(p.rows)*svgRowH)
	for i := range p.rows {
		p.rowFrame(b, p.rows[i], float64(svgTop+i*svgRowH+svgRowH/2))
	}
	p.axis(b, axisY)
	for i, r := range p.rows {
		y := float64(svgTop + i*svgRowH + svgRowH/2)
		if r.series != nil {
			p.seriesRow(b, r, y)
		} else {
			p.removedRow(b, r, y)
		}
	}
	y := axisY + svgAxisH + 4
	for _, n := range notes {
		fmt.Fprintf(b, `<text x="20" y="%.1f" fill="%s"%s>%s</text>`+"\n", y, n.color, n.weight, svgplot.Esc(n.text))
		y += svgLineH
	}
	svgplot.End(b)
}

// header writes the title and the verdicts.
func (p *picture) header(b *bytes.Buffer, title string) {
	a := p.a
	if title == "" {
		title = "connection backoff"
	}
	fmt.Fprintf(b, `<text x="20" y="28" font-size="18" font-weight="bold">%s</text>`+"\n", svgplot.Esc(title))
	verdict, color := "PASSED", colorExp
	if !a.Passed {
		verdict, color = "FAILED", colorBad
	}
	why := ""
	if a.Reason != nil {
		why = fmt.Sprintf(" (%s: %s)", a.Reason.Kind, a.Reason.Detail)
	}
	fmt.Fprintf(b, `<text x="20" y="52" font-size="14"><tspan font-weight="bold" fill="%s">%s</tspan>%s</text>`+"\n",
		color, verdict, svgplot.Esc(svgplot.Clip(why, 170)))
	pol := a.Policy
	fmt.Fprintf(b, `<text x="20" y="72">%s</text>`+"\n", svgplot.Esc(fmt.Sprintf(
		"reference server's verdict on the same attempts, as one list: %s.   Policy: initial %s, multiplier %g, jitter ±%g%%, max %s; tolerance ±%s.",
		passFail(a.MergedReferencePassed), shortDur(pol.Initial), pol.Multiplier, 100*pol.Jitter, shortDur(pol.Max), shortDur(Tolerance))))
}

// legend explains the marks.
func (p *picture) legend(b *bytes.Buffer) {
	l := svgplot.Legend{B: b, X: 20, Y: 98, Space: 26}
	item, y := l.Item, l.Y
	item(14, fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`, l.X+5, y, svgRadius, colorOK), "attempt, the gap before it under it")
	item(14, fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s" stroke="%s" stroke-width="3" stroke-opacity="0.35"/>`, l.X+5, y, svgRadius, colorBad, colorBad), "gap outside its window")
	item(26, fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="20" height="14" fill="%s"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,2"/>`,
		l.X, y-7, colorBand, l.X+10, y-8, l.X+10, y+8, colorExp), "allowed window after the previous attempt (reference rule), expected time dashed")
	item(14, triangle(l.X+5, y, colorIdeal), "schedule without jitter")
	if len(p.a.Removed) > 0 {
		item(14, cross(l.X+5, y, colorIdeal), "removed")
	}
}

// seriesRow draws one series.
func (p *picture) seriesRow(b *bytes.Buffer, r row, y float64) {
	s := r.series
	start := p.a.Start
	// The schedule without jitter, from the first attempt.
	t := s.Attempts[0].Time.Sub(start)
	fmt.Fprintf(b, `<g class="ideal">`)
	b.WriteString(triangle(p.sc.X(secs(t)), y-30, colorIdeal))
	for n := range s.Gaps {
		t += p.a.Policy.Expected(n)
		b.WriteString(triangle(p.sc.X(secs(t)), y-30, colorIdeal))
	}
	b.WriteString("</g>\n")
	// Windows and expected times, from each previous attempt.
	for _, g := range s.Gaps {
		prev := g.At - g.Got
		x1, x2 := p.sc.X(secs(prev+g.Lo)), p.sc.X(secs(prev+g.Hi))
		fmt.Fprintf(b, `<rect class="window" x="%.1f" y="%.1f" width="%.1f" height="28" fill="%s"><title>%s</title></rect>`+"\n",
			x1, y-14, math.Max(x2-x1, 1), colorBand, svgplot.Esc(fmt.Sprintf("gap %d: allowed %s to %s after the previous attempt", g.Index, shortDur(g.Lo), shortDur(g.Hi))))
		xe := p.sc.X(secs(prev + g.Expected))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,2"/>`+"\n", xe, y-16, xe, y+16, colorExp)
	}
	if s.Has(TooFewAttempts) {
		// Where the next attempt was due, had the client gone on.
		last := s.Attempts[len(s.Attempts)-1].Time.Sub(start)
		lo, hi := p.a.Policy.Range(len(s.Gaps))
		x1, x2 := p.sc.X(secs(last+lo)), p.sc.X(secs(last+hi))
		fmt.Fprintf(b, `<rect class="missing" x="%.1f" y="%.1f" width="%.1f" height="28" fill="none" stroke="%s" stroke-dasharray="4,3"/>`+"\n",
			x1, y-14, math.Max(x2-x1, 1), colorBad)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`+"\n",
			(x1+x2)/2, y+32, colorBad, svgplot.Esc("the next attempt was due here; none came"))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbbbbb"/>`+"\n", svgLeft, y, svgWidth-svgRight, y)
	// Attempts, with the gap that ends at each written under it.
	lanes := []float64{-1e9, -1e9}
	badLanes := []float64{-1e9, -1e9}
	for i, at := range s.Attempts {
		x := p.sc.X(secs(at.Time.Sub(start)))
		tip := fmt.Sprintf("attempt %d at %s (%s) from %s", i+1, shortDur(at.Time.Sub(start)), at.Time.Format(time.RFC3339Nano), addrString(at.Src))
		color, extra := colorOK, ""
		var g *Gap
		if i > 0 {
			g = &s.Gaps[i-1]
			tip += fmt.Sprintf("; gap %d %s, expected %s, allowed %s to %s: %s", g.Index, formatMs(g.Got), formatMs(g.Expected), formatMs(g.Lo), formatMs(g.Hi), g.Verdict)
			if g.Verdict != OK {
				color, extra = colorBad, fmt.Sprintf(` stroke="%s" stroke-width="4" stroke-opacity="0.35"`, colorBad)
			}
		}
		if g != nil && g.Verdict != OK {
			// How far outside: a red line from the window's edge.
			prev := g.At - g.Got
			edge := prev + g.Hi
			if g.Verdict == Early {
				edge = prev + g.Lo
			}
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", p.sc.X(secs(edge)), y, x, y, colorBad)
			off := g.Got - g.Hi
			if g.Verdict == Early {
				off = g.Got - g.Lo
			}
			label := fmt.Sprintf("%s %+.2f s", g.Verdict, secs(off))
			half := svgplot.TextWidth(label) * 0.55
			lx := math.Min(x, svgWidth-svgRight-half)
			for lane, ly := range []float64{y - 40, y - 52} {
				if lx-half > badLanes[lane]+4 || lane == len(badLanes)-1 {
					fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="%s" text-anchor="middle" font-weight="bold">%s</text>`+"\n", lx, ly, colorBad, svgplot.Esc(label))
					badLanes[lane] = lx + half
					break
				}
			}
		}
		class := "attempt"
		if extra != "" {
			class = "attempt outside"
		}
		fmt.Fprintf(b, `<circle class="%s" cx="%.1f" cy="%.1f" r="%.1f" fill="%s"%s><title>%s</title></circle>`+"\n", class, x, y, svgRadius, color, extra, svgplot.Esc(tip))
		if g == nil {
			continue
		}
		label := shortDur(g.Got)
		half := svgplot.TextWidth(label) / 2
		for lane, ly := range []float64{y + 32, y + 48} {
			if x-half > lanes[lane]+4 {
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`+"\n", x, ly, color, svgplot.Esc(label))
				lanes[lane] = x + half
				break
			}
		}
	}
}

// removedRow draws the attempts left out.
func (p *picture) removedRow(b *bytes.Buffer, r row, y float64) {
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbbbbb"/>`+"\n", svgLeft, y, svgWidth-svgRight, y)
	last := -1e9
	for _, rm := range r.removed {
		x := p.sc.X(secs(rm.At))
		fmt.Fprintf(b, `<g class="removed"><title>%s</title>%s</g>`+"\n",
			svgplot.Esc(fmt.Sprintf("%s -> %s at %s: %s: %s", addrString(rm.Attempt.Src), addrString(rm.Attempt.Dst), shortDur(rm.At), rm.Reason, rm.Detail)), cross(x, y, "#555555"))
		label := string(rm.Reason)
		if x-svgplot.TextWidth(label)/2 > last+4 {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555555">%s</text>`+"\n", x, y+24, svgplot.Esc(label))
			last = x + svgplot.TextWidth(label)/2
		}
	}
}

// rowFrame draws a row's background and label.
func (p *picture) rowFrame(b *bytes.Buffer, r row, y float64) {
	fmt.Fprintf(b, `<rect x="10" y="%.1f" width="%d" height="%d" fill="%s"/>`+"\n", y-svgRowH/2+3, svgWidth-20, svgRowH-6, "#f7f7f7")
	fmt.Fprintf(b, `<text x="20" y="%.1f" font-size="14" font-weight="bold">%s</text>`+"\n", y-4, svgplot.Esc(r.label))
	fmt.Fprintf(b, `<text x="20" y="%.1f">%s</text>`+"\n", y+14, svgplot.Esc(r.sub))
}

// axis draws the time axis under the rows.
func (p *picture) axis(b *bytes.Buffer, y float64) {
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", svgLeft, y+6, svgWidth-svgRight, y+6)
	last := -1e9
	for _, t := range p.sc.Ticks() {
		x := p.sc.X(t)
		if x < last+36 {
			continue
		}
		last = x
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x, y+6, x, y+11)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e2e2e2"/>`+"\n", x, svgTop, x, y+6)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, y+25, svgplot.Esc(svgplot.TrimFloat(t)))
	}
	label := "seconds since the first attempt"
	if p.sc.Log {
		label += fmt.Sprintf(" (logarithmic scale in 1 + t/%s, so that the first gaps stay apart)", shortDur(p.a.Policy.Initial))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333333">%s</text>`+"\n", float64(svgLeft+svgWidth-svgRight)/2, y+42, svgplot.Esc(label))
}

// note is a line of text under the picture.
type note struct {
	text, color, weight string
}

// notes are the lines under the axis: per series its fit and jitter, then
// every deviation with what it means, wrapped to the picture's width.
func (p *picture) notes() []note {
	var out []note
	add := func(text, color, weight string) {
		width := (svgWidth - 40) * 10 / 66 // characters of svgplot.CharW (6.6 px)
		if weight != "" {
			width = width * 10 / 11 // bold is wider
		}
		for _, l := range svgplot.Wrap(text, width) {
			out = append(out, note{l, color, weight})
		}
	}
	bold := ` font-weight="bold"`
	for _, s := range p.a.Series {
		var parts []string
		switch f := s.Fit; {
		case f.Multiplier > 0 && f.DoF > 0:
			parts = append(parts, fmt.Sprintf("fitted multiplier %.3f ± %.3f from %d gaps before the cap", f.Multiplier, f.Multiplier*f.StdErr, f.Points))
		case f.Multiplier > 0:
			parts = append(parts, fmt.Sprintf("fitted multiplier %.3f from %d gaps (too few for its error)", f.Multiplier, f.Points))
		default:
			parts = append(parts, fmt.Sprintf("no fitted multiplier (%d gaps before the cap, 3 needed)", f.Points))
		}
		switch j := s.Jitter; {
		case j.DoF > 0:
			parts = append(parts, fmt.Sprintf("jitter std dev %.1f%% ± %.1f%% over %d gaps (uniform ±%g%%: %.1f%%), from %+.1f%% to %+.1f%%",
				100*j.StdDev, 100*j.StdDevStdErr, j.Gaps, 100*p.a.Policy.Jitter, 100*j.Uniform, 100*j.Min, 100*j.Max))
		case j.Gaps > 0:
			parts = append(parts, fmt.Sprintf("jitter from %+.1f%% to %+.1f%% over %d gaps (too few for a spread)", 100*j.Min, 100*j.Max, j.Gaps))
		}
		add(fmt.Sprintf("%s: %s; reference rule on this address alone: %s.", addrString(s.Dst), strings.Join(parts, "; "), passFail(s.ReferencePassed)), "#222222", "")
		for _, d := range s.Deviations {
			add(fmt.Sprintf("%s — %s: %s. %s", addrString(s.Dst), d.Kind, d.Detail, d.Meaning), colorBad, bold)
		}
	}
	for _, d := range p.a.Deviations {
		add(fmt.Sprintf("%s: %s. %s", d.Kind, d.Detail, d.Meaning), colorBad, bold)
	}
	if len(p.a.Series) > 0 && len(p.a.Deviations) == 0 && !p.a.Has(TooFewAttempts) {
		none := true
		for _, s := range p.a.Series {
			none = none && len(s.Deviations) == 0
		}
		if none {
			add("No deviation from the policy recognised.", colorExp, bold)
		}
	}
	return out
}

// triangle is a small downward triangle centred at x, y.
func triangle(x, y float64, color string) string {
	return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="%s"/>`, x-5, y-5, x+5, y-5, x, y+3, color)
}

// cross is a small × centred at x, y.
func cross(x, y float64, color string) string {
	return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f" stroke="%s" stroke-width="2"/>`, x-5, y-5, x+5, y+5, x-5, y+5, x+5, y-5, color)
}

// secs converts d to float64 seconds.
func secs(d time.Duration) float64 { return d.Seconds() }

// shortDur prints d compactly: "850 ms", "1.72 s", "2 min 3 s".
func shortDur(d time.Duration) string {
	switch a := d.Abs(); {
	case a < time.Second:
		return fmt.Sprintf("%.0f ms", millis(d))
	case a < 100*time.Second:
		return svgplot.TrimFloat(math.Round(d.Seconds()*100)/100) + " s"
	default:
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
}
