package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/synhold/synhold/broker/happyeyeballs"
	"github.com/synhold/synhold/internal/svgplot"
)

// writeReport writes the run's judgements into dir: report.json (the
// summary and every pair's judgement and timeline), summary.txt (the same
// in words, one paragraph per pair) and timeline.svg (the picture).
func writeReport(dir string, r happyeyeballs.Report, logger *slog.Logger) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	var svg bytes.Buffer
	if err := r.WriteSVG(&svg, "Happy Eyeballs clients judged against RFC 8305"); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	files := map[string][]byte{
		"report.json":  append(js, '\n'),
		"summary.txt":  []byte(summaryText(r)),
		"timeline.svg": svg.Bytes(),
	}
	var errs []error
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("--report: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("report written", "dir", dir, "pairs", r.Summary.Pairs, "files", []string{"report.json", "summary.txt", "timeline.svg"})
	return nil
}

// summaryText says the report in words: the counts, then each pair's
// sentence.
func summaryText(r happyeyeballs.Report) string {
	var b strings.Builder
	s := r.Summary
	fmt.Fprintf(&b, "%s judged against RFC 8305: %d conform, %d deviate, %d unknown.\n",
		svgplot.Plural(s.Pairs, "pair"), s.Verdicts[happyeyeballs.Conforms], s.Verdicts[happyeyeballs.Deviates], s.Verdicts[happyeyeballs.Unknown])
	for _, d := range happyeyeballs.Deviations() {
		if n := s.Deviations[d]; n > 0 {
			fmt.Fprintf(&b, "  %s: %s. %s\n", d, svgplot.Plural(n, "pair"), d.Meaning())
		}
	}
	b.WriteString("\n")
	for _, p := range r.Pairs {
		fmt.Fprintf(&b, "pair %d (IPv4 port %d, slow IPv%d): %s. %s\n", p.Pair, p.IPv4Port, p.Slow, p.Verdict, p.Why)
	}
	if r.Omitted > 0 {
		fmt.Fprintf(&b, "(%d more pairs judged and counted, not listed.)\n", r.Omitted)
	}
	return b.String()
}
