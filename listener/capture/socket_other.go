//go:build !linux

package capture

import "time"

// Socket is not implemented on this GOOS.
type Socket struct{}

// Open returns ErrNotImplemented: AF_PACKET is Linux's.
func Open(cfg Config) (*Socket, error) { return nil, ErrNotImplemented }

// ReadPacket returns ErrNotImplemented.
func (s *Socket) ReadPacket() (Packet, error) { return Packet{}, ErrNotImplemented }

// SetReadDeadline returns ErrNotImplemented.
func (s *Socket) SetReadDeadline(t time.Time) error { return ErrNotImplemented }

// Sync returns ErrNotImplemented.
func (s *Socket) Sync(deadline time.Time) error { return ErrNotImplemented }

// Close does nothing.
func (s *Socket) Close() error { return nil }
