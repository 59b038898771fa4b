package main

import (
	"github.com/synhold/synhold/bench/internal/stats"
)

// Run is what every part's JSON file starts with: where and how the part
// ran, and whether it left descriptors open.
type Run struct {
	Machine Machine `json:"machine"`
	Options Options `json:"options"`
	// Descriptors compares the open descriptors at the start and the end.
	Descriptors FDCheck `json:"descriptors"`
	// ElapsedS is how long the part took, in seconds.
	ElapsedS float64 `json:"elapsed_s"`
}

// Results is the headline (results.json, report.md, cdf-used.svg): the
// server as it is used, its levers, and the scale rows.
type Results struct {
	Run
	// AsUsed is section 0: the server binary in its own process, pairs
	// asked for one after another by a client process, timed by tcpdump.
	AsUsed []UsedRow `json:"as_used"`
	// Levers are the same scenario with one lever of the library turned
	// off or changed, each against the server as shipped.
	Levers []UsedRow `json:"levers"`
	// Scale is Happy Eyeballs pairs requested at once.
	Scale []ScaleRow `json:"scale"`
	// Pool are connection pools warming up through handshake-proxy, Floor
	// this machine's floor for as many handshakes at once, and Suite the
	// parallel suite: many at once, as it is used.
	Pool  []PoolRow  `json:"pool"`
	Floor []FloorRow `json:"floor"`
	Suite []UsedRow  `json:"suite"`
	// Targets are the goals, each met or missed by the figures above.
	Targets []Target `json:"targets"`
	// Findings are the conclusions drawn from the figures, in words.
	Findings []string `json:"findings"`
}

// ExperimentResults are the in-process experiments that explain the
// levers (experiments.json, experiments.md, cdf.svg, cdf-experiments.svg).
type ExperimentResults struct {
	Run
	// Release is how close to the requested instant the SYN-ACK went out,
	// per strategy and timing path.
	Release []ReleaseRow `json:"release"`
	// Experiments are the same release measurement with one knob turned.
	Experiments []ReleaseRow `json:"experiments"`
	// Stamps are the server's timestamps of a connection attempt against
	// the client's own record of it.
	Stamps []StampRow `json:"timestamps"`
	// ScaleExperiments are pairs at once again, one knob turned.
	ScaleExperiments []ScaleRow `json:"scale_experiments"`
	// ListenCost is what opening and closing one held listener costs, by
	// part, which bounds the control reply latency at scale.
	ListenCost []CostRow `json:"listen_cost"`
	// Wake is the standalone clock experiment (SCHED_FIFO and load).
	Wake []WakeRow `json:"wake"`
	// Targets and Findings judge the rows above.
	Targets  []Target `json:"targets"`
	Findings []string `json:"findings"`
}

