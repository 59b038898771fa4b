package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/synhold/synhold/bench/internal/cdf"
)

// writeReport writes a part's Markdown report (mdName) and its figures as
// JSON (jsonName) into dir, and returns the report.
func writeReport[R any](dir, mdName, jsonName string, r R, write func(io.Writer, R) error) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var md strings.Builder
	if err := write(&md, r); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return md.String(), errors.Join(
		os.WriteFile(filepath.Join(dir, mdName), []byte(md.String()), 0o644),
		os.WriteFile(filepath.Join(dir, jsonName), append(js, '\n'), 0o644))
}

// writePlot writes one CDF plot of release errors to path.
func writePlot(path, title string, series []cdf.Series) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = cdf.Write(f, title+" (SYN-ACK kernel time − requested instant)",
		"release error, µs (log scale; values ≤ the left edge drawn at it)", series)
	return errors.Join(err, f.Close())
}

// writeHeadline judges the headline, writes report.md, results.json and
// cdf-used.svg into run's -out, and fails when an as-used row lost a pair
// (lostPairs), after writing them.
func writeHeadline(r *Results, run Run) (md, files string, err error) {
	r.Run = run
	r.Targets, r.Findings = judge(r)
	md, err = writeReport(run.Options.Out, "report.md", "results.json", r, WriteReport)
	err = errors.Join(err,
		writePlot(filepath.Join(run.Options.Out, "cdf-used.svg"), "Handshake release error as it is used (tcpdump)", usedSeries(r)),
		lostPairs(r))
	return md, "report.md,results.json,cdf-used.svg", err
}

// usedSeries are the curves of cdf-used.svg: every "as it is used" row of
// all pairs, the suite's, and the fast sides of the pairs at once.
func usedSeries(r *Results) []cdf.Series {
	var ss []cdf.Series
	for _, u := range usedWholeRows(r) {
		ss = append(ss, cdf.Series{Name: "as used, " + u.Label, Values: u.SamplesUS})
	}
	for _, s := range r.Scale {
		ss = append(ss, cdf.Series{Name: fmt.Sprintf("%s at once in-process (fast side)", pairs(s.Pairs)), Values: s.SamplesUS})
	}
	return ss
}

// experimentSeries are the curves of cdf-experiments.svg: the default
// path and every experiment.
func experimentSeries(r *ExperimentResults) []cdf.Series {
	var ss []cdf.Series
	if def, ok := releaseRow(r.Release, defaultPath); ok {
		ss = append(ss, cdf.Series{Name: def.Label, Values: def.SamplesUS})
	}
	return append(ss, releaseSeries(r.Experiments)...)
}

// releaseSeries are the curves of the rows that completed handshakes.
func releaseSeries(rows []ReleaseRow) []cdf.Series {
	var ss []cdf.Series
	for _, row := range rows {
		if row.Refused == 0 {
			ss = append(ss, cdf.Series{Name: row.Label, Values: row.SamplesUS})
		}
	}
	return ss
}
