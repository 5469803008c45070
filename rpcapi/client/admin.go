package client

import (
	"context"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// VolumeInfo and StatusResult are the results of Volumes and Status.
type (
	VolumeInfo   = wire.VolumeInfo
	VolumeStatus = wire.VolumeStatus
	StatusResult = wire.StatusResult
)

// Volumes returns every volume of the daemon, in the order of its
// configuration, with its space and inode use and its number of mounts.
// It needs no mount.
func (c *Client) Volumes(ctx context.Context) ([]VolumeInfo, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var res wire.VolumesResult
	err := c.retryConn(ctx, wire.MethodVolumes, func(ctx context.Context) error {
		return c.jsonAttempt(ctx, wire.MethodVolumes, wire.Empty{}, &res)
	})
	return res.Volumes, err
}

// Status returns the daemon's version, uptime, numbers of connections,
// mounts and open handles, and the state of each volume ("ok", or
// "failed" with the engine's error). It needs no mount.
func (c *Client) Status(ctx context.Context) (StatusResult, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var res wire.StatusResult
	err := c.retryConn(ctx, wire.MethodStatus, func(ctx context.Context) error {
		return c.jsonAttempt(ctx, wire.MethodStatus, wire.Empty{}, &res)
	})
	return res, err
}
