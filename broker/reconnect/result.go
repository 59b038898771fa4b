package reconnect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/synhold/synhold/backoff"
)

// Result is what a test found: the verdict and gaps Stop returned,
// and the analyses they came from.
type Result struct {
	// Test numbers the tests of a server from 1.
	Test int `json:"test"`
	// Client is the address that called Start.
	Client netip.AddrPort `json:"client"`
	// MaxBackoff is the cap the verdict used: max_reconnect_backoff_ms, or
	// 120 s when it was 0.
	MaxBackoff time.Duration `json:"-"`
	// Timestamps says which times the verdict used.
	Timestamps Timestamps `json:"timestamps"`
	// Started and Stopped are when the test began (at Start) and ended (at
	// Stop).
	Started, Stopped time.Time `json:"-"`
	// Passed and BackoffMs are what Stop returned: Analysis.Passed (every
	// gap to every address the client tried is within the reference rule's
	// range, and one address has at least two gaps: unlike on the
	// reference server, a client that made fewer than three attempts
	// fails), and Analysis.BackoffMs(), the gaps in milliseconds of the
	// first address the client tried.
	Passed    bool    `json:"passed"`
	BackoffMs []int32 `json:"backoff_ms"`
	// Reason says why Passed is false: TooFewAttempts or OutOfRange (see
	// backoff.Analysis.Reason).
	Reason *backoff.Deviation `json:"reason,omitempty"`
	// ReferencePassed and ReferenceBackoffMs are what the reference server
	// would have returned for the same attempts: all of them as one list,
	// judged with this Start's cap, and passed when there are no gaps.
	ReferencePassed    bool    `json:"reference_passed"`
	ReferenceBackoffMs []int32 `json:"reference_backoff_ms"`
	// Analysis is the analysis the verdict came from: *SYN or *Accept.
	Analysis backoff.Analysis `json:"-"`
	// SYN and Accept are the analyses of SYN times and of accept times,
	// each nil when those times were not recorded.
	SYN    *backoff.Analysis `json:"syn,omitempty"`
	Accept *backoff.Analysis `json:"accept,omitempty"`
	// Skew is the time from each attempt's first SYN to its accept.
	Skew Skew `json:"syn_to_accept"`
	// Dropped counts attempts not kept (past 65536 in one test).
	Dropped int `json:"dropped,omitempty"`
}

// MarshalJSON writes r with its durations in milliseconds and its times in
// RFC 3339.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		MaxBackoffMs int64  `json:"max_backoff_ms"`
		Started      string `json:"started"`
		Stopped      string `json:"stopped"`
	}{plain(r), r.MaxBackoff.Milliseconds(), r.Started.Format(time.RFC3339Nano), r.Stopped.Format(time.RFC3339Nano)})
}

// Foreign returns the attempts of the verdict's analysis that came from
// hosts other than the client under test.
func (r Result) Foreign() []backoff.Removed {
	var out []backoff.Removed
	for _, rm := range r.Analysis.Removed {
		if rm.Reason == backoff.ForeignSource {
			out = append(out, rm)
		}
	}
	return out
}

// stopReply returns what a server following the reference rule per
// address answers for analysis a: a.Passed (some address has at least the
// first gap and one more, and every gap of every address is within the
// reference rule's range), and the gaps, in milliseconds as the reference
// server reports them, of the first destination tried.
//
// Unlike the reference server, a client that made fewer than three attempts
// fails (TooFewAttempts): it showed no backoff to judge.
func stopReply(a backoff.Analysis) (passed bool, backoffMs []int32) {
	return a.Passed, a.BackoffMs()
}

