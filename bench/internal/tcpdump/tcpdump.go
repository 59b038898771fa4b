// Package tcpdump runs tcpdump as the bench's outside observer: a process
// recording the packets a filter keeps on lo to a pcap file with nanosecond
// timestamps. On lo it records each packet once, as it arrives (libpcap
// leaves out the outgoing copy), which is when the receiving socket sees
// it.
package tcpdump

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/synhold/synhold/bench/internal/proc"
)

// Dump is a running tcpdump and the file it writes.
type Dump struct {
	*proc.Child
	file string
}

// Start starts tcpdump on lo writing the packets that filter keeps to
// file, and returns once it has said it is listening.
func Start(file, filter string) (*Dump, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("the bench needs tcpdump as its observer (apt-get install tcpdump): %w", err)
	}
	// --immediate-mode: deliver each packet at once rather than by ring
	// block, so that none is still in the ring when tcpdump is stopped;
	// -B 64 MiB: with 4 busy processes tcpdump fell behind other traffic on
	// lo and the kernel dropped hundreds of packets from a 16 MiB buffer;
	// -s 160: the headers alone (link 14, IPv6 40, TCP with options 60
	// bytes); in immediate mode libpcap's ring has a slot of the snapshot
	// length per packet, so with the default 256 KiB the 64 MiB held only
	// about 256 packets, and 300 handshakes at once lost hundreds; -Z
	// root: do not drop privileges (the file is in a root-only directory).
	cmd := exec.Command(path, "-i", "lo", "-w", file, "--time-stamp-precision=nano", "--immediate-mode", "-U",
		"-B", "65536", "-s", "160", "-Z", "root", filter)
	c, err := proc.Start(cmd, 10*time.Second, func(line []byte) bool { return bytes.Contains(line, []byte("listening on")) })
	if err != nil {
		return nil, err
	}
	return &Dump{c, file}, nil
}

// droppedRE is tcpdump's closing count of packets the kernel dropped.
var droppedRE = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// Stop waits until tcpdump's file stops growing (it has written what the
// kernel delivered), stops it (SIGINT: it then writes what it still holds
// and its counts) and returns how many packets the kernel dropped before
// tcpdump read them.
func (d *Dump) Stop() (dropped int, err error) {
	settled(d.file, 100*time.Millisecond, 5*time.Second)
	err = d.Child.Stop(os.Interrupt, 10*time.Second)
	m := droppedRE.FindSubmatch(d.Output())
	if m == nil {
		return 0, errors.Join(err, fmt.Errorf("tcpdump gave no counts: %s", d.Tail(4)))
	}
	dropped, _ = strconv.Atoi(string(m[1]))
	return dropped, err
}

// settled waits until file's size has not changed for quiet, or limit
// passes: tcpdump writes each packet as it reads it (--immediate-mode, -U),
// so a file that stopped growing holds everything the kernel delivered.
func settled(file string, quiet, limit time.Duration) {
	const poll = 10 * time.Millisecond
	last, same := int64(-1), time.Duration(0)
	for end := time.Now().Add(limit); time.Now().Before(end) && same < quiet; time.Sleep(poll) {
		size := int64(-1)
		if fi, err := os.Stat(file); err == nil {
			size = fi.Size()
		}
		if size == last {
			same += poll
		} else {
			last, same = size, 0
		}
	}
}
