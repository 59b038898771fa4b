package main

import (
	"os"
	"testing"

	"github.com/synhold/synhold/internal/testenv"
)

// TestMain removes the server binary that TestAsUsed and
// TestBinaryAsNobodyFallsBackToRetransmit build (testenv.BuildBinary).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
