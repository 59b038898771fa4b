package main

import (
	"errors"
	"path/filepath"
	"slices"
)

// measureExperiments runs the in-process experiments that explain the
// levers, one file each, and returns the writer of experiments.md,
// experiments.json, cdf.svg and cdf-experiments.svg.
func measureExperiments(sn *sniffer, o Options) (writer, error) {
	sz := sizesOf(o)
	r := &ExperimentResults{}
	steps := []step{
		{"paths", "release: timing paths", func() error { return releasePaths(sn, sz, r) }},
		{"loaded", "release: under load", func() error { return releaseLoaded(sn, sz, r) }},
		{"batch", "release: batch", func() error {
			row, err := batchRelease(sn, sz.batch, sz.batches)
			r.Release = append(r.Release, row)
			return err
		}},
		{"retransmit", "release: retransmit", func() error {
			row, err := retransmitRow(sn, sz.retransmit)
			r.Release = append(r.Release, row)
			return err
		}},
		{"delayed", "release: delayed-listen", func() error {
			row, err := delayedRow(sn, sz.delayed)
			r.Release = append(r.Release, row)
			return err
		}},
		{"stamps", "timestamps", func() (err error) { r.Stamps, err = stampRows(sn, sz.stamps); return err }},
		{"scale-knobs", "scale, one knob turned", func() (err error) { r.ScaleExperiments, err = scaleKnobs(sn, sz, o.Pairs); return err }},
		{"cost", "listen cost", func() (err error) { r.ListenCost, err = listenCosts(sz.costCalls, slices.Max(o.Pairs)); return err }},
		{"clock", "standalone clock", func() (err error) { r.Wake, err = wakeRows(sz.wakeSamples); return err }},
	}
	err := runSteps(steps, o.Only)
	return func(run Run) (string, string, error) {
		r.Run = run
		r.Targets, r.Findings = judgeExperiments(r)
		md, err := writeReport(run.Options.Out, "experiments.md", "experiments.json", r, WriteExperimentsReport)
		err = errors.Join(err,
			writePlot(filepath.Join(run.Options.Out, "cdf.svg"), "Handshake release error per strategy and timing path", releaseSeries(r.Release)),
			writePlot(filepath.Join(run.Options.Out, "cdf-experiments.svg"), "Handshake release error: experiments", experimentSeries(r)))
		return md, "experiments.md,experiments.json,cdf.svg,cdf-experiments.svg", err
	}, err
}
