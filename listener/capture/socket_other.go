//go:build !linux

package capture

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// errUnsupported is returned on systems without AF_PACKET; it wraps
// errors.ErrUnsupported.
var errUnsupported = fmt.Errorf("capture: AF_PACKET on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Socket is not implemented on this GOOS.
type Socket struct{}

// Open returns an error wrapping errors.ErrUnsupported: AF_PACKET is
// Linux's.
func Open(cfg Config) (*Socket, error) { return nil, errUnsupported }

// ReadPacket returns an error wrapping errors.ErrUnsupported.
func (s *Socket) ReadPacket() (Packet, error) { return Packet{}, errUnsupported }

// SetReadDeadline returns an error wrapping errors.ErrUnsupported.
func (s *Socket) SetReadDeadline(t time.Time) error { return errUnsupported }

// Sync returns an error wrapping errors.ErrUnsupported.
func (s *Socket) Sync(deadline time.Time) error { return errUnsupported }

// SetPorts returns an error wrapping errors.ErrUnsupported.
func (s *Socket) SetPorts(ports []uint16) error { return errUnsupported }

// KeepNone returns an error wrapping errors.ErrUnsupported.
func (s *Socket) KeepNone() error { return errUnsupported }

// Close does nothing.
func (s *Socket) Close() error { return nil }
