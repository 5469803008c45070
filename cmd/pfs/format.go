package main

import (
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// modeString renders mode like ls -l: type letter and rwx triplets with
// setuid, setgid and sticky bits ("drwxr-xr-x", "-rwsr-x--T").
func modeString(mode uint32) string {
	b := []byte("?---------")
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		b[0] = 'd'
	case syscall.S_IFREG:
		b[0] = '-'
	case syscall.S_IFLNK:
		b[0] = 'l'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unset
		}
	}
	special(syscall.S_ISUID, 3, 's', 'S')
	special(syscall.S_ISGID, 6, 's', 'S')
	special(syscall.S_ISVTX, 9, 't', 'T')
	return string(b)
}

// typeName names the file type of mode, as stat(1).
func typeName(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return "directory"
	case syscall.S_IFREG:
		return "regular file"
	case syscall.S_IFLNK:
		return "symbolic link"
	}
	return fmt.Sprintf("unknown (%#o)", mode&syscall.S_IFMT)
}

// tsTime converts a Timespec to a local time.Time.
func tsTime(t client.Timespec) time.Time { return time.Unix(t.Sec, t.Nsec) }

// lsTimeLayout is the mtime column of ls -l (local time).
const lsTimeLayout = "2006-01-02 15:04"

// statTimeLayout is the times of stat, with nanoseconds (local time).
const statTimeLayout = "2006-01-02 15:04:05.000000000 -0700"

// writeLs writes entries, one per line: names only, or with long the
// columns mode, nlink, uid, gid, size, mtime, name [-> target], numbers
// right-aligned to the widest of the listing.
func writeLs(w io.Writer, entries []lsEntry, long bool) {
	if !long {
		for _, e := range entries {
			fmt.Fprintln(w, e.name)
		}
		return
	}
	var wn, wu, wg, ws int
	for _, e := range entries {
		wn = max(wn, len(strconv.FormatUint(e.st.Nlink, 10)))
		wu = max(wu, len(strconv.FormatUint(uint64(e.st.UID), 10)))
		wg = max(wg, len(strconv.FormatUint(uint64(e.st.GID), 10)))
		ws = max(ws, len(strconv.FormatUint(e.st.Size, 10)))
	}
	for _, e := range entries {
		fmt.Fprintln(w, lsLine(e, wn, wu, wg, ws))
	}
}

// lsLine is one ls -l line with the given column widths.
func lsLine(e lsEntry, wn, wu, wg, ws int) string {
	s := fmt.Sprintf("%s %*d %*d %*d %*d %s %s", modeString(e.st.Mode), wn, e.st.Nlink,
		wu, e.st.UID, wg, e.st.GID, ws, e.st.Size, tsTime(e.st.Mtime).Format(lsTimeLayout), e.name)
	if isSymlink(e.st) {
		s += " -> " + e.target
	}
	return s
}

// writeStat writes all attributes of st (named name; target for a
// symlink), one "Key: value" per line.
func writeStat(w io.Writer, name string, st client.Stat, target string) {
	file := name
	if isSymlink(st) {
		file += " -> " + target
	}
	fmt.Fprintf(w, "  File: %s\n", file)
	fmt.Fprintf(w, "  Type: %s\n", typeName(st.Mode))
	fmt.Fprintf(w, "   Ino: %d\n", st.Ino)
	fmt.Fprintf(w, "  Mode: %04o (%s)\n", st.Mode&0o7777, modeString(st.Mode))
	fmt.Fprintf(w, " Nlink: %d\n", st.Nlink)
	fmt.Fprintf(w, "   Uid: %d\n", st.UID)
	fmt.Fprintf(w, "   Gid: %d\n", st.GID)
	fmt.Fprintf(w, "  Size: %d\n", st.Size)
	fmt.Fprintf(w, "   Dev: %d\n", st.Dev)
	fmt.Fprintf(w, " Atime: %s\n", tsTime(st.Atime).Format(statTimeLayout))
	fmt.Fprintf(w, " Mtime: %s\n", tsTime(st.Mtime).Format(statTimeLayout))
	fmt.Fprintf(w, " Ctime: %s\n", tsTime(st.Ctime).Format(statTimeLayout))
	fmt.Fprintf(w, "Crtime: %s\n", tsTime(st.Crtime).Format(statTimeLayout))
}

// humanBytes renders n bytes with a binary unit: "512 B", "1.5 KiB",
// "10.0 GiB".
func humanBytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// humanCount renders a count with a decimal unit above 9999: "42",
// "16.4M".
func humanCount(n uint64) string {
	const units = "kMGTPE"
	if n < 10000 {
		return strconv.FormatUint(n, 10)
	}
	v := float64(n) / 1000
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.1f%c", v, units[i])
}

// percent is 100*part/whole rounded up (as df), 0 for an empty whole.
func percent(part, whole uint64) uint64 {
	if whole == 0 {
		return 0
	}
	return (part*100 + whole - 1) / whole
}

// writeStatvfs writes the volume's numbers in human-readable form.
func writeStatvfs(w io.Writer, volume string, v client.StatVFS) {
	frsize := v.Frsize
	if frsize == 0 {
		frsize = v.Bsize
	}
	size := v.Blocks * frsize
	used := (v.Blocks - min(v.Bfree, v.Blocks)) * frsize
	avail := v.Bavail * frsize
	iused := v.Files - min(v.Ffree, v.Files)
	mode := "read-write"
	if v.Flag&1 != 0 {
		mode = "read-only"
	}
	fmt.Fprintf(w, "Volume:     %s (%s)\n", volume, mode)
	fmt.Fprintf(w, "Size:       %s (%d blocks of %d bytes)\n", humanBytes(size), v.Blocks, frsize)
	fmt.Fprintf(w, "Used:       %s (%d%%)\n", humanBytes(used), percent(used, size))
	fmt.Fprintf(w, "Available:  %s\n", humanBytes(avail))
	fmt.Fprintf(w, "Inodes:     %s total, %s used (%d%%), %s free\n", humanCount(v.Files), humanCount(iused),
		percent(iused, v.Files), humanCount(v.Ffree))
	fmt.Fprintf(w, "Name max:   %d\n", v.Namemax)
	fmt.Fprintf(w, "Fsid:       %#x\n", v.Fsid)
}
