package main

import (
	"fmt"
	"path"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// ---- du ----

// cmdDu shows the space used (allocated blocks) under each path (default
// /), as du(1): a line for every directory, children first, then one for
// each path; -s only the latter; -h in human-readable units, else in KiB.
// Symlinks are not followed; a file with several links counts once.
func cmdDu(s *session, f cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	if len(args) == 0 {
		args = []string{"/"}
	}
	w := duWalker{s: s, m: m, all: !f.on('s'), human: f.on('h'), seen: map[uint64]bool{}}
	for _, a := range args {
		if s.ctx.Err() != nil {
			return
		}
		st, err := m.GetStatPath(s.ctx, a)
		if err != nil {
			s.fail("du", a, err)
			continue
		}
		w.line(w.walk(a, st, true), a)
	}
}

// duWalker walks trees for du.
type duWalker struct {
	s          *session
	m          *client.Mount
	all, human bool
	seen       map[uint64]bool // inodes with several links already counted
}

// walk returns the bytes allocated to name (st) and, for a directory,
// everything under it, printing the lines of the directories under it
// (top: name is an operand, printed by the caller).
func (w *duWalker) walk(name string, st client.Stat, top bool) uint64 {
	if !isDir(st) && st.Nlink > 1 {
		if w.seen[st.Ino] {
			return 0
		}
		w.seen[st.Ino] = true
	}
	size := st.Blocks * 512
	if !isDir(st) || w.s.ctx.Err() != nil {
		return size
	}
	entries, err := w.s.sortedEntries(w.m, name, st.Ino)
	if err != nil {
		w.s.fail("du", name, err)
		return size
	}
	for _, e := range entries {
		size += w.walk(path.Join(remoteName(name), e.Name), *e.Stat, false)
	}
	if w.all && !top {
		w.line(size, name)
	}
	return size
}

// line prints one du line.
func (w *duWalker) line(size uint64, name string) {
	n := strconv.FormatUint((size+1023)/1024, 10)
	if w.human {
		n = humanBytes(size)
	}
	fmt.Fprintf(w.s.out, "%s\t%s\n", n, name)
}

// ---- statvfs ----

// cmdStatvfs shows the volume's size, usage and inode counts.
func cmdStatvfs(s *session, _ cmdFlags, _ []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	v, err := m.StatVFS(s.ctx)
	if err != nil {
		s.fail("statvfs", s.cfg.volume, err)
		return
	}
	writeStatvfs(s.out, s.cfg.volume, v)
}

// ---- df, volumes, status ----

// cmdDf shows the space and inode use of every volume, one line each.
func cmdDf(s *session, _ cmdFlags, _ []string) {
	vs, err := s.c.Volumes(s.ctx)
	if err != nil {
		s.fail("df", s.cfg.server, err)
		return
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Volume\tSize\tUsed\tAvail\tUse%\tInodes\tIUsed\tIFree\tIUse%")
	for _, v := range vs {
		if v.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\n", v.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d%%\t%s\t%s\t%s\t%d%%\n", v.Name,
			humanBytes(v.SizeBytes), humanBytes(v.UsedBytes), humanBytes(v.AvailBytes), percent(v.UsedBytes, v.SizeBytes),
			humanCount(v.Inodes), humanCount(v.InodesUsed), humanCount(v.InodesFree), percent(v.InodesUsed, v.Inodes))
	}
	tw.Flush()
	s.volumeErrors(vs)
}

// cmdVolumes lists the volumes with their size, inodes and mounts.
func cmdVolumes(s *session, _ cmdFlags, _ []string) {
	vs, err := s.c.Volumes(s.ctx)
	if err != nil {
		s.fail("volumes", s.cfg.server, err)
		return
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Volume\tSize\tInodes\tMounts")
	for _, v := range vs {
		if v.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t%d\n", v.Name, v.Mounts)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", v.Name, humanBytes(v.SizeBytes), humanCount(v.Inodes), v.Mounts)
	}
	tw.Flush()
	s.volumeErrors(vs)
}

// volumeErrors reports the volumes whose usage the server could not read.
func (s *session) volumeErrors(vs []client.VolumeInfo) {
	for _, v := range vs {
		if v.Error != "" {
			s.failMsg("volume", v.Name, v.Error)
		}
	}
}

// cmdStatus shows the server's version, uptime, connections, mounts, open
// files and the state of each volume. A failed volume is also reported on
// stderr, and makes the exit status 1.
func cmdStatus(s *session, _ cmdFlags, _ []string) {
	st, err := s.c.Status(s.ctx)
	if err != nil {
		s.fail("status", s.cfg.server, err)
		return
	}
	fmt.Fprintf(s.out, "Server:       %s (protocol %d) at %s\n", st.Server, st.Version, s.cfg.server)
	fmt.Fprintf(s.out, "Uptime:       %s\n", formatUptime(time.Duration(st.UptimeSec)*time.Second))
	fmt.Fprintf(s.out, "Connections:  %d\n", st.Connections)
	fmt.Fprintf(s.out, "Mounts:       %d\n", st.Mounts)
	fmt.Fprintf(s.out, "Open files:   %d\n", st.OpenHandles)
	fmt.Fprintln(s.out, "Volumes:")
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	for _, v := range st.Volumes {
		state := v.State
		if v.Error != "" {
			state += ": " + v.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, state)
	}
	tw.Flush()
	for _, v := range st.Volumes {
		if v.State != "ok" {
			s.failMsg("volume", v.Name, v.State)
		}
	}
}

// formatUptime renders d in days, hours, minutes and seconds: "3d4h5m6s",
// "5m0s".
func formatUptime(d time.Duration) string {
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	if days > 0 {
		return fmt.Sprintf("%dd%s", days, d)
	}
	return d.String()
}
