package server

import (
	"context"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// The administrative methods (wire/admin.go): they take no mount.
func init() {
	methods[wire.MethodVolumes] = handler(ro, nil, func(ctx context.Context, s *Server, _ *env, _ *struct{}) (any, error) {
		return s.volumesInfo(ctx), nil
	})
	methods[wire.MethodStatus] = handler(ro, nil, func(_ context.Context, s *Server, _ *env, _ *struct{}) (any, error) {
		return s.status(), nil
	})
}

// volumesInfo is the result of volumes.
func (s *Server) volumesInfo(ctx context.Context) wire.VolumesResult {
	mounts := s.mounts.CountByVolume()
	res := wire.VolumesResult{Volumes: make([]wire.VolumeInfo, 0, len(s.order))}
	for _, v := range s.order {
		vi := wire.VolumeInfo{Name: v.name, Fsid: v.dev, Mounts: mounts[v.name]}
		st, err := v.fs.StatFS(ctx)
		if err != nil {
			vi.Error = err.Error()
		} else {
			vi.SizeBytes = st.Blocks * st.BlockSize
			vi.UsedBytes = (st.Blocks - min(st.BlocksFree, st.Blocks)) * st.BlockSize
			vi.AvailBytes = st.BlocksAvail * st.BlockSize
			vi.Inodes = st.Files
			vi.InodesFree = st.FilesFree
			vi.InodesUsed = st.Files - min(st.FilesFree, st.Files)
		}
		res.Volumes = append(res.Volumes, vi)
	}
	return res
}

// status is the result of status.
func (s *Server) status() wire.StatusResult {
	s.mu.Lock()
	conns := len(s.conns)
	start := s.startTime
	s.mu.Unlock()
	res := wire.StatusResult{
		Version:     wire.Version,
		Server:      "proxyfsd " + s.version,
		Connections: conns,
		Mounts:      s.mounts.Count(),
		OpenHandles: s.hs.count(),
		Volumes:     make([]wire.VolumeStatus, 0, len(s.order)),
	}
	if !start.IsZero() {
		res.UptimeSec = uint64(time.Since(start) / time.Second)
	}
	for _, v := range s.order {
		vs := wire.VolumeStatus{Name: v.name, State: wire.VolumeOK}
		if err := v.vol.Health(); err != nil {
			vs.State, vs.Error = wire.VolumeFailed, err.Error()
		}
		res.Volumes = append(res.Volumes, vs)
	}
	return res
}
