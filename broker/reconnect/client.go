package reconnect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	pb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/synhold/synhold/backoff"
)

// Client is a client of the connection-backoff interop test as the
// reference client runs it: Start on the control port, a wait-for-ready call
// on the retry port until its deadline, while grpc-go reconnects with its
// backoff, then Stop.
type Client struct {
	// Control and Retry are the server's control and retry addresses,
	// host:port.
	Control, Retry string
	// MaxBackoffMs is sent in Start (0: the server's default, 120 s).
	MaxBackoffMs int32
	// Backoff is the client's own connection backoff; the zero Policy is
	// gRPC's default capped at MaxBackoffMs. Anything else makes a client
	// that breaks the spec, to see a reconnect server fail it
	// (reconnect-client's --initial_backoff, --multiplier and --jitter).
	Backoff backoff.Policy
	// Deadline is how long the retry call waits; 540 s when 0.
	Deadline time.Duration
	// Dialer, if set, opens the TCP connections of both channels, control
	// and retry, in place of grpc-go's dialer: to reach the server from
	// another network namespace or source address, say.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// RetryOptions are added to the retry channel's options, after the
	// client's own: a resolver that gives the channel several addresses,
	// say, to see how a server judges a client that tries each in turn.
	RetryOptions []grpc.DialOption
}

// Run is what a Client saw.
type Run struct {
	// Info is the server's answer to Stop.
	Info *pb.ReconnectInfo
	// Retry is the status of the retry call; DeadlineExceeded is expected.
	Retry *status.Status
	// Elapsed is how long the retry call took.
	Elapsed time.Duration
}

// RetryOK reports whether the retry call ended as the test expects, with
// DeadlineExceeded.
func (r Run) RetryOK() bool { return r.Retry.Code() == codes.DeadlineExceeded }

// Policy returns the backoff the client uses: Backoff, or gRPC's default
// capped at MaxBackoffMs (120 s when 0).
func (c Client) Policy() backoff.Policy {
	if c.Backoff != (backoff.Policy{}) {
		return c.Backoff
	}
	p := backoff.Default()
	if c.MaxBackoffMs > 0 {
		p.Max = time.Duration(c.MaxBackoffMs) * time.Millisecond
	}
	return p
}

// Run runs the test. It fails when Start or Stop fails; a retry call that
// does not end with DeadlineExceeded is reported in Run. Once Start
// succeeded, Stop is always called, so that the server can test the next
// client.
func (c Client) Run(ctx context.Context) (Run, error) {
	ctl, err := grpc.NewClient(c.Control, c.dialOptions(insecure.NewCredentials())...)
	if err != nil {
		return Run{}, fmt.Errorf("reconnect client: dial control %s: %w", c.Control, err)
	}
	defer ctl.Close()
	control := pb.NewReconnectServiceClient(ctl)
	params := &pb.ReconnectParams{MaxReconnectBackoffMs: c.MaxBackoffMs}
	if _, err := control.Start(ctx, params); err != nil {
		return Run{}, fmt.Errorf("reconnect client: Start: %w", err)
	}
	run, rerr := c.retry(ctx, params)
	// Stop even when the caller's ctx is done: the server waits for it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	info, err := control.Stop(sctx, &pb.Empty{})
	if err != nil {
		return run, errors.Join(rerr, fmt.Errorf("reconnect client: Stop: %w", err))
	}
	run.Info = info
	return run, rerr
}

// retry makes the call on the retry port that keeps the channel
// reconnecting until the deadline.
func (c Client) retry(ctx context.Context, params *pb.ReconnectParams) (Run, error) {
	// The retry port closes every connection before the TLS handshake can
	// finish, so no certificate is ever seen: the reference client's server
	// name is kept, and verification is off because there is nothing to
	// verify, not to accept a real server's certificate.
	creds := credentials.NewTLS(&tls.Config{ServerName: "foo.test.google.fr", InsecureSkipVerify: true})
	p := c.Policy()
	maxDelay := p.Max
	if maxDelay <= 0 {
		maxDelay = defaultMaxMs * time.Millisecond
	}
	minConnect := p.MinConnectTimeout
	if minConnect <= 0 {
		minConnect = 20 * time.Second
	}
	opts := append(c.dialOptions(creds), grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: grpcbackoff.Config{
			BaseDelay:  p.Initial,
			Multiplier: p.Multiplier,
			Jitter:     p.Jitter,
			MaxDelay:   maxDelay,
		},
		MinConnectTimeout: minConnect,
	}))
	opts = append(opts, c.RetryOptions...)
	conn, err := grpc.NewClient(c.Retry, opts...)
	if err != nil {
		return Run{}, fmt.Errorf("reconnect client: dial retry %s: %w", c.Retry, err)
	}
	defer conn.Close()
	deadline := c.Deadline
	if deadline <= 0 {
		deadline = 540 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	_, err = pb.NewReconnectServiceClient(conn).Start(rctx, params, grpc.WaitForReady(true))
	return Run{Retry: status.Convert(err), Elapsed: time.Since(start)}, nil
}

// dialOptions returns the options every channel of the client uses.
func (c Client) dialOptions(creds credentials.TransportCredentials) []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if c.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(c.Dialer))
	}
	return opts
}
