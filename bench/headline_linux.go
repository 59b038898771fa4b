package main

// measureHeadline runs the headline, measured from outside the server:
// section 0 (as used) with the levers, then the scale rows (pairs at
// once, pools through handshake-proxy beside their floor, the parallel
// suite), and returns the writer of report.md, results.json and
// cdf-used.svg. The writer fails, naming the row, when an as-used row lost
// pairs.
func measureHeadline(sn *sniffer, o Options) (writer, error) {
	sz := sizesOf(o)
	r := &Results{}
	steps := []step{
		{"used", "as it is used", func() (err error) { r.AsUsed, err = asUsed(sn, usedCases(sz.usedPairs)); return err }},
		{"levers", "levers, as it is used", func() (err error) {
			cases := leverCases()
			for i := range cases {
				cases[i].pairs = sz.leverPairs
			}
			r.Levers, err = asUsed(sn, cases)
			return err
		}},
		{"scale", "scale: pairs at once", func() (err error) { r.Scale, err = scaleRows(sn, sz, o.Pairs); return err }},
		{"pool", "pools through handshake-proxy, and the floor", func() (err error) {
			r.Pool, r.Floor, err = poolRows(sn, o.Short)
			return err
		}},
		{"suite", "a parallel suite", func() (err error) { r.Suite, err = suite(sn, sz.suitePairs); return err }},
	}
	err := runSteps(steps, o.Only)
	return func(run Run) (string, string, error) { return writeHeadline(r, run) }, err
}