// result judges the test, stopped at stopped. synRecorded says whether SYN
// times were recorded.
func (t *session) result(stopped time.Time, synRecorded bool) Result {
	r := Result{
		Test:       t.n,
		Client:     t.client,
		MaxBackoff: t.policy.Max,
		Timestamps: t.ts,
		Started:    t.started,
		Stopped:    stopped,
		Skew:       t.skew(),
		Dropped:    t.dropped,
	}
	opts := t.opts
	opts.Observed = stopped.Sub(t.started)
	acc := backoff.Analyze(t.backoffAttempts(Accept), t.policy, opts)
	r.Accept = &acc
	r.Analysis = acc
	if synRecorded {
		syn := backoff.Analyze(t.backoffAttempts(SYN), t.policy, opts)
		r.SYN = &syn
		if t.ts == SYN {
			r.Analysis = syn
		}
	}
	r.Passed, r.BackoffMs = stopReply(r.Analysis)
	r.Reason = r.Analysis.Reason
	r.ReferencePassed, r.ReferenceBackoffMs = r.Analysis.MergedReferencePassed, r.Analysis.ReferenceBackoffMs
	return r
}

// WriteText writes the result for a person: the test, the analysis of the
// times that decided it, how SYN and accept times differed, the other
// times' verdict, and what Stop returned.
func (r Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reconnect test %d: client %s, max backoff %d ms, %s times, %.1f s\n",
		r.Test, clientString(r.Client), r.MaxBackoff.Milliseconds(), r.Timestamps, r.Stopped.Sub(r.Started).Seconds())
	if err := r.Analysis.WriteText(&b); err != nil {
		return err
	}
	if r.Skew.Attempts > 0 {
		fmt.Fprintf(&b, "\nSYN to accept: %s\n  per attempt, ms:", r.Skew)
		for _, d := range r.Skew.Each {
			fmt.Fprintf(&b, " %.3f", millis(d))
		}
		b.WriteString("\n")
	}
	if other, name := r.other(); other != nil {
		op, oms := stopReply(*other)
		fmt.Fprintf(&b, "with %s times instead: %s, backoff_ms %v\n", name, passFail(op), oms)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(&b, "attempts not kept (too many): %d\n", r.Dropped)
	}
	fmt.Fprintf(&b, "ReconnectInfo: passed=%t backoff_ms=%v\n", r.Passed, r.BackoffMs)
	fmt.Fprintf(&b, "the reference server's ReconnectInfo on the same attempts: passed=%t backoff_ms=%v\n", r.ReferencePassed, r.ReferenceBackoffMs)
	_, err := io.WriteString(w, b.String())
	return err
}

// other returns the analysis of the times that did not decide the verdict,
// if they were recorded, and their name.
func (r Result) other() (*backoff.Analysis, Timestamps) {
	if r.Timestamps == SYN {
		return r.Accept, Accept
	}
	return r.SYN, SYN
}

// report logs the end of a test: its key figures, and its whole result as
// text to Config.Report or as JSON in the record.
func (r *Server) report(res Result, stopper netip.AddrPort) {
	attrs := []any{"test", res.Test, "client", res.Client, "passed", res.Passed, "backoff_ms", res.BackoffMs}
	if res.Reason != nil {
		attrs = append(attrs, "reason", string(res.Reason.Kind), "reason_detail", res.Reason.Detail)
	}
	attrs = append(attrs, "reference_passed", res.ReferencePassed, "reference_backoff_ms", res.ReferenceBackoffMs,
		"timestamps", res.Timestamps, "duration_s", res.Stopped.Sub(res.Started).Seconds(),
		"series", len(res.Analysis.Series), "foreign", len(res.Foreign()), "removed", len(res.Analysis.Removed))
	if res.Skew.Attempts > 0 {
		attrs = append(attrs, "syn_to_accept_p50_ms", millis(res.Skew.P50), "syn_to_accept_max_ms", millis(res.Skew.Max))
	}
	if other, name := res.other(); other != nil {
		op, _ := stopReply(*other)
		attrs = append(attrs, name.String()+"_passed", op)
	}
	if stopper != res.Client && stopper.IsValid() {
		attrs = append(attrs, "stopped_by", stopper)
	}
	if r.cfg.ReportJSON {
		attrs = append(attrs, "result", res)
	}
	if r.cfg.ReportDir != "" {
		files, err := res.WriteFiles(r.cfg.ReportDir)
		if err != nil {
			r.log.Error("reconnect: writing the report files failed; the server goes on", "dir", r.cfg.ReportDir, "err", err)
		}
		if len(files) > 0 {
			attrs = append(attrs, "report_files", files)
		}
	}
	r.log.Info("reconnect: test finished", attrs...)
	if r.cfg.Report != nil && !r.cfg.ReportJSON {
		if err := res.WriteText(r.cfg.Report); err != nil {
			r.log.Error("reconnect: writing the report failed", "err", err)
		}
	}
}

