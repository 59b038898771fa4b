package reconnect_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"

	"google.golang.org/grpc"
	pb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/synhold/synhold/broker/reconnect"
)

// A reconnect server on the reference's ports: the control service on a
// grpc.Server of the program's own, the retry port opened by the Server at
// the first Start. It serves until interrupted, then prints each test's
// verdict.
func ExampleServer() {
	srv, err := reconnect.NewServer(reconnect.Config{RetryPort: 8081}) // logs how attempts are timed
	if err != nil {
		log.Fatal(err)
	}
	ctl, err := net.Listen("tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterReconnectServiceServer(gs, srv)
	go gs.Serve(ctl)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	gs.GracefulStop()
	srv.Close()
	for _, r := range srv.Results() {
		fmt.Printf("test %d of %v: passed %v, backoff_ms %v\n", r.Test, r.Client, r.Passed, r.BackoffMs)
	}
}

// A client of the interop test with gRPC's default backoff, against a
// server on localhost:8080 and 8081: it takes the reference's 540 s.
func ExampleClient() {
	run, err := reconnect.Client{Control: "localhost:8080", Retry: "localhost:8081"}.Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retry call ended with DEADLINE_EXCEEDED:", run.RetryOK())
	fmt.Println("server's verdict:", run.Info.GetPassed(), run.Info.GetBackoffMs())
}