// Machine describes where the figures come from.
type Machine struct {
	Kernel      string  `json:"kernel"`
	CPUModel    string  `json:"cpu_model"`
	Cores       int     `json:"cores"`
	GoVersion   string  `json:"go_version"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Date        string  `json:"date"`
	Clocksource string  `json:"clocksource"`
	LoadAvg     string  `json:"loadavg"`
	IdlePct     float64 `json:"idle_pct_at_start"`
	// Hogs are other processes found busy on the CPU at the start.
	Hogs   []string `json:"busy_processes_at_start"`
	NoFile Rlimit   `json:"rlimit_nofile"`
	// TimeWait counts TCP sockets in TIME_WAIT at the start and the end:
	// many of them crowd the ephemeral ports and slow every bind to port 0.
	TimeWaitStart int    `json:"time_wait_start"`
	TimeWaitEnd   int    `json:"time_wait_end"`
	Privilege     string `json:"privilege"`
	// ClockThread is how the release clock's thread is scheduled here
	// (SCHED_FIFO where the process may).
	ClockThread string `json:"clock_thread"`
	// ClockSteps are the jumps of CLOCK_REALTIME against CLOCK_MONOTONIC
	// seen during the run: kernel packet timestamps are wall-clock times,
	// so a step shows in any figure that compares them with time.Now().
	ClockSteps []ClockStep `json:"clock_steps"`
}

// ClockStep is one jump of the wall clock.
type ClockStep struct {
	// AtS is when it was seen, in seconds from the start of the run.
	AtS float64 `json:"at_s"`
	// StepUS is how far the wall clock jumped against the monotonic clock;
	// negative: back.
	StepUS float64 `json:"step_us"`
}

// Rlimit is RLIMIT_NOFILE before and after the benchmark raised it.
type Rlimit struct {
	SoftBefore uint64 `json:"soft_before"`
	Soft       uint64 `json:"soft"`
	Hard       uint64 `json:"hard"`
}

// Options are the command-line options of the run.
type Options struct {
	Trials int    `json:"trials"`
	Pairs  []int  `json:"pairs"`
	Short  bool   `json:"short"`
	Out    string `json:"out"`
	// Only names the steps that ran (empty: all); UsedPairs overrides the
	// pairs per case of the "as it is used" scenario.
	Only      []string `json:"only,omitempty"`
	UsedPairs int      `json:"used_pairs,omitempty"`
	Command   string   `json:"command"`
}

// ReleaseRow is one way of holding handshakes, measured over many trials:
// the error of each SYN-ACK's kernel timestamp against its instant.
type ReleaseRow struct {
	// Name identifies the row in the JSON file and the plot.
	Name string `json:"name"`
	// Label names it for a person.
	Label    string  `json:"label"`
	Strategy string  `json:"strategy"`
	Clock    string  `json:"clock,omitempty"`
	SpinUS   float64 `json:"spin_us"`
	// Trials is how many clients were held; Completed how many got a
	// SYN-ACK; Refused how many were refused (DelayedListen).
	Trials    int `json:"trials"`
	Completed int `json:"completed"`
	Refused   int `json:"refused"`
	// SYNAfter counts trials left out because the SYN came after the
	// instant (none expected).
	SYNAfter int `json:"syn_after_instant"`
	// Error is SYN-ACK kernel time minus the instant.
	Error stats.Summary `json:"error"`
	// Client is when the client's connect(2) was seen complete, minus the
	// instant (or, for refusals, the time to the refusal after connect).
	Client stats.Summary `json:"client"`
	// Opened and Replayed are the listener's own records, minus the
	// instant: when its clock had detached the hold filter (the Released
	// event), and when the replay's sendto(2) returned. With Error they
	// show where the time goes: wake-up, then the stack.
	Opened   stats.Summary `json:"filter_detached"`
	Replayed stats.Summary `json:"replay_returned"`
	// LibCompared counts trials where the listener reported a SYN-ACK
	// time too; LibMaxDiffUS is the largest gap between its time and the
	// benchmark's own capture.
	LibCompared  int     `json:"library_compared"`
	LibMaxDiffUS float64 `json:"library_max_diff_us"`
	// Batch is the number of listeners released at one instant (0: one).
	Batch int `json:"batch,omitempty"`
	// PerReleaseUS is, for a batch, the median extra delay each further
	// release in the pass adds.
	PerReleaseUS float64   `json:"per_release_us,omitempty"`
	Note         string    `json:"note,omitempty"`
	SamplesUS    []float64 `json:"samples_us"`
}

// UsedRow is one case of the "as it is used" scenario (or one dial mode of
// it): happyeyeballs-server in its own process, a client process asking for
// pairs one after another, and tcpdump on lo as the observer.
type UsedRow struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	// Mode is the client's dial mode; empty for the row of all pairs.
	Mode string `json:"mode,omitempty"`
	// Hogs is how many busy processes loaded the machine.
	Hogs int    `json:"busy_processes"`
	Note string `json:"note,omitempty"`
	// Pairs were asked for, Replied answered with ports, Winners connected
	// on one side, FastWon on the fast side with its family's byte.
	Pairs   int `json:"pairs"`
	Replied int `json:"replied"`
	Winners int `json:"winners"`
	FastWon int `json:"fast_won"`
	// ClientErrors counts pairs the client reported an error for.
	ClientErrors int      `json:"client_errors"`
	ErrorSample  []string `json:"client_error_sample,omitempty"`
	// Release is the winner's SYN-ACK as tcpdump stamped it minus the
	// instant the server logged for it (want).
	Release stats.Summary `json:"release"`
	// Early counts handshakes that completed more than 20 µs before their
	// instant; SYNAfter winners whose SYN came at or after the instant
	// (left out of Release); Unmatched winners that tcpdump or the
	// server's log did not show.
	Early     int `json:"early_over_20us"`
	SYNAfter  int `json:"syn_after_instant"`
	Unmatched int `json:"unmatched"`
	// ServerReported counts winners whose SYN-ACK the server reported
	// (synack_seen); ServerGap is its time minus tcpdump's.
	ServerReported int           `json:"server_reported"`
	ServerGap      stats.Summary `json:"server_gap"`
	ServerGapMaxUS float64       `json:"server_gap_max_abs_us"`
	// Reply is the control reply, by the client's clock: from before its
	// dial to the reply's last byte.
	Reply stats.Summary `json:"control_reply"`
	// ClientSees is the client's dial returning minus tcpdump's SYN-ACK.
	ClientSees stats.Summary `json:"client_sees"`
	// Own and OwnSent are the benchmark's own capture of the same SYN-ACK
	// minus tcpdump's time: the copy it sees as the packet arrives, and as
	// it is sent.
	Own     stats.Summary `json:"own_capture_received"`
	OwnSent stats.Summary `json:"own_capture_sent"`
	// LogOrder counts winners whose "connected" line came before its
	// side's "released" line.
	LogOrder int `json:"connected_before_released"`
	// Problems counts the server's log lines at WARN or above; Other its
	// output that was not a JSON log line.
	Problems      int      `json:"server_warnings"`
	ProblemSample []string `json:"server_warning_sample,omitempty"`
	Other         int      `json:"server_other_output"`
	// ServerStart is what the server's start-up line said about how it
	// holds handshakes (on the row of all pairs).
	ServerStart []string `json:"server_start,omitempty"`
	// Dropped is what the kernel dropped before tcpdump read it.
	Dropped int `json:"tcpdump_dropped"`
	// Clients is how many client processes asked at once; Load is
	// /proc/loadavg when the case started.
	Clients int    `json:"client_processes,omitempty"`
	Load    string `json:"loadavg,omitempty"`
	// ControlFloor is the control reply of a do-nothing server asked by
	// the same client after the same idle time (if the case asked one).
	ControlFloor stats.Summary `json:"control_reply_floor"`
	// ClockCPU is the server's release clock thread's CPU per release.
	ClockCPU  CPUUse    `json:"clock_cpu"`
	SamplesUS []float64 `json:"samples_us"`
}

// StampRow is one server timestamp of connection attempts against the
// client's time.Now() just before its connect(2).
type StampRow struct {
	Name  string        `json:"name"`
	Label string        `json:"label"`
	Delta stats.Summary `json:"delta"`
	// Impossible counts samples left out because the server's time came
	// before the client's record: the wall clock stepped back in between.
	Impossible int       `json:"impossible"`
	SamplesUS  []float64 `json:"samples_us"`
}

// ScaleRow is Happy Eyeballs pairs requested at once, Rounds times over.
type ScaleRow struct {
	Pairs  int `json:"pairs"`
	Rounds int `json:"rounds"`
	// Variant names the settings: "default", or the knob turned.
	Variant string `json:"variant"`
	// Requests counts control requests sent, ReplyOK those answered with a
	// pair.
	Requests int `json:"requests"`
	ReplyOK  int `json:"reply_ok"`
	// Reply is the control reply latency: from before the dial to the last
	// byte of the reply.
	Reply stats.Summary `json:"control_reply"`
	// ReplyFloor is the control reply latency of as many requests at once
	// to a do-nothing server in this process (controlFloor), measured
	// right after the rows of this count.
	ReplyFloor stats.Summary `json:"control_reply_floor"`
	// RequestsPerSec is pairs answered per second in a round, from the
	// first request to the last reply, the median over rounds.
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Release is the fast side's SYN-ACK kernel time minus its instant
	// (the broker's bind plus FastDelay).
	Release stats.Summary `json:"release"`
	// BrokerLate is the same as the broker's own log reported it.
	BrokerLate stats.Summary `json:"broker_late"`
	// Connected counts fast sides whose connect completed, WrongFamily
	// those whose byte named the other family, SYNAfter those whose SYN
	// reached the server after the instant.
	Connected   int `json:"connected"`
	WrongFamily int `json:"wrong_family"`
	// NoByte counts fast sides that connected and were closed without
	// their family byte: the broker took another connection as the winner.
	NoByte int `json:"no_byte"`
	// Unseen counts fast sides that connected but whose SYN-ACK the
	// benchmark's capture missed (left out of Release).
	Unseen   int `json:"synack_unseen"`
	SYNAfter int `json:"syn_after_instant"`
	// LogProblems counts the broker's log records at level Warn or above.
	LogProblems int      `json:"log_problems"`
	Baseline    MemPoint `json:"baseline"`
	Peak        MemPoint `json:"peak"`
	After       MemPoint `json:"after"`
	// FDLeak is After.FDs - Baseline.FDs once the server shut down.
	FDLeak    int       `json:"fd_leak"`
	SamplesUS []float64 `json:"samples_us"`
}

// MemPoint is the process's memory and descriptors at one moment.
type MemPoint struct {
	FDs    int     `json:"fds"`
	HeapMB float64 `json:"go_heap_mb"`
	RSSMB  float64 `json:"rss_mb"`
	HWMMB  float64 `json:"hwm_mb"`
}

// WakeRow is the standalone clock experiment: how late a timerfd-and-spin
// clock thread wakes, by scheduling policy and load.
type WakeRow struct {
	Name      string        `json:"name"`
	Label     string        `json:"label"`
	Policy    string        `json:"policy"`
	Load      string        `json:"load"`
	Error     stats.Summary `json:"error"`
	Note      string        `json:"note,omitempty"`
	SamplesUS []float64     `json:"samples_us"`
}

// Target is one goal and whether the run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
	// By says by how much it was met or missed.
	By string `json:"by,omitempty"`
}

// FDCheck is the descriptor count at the start and the end of the run.
type FDCheck struct {
	Start  int  `json:"start"`
	End    int  `json:"end"`
	Leaked bool `json:"leaked"`
}

// CostRow is the wall time of one operation, over many calls.
type CostRow struct {
	Name  string        `json:"name"`
	Label string        `json:"label"`
	Cost  stats.Summary `json:"cost"`
	Note  string        `json:"note,omitempty"`
}

// wakeLoad is what else runs while the standalone clock waits; it is part
// of a WakeRow's name.
type wakeLoad int

const (
	loadNone       wakeLoad = iota // the machine as it is
	loadProcs                      // busy processes on every core
	loadGoroutines                 // busy goroutines on every P of this process
)