// WriteFiles writes the result to dir as test-N-TIME.json (the whole
// result) and test-N-TIME.svg (the picture of the attempts that decided the
// verdict; see backoff.Analysis.WriteSVG), TIME being when the test started,
// and returns the names of the files it wrote.
func (r Result) WriteFiles(dir string) ([]string, error) {
	base := filepath.Join(dir, fmt.Sprintf("test-%d-%s", r.Test, r.Started.UTC().Format("20060102T150405Z")))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("reconnect: report: %w", err)
	}
	var written []string
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return written, fmt.Errorf("reconnect: report: %w", err)
	}
	written = append(written, base+".json")
	var svg bytes.Buffer
	title := fmt.Sprintf("reconnect test %d: client %s, max backoff %d ms, %s times, %.1f s",
		r.Test, clientString(r.Client), r.MaxBackoff.Milliseconds(), r.Timestamps, r.Stopped.Sub(r.Started).Seconds())
	if err := r.Analysis.WriteSVG(&svg, title); err != nil {
		return written, fmt.Errorf("reconnect: report: %w", err)
	}
	if err := os.WriteFile(base+".svg", svg.Bytes(), 0o644); err != nil {
		return written, fmt.Errorf("reconnect: report: %w", err)
	}
	return append(written, base+".svg"), nil
}

// Skew summarises how much later accept returned an attempt than
// its first SYN arrived: the difference between the reference server's
// timestamps and the client's own.
type Skew struct {
	// Attempts counts the attempts that have both times; Min, P50 (the
	// median, the lower of the middle two) and Max are over their
	// differences.
	Attempts      int
	Min, P50, Max time.Duration
	// Each is the difference of every attempt that has both times, in the
	// order of the attempts.
	Each []time.Duration
}

// newSkew summarises the differences d, in attempt order.
func newSkew(d []time.Duration) Skew {
	if len(d) == 0 {
		return Skew{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return Skew{Attempts: len(s), Min: s[0], P50: s[(len(s)-1)/2], Max: s[len(s)-1], Each: d}
}

// String prints the summary in milliseconds.
func (s Skew) String() string {
	if s.Attempts == 0 {
		return "no attempt with both times"
	}
	return fmt.Sprintf("%d attempts, min %.3f ms, p50 %.3f ms, max %.3f ms", s.Attempts, millis(s.Min), millis(s.P50), millis(s.Max))
}

// MarshalJSON writes s with its durations in milliseconds.
func (s Skew) MarshalJSON() ([]byte, error) {
	each := make([]float64, len(s.Each))
	for i, d := range s.Each {
		each[i] = millis(d)
	}
	return json.Marshal(struct {
		Attempts int       `json:"attempts"`
		MinMs    float64   `json:"min_ms"`
		P50Ms    float64   `json:"p50_ms"`
		MaxMs    float64   `json:"max_ms"`
		EachMs   []float64 `json:"each_ms"`
	}{s.Attempts, millis(s.Min), millis(s.P50), millis(s.Max), each})
}

// clientString prints a client address, or "unknown".
func clientString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "unknown"
	}
	return ap.String()
}

// passFail prints a verdict.
func passFail(ok bool) string {
	if ok {
		return "passed"
	}
	return "failed"
}
