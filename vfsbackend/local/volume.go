package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// A volume directory is recognised by its VOLUME file, written when the
// volume is formatted. Its parent directory also gets a marker file,
// .<name>.proxyfs-volume, so that a volume directory that was deleted, or
// whose disk is not mounted, is not mistaken for a new one and silently
// replaced by an empty volume.
const (
	volumeFileName = "VOLUME"
	volumeMagic    = "proxyfs local volume"
	markerSuffix   = ".proxyfs-volume"
)

// markerPath is where the parent directory records that dir held a
// volume.
func markerPath(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+markerSuffix)
}

// dirKind is what a directory holds, as far as opening a volume goes.
type dirKind int

const (
	dirEmpty  dirKind = iota // nothing (but a LOCK file or lost+found)
	dirVolume                // a VOLUME file
	dirLegacy                // a WAL or snapshot but no VOLUME file: made before VOLUME files
	dirOther                 // anything else
)

func classify(dir string) (dirKind, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	kind := dirEmpty
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == volumeFileName:
			return dirVolume, nil
		case strings.HasPrefix(name, walPrefix) || name == snapName || name == indexName:
			kind = dirLegacy
		case name == "LOCK" || name == "lost+found" || name == reserveName:
		default:
			if kind == dirEmpty {
				kind = dirOther
			}
		}
	}
	return kind, nil
}

// volumeFile is the content of a VOLUME file.
func volumeFile(now time.Time) ([]byte, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "%s\nid = %s\nformatted = %s\n", volumeMagic, hex.EncodeToString(id[:]), now.UTC().Format(time.RFC3339)), nil
}

// writeDurably writes data to path through a temporary file and a rename,
// and syncs the directory.
func writeDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// markVolume writes dir's VOLUME file and its marker in the parent.
func markVolume(dir string) error {
	content, err := volumeFile(time.Now())
	if err != nil {
		return err
	}
	if err := writeDurably(filepath.Join(dir, volumeFileName), content); err != nil {
		return fmt.Errorf("write %s: %w", volumeFileName, err)
	}
	marker := fmt.Appendf(nil, "%s\n%s", dir, content)
	if err := writeDurably(markerPath(dir), marker); err != nil {
		return fmt.Errorf("write marker %s: %w", markerPath(dir), err)
	}
	return nil
}

// noVolume is the error for a directory that holds no volume. why says
// what was found; the error wraps vfsbackend.ErrNoVolume and ENOENT.
func noVolume(dir, why string) error {
	return fmt.Errorf("%s: %w: %s: %w", dir, vfsbackend.ErrNoVolume, why, syscall.ENOENT)
}

// prepareDir makes sure dir exists before the volume is locked, creating
// it if the format policy allows a new volume there. It returns an error
// for a missing directory that may not be created.
func prepareDir(dir string, opts vfsbackend.Options) error {
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%s is not a directory: %w", dir, syscall.ENOTDIR)
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := mayFormat(dir, opts, "the directory does not exist"); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// We created the volume directory: make its entry durable.
	return syncDir(filepath.Dir(dir))
}

// mayFormat returns nil if opts allow formatting a new volume in dir,
// which holds none (why says what was found).
func mayFormat(dir string, opts vfsbackend.Options, why string) error {
	if opts.ReadOnly {
		return noVolume(dir, why)
	}
	switch opts.Format {
	case vfsbackend.FormatForce:
		return nil
	case vfsbackend.FormatIfNew:
		if m, err := os.ReadFile(markerPath(dir)); err == nil {
			return noVolume(dir, why+", but "+markerPath(dir)+" says a volume was formatted there ("+
				firstLine(m, "formatted = ")+"): was it deleted, or is its disk not mounted? "+
				"Nothing was changed. Restore it, mount it, or run proxyfsd -format to start an empty volume there")
		}
		return nil
	default:
		return noVolume(dir, why+"; run proxyfsd -format to create a volume there, "+
			"or set auto_format for the volume's first start")
	}
}

// firstLine returns the rest of the first line of text that starts with
// prefix, or "" if none does.
func firstLine(text []byte, prefix string) string {
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// identify checks, with the volume locked, that dir holds a volume; it
// formats one (writes VOLUME and the marker) if it holds none and the
// policy allows it. It reports whether it formatted one.
func identify(dir string, opts vfsbackend.Options, log *zap.Logger) (bool, error) {
	kind, err := classify(dir)
	if err != nil {
		return false, err
	}
	switch kind {
	case dirVolume:
		return false, nil
	case dirLegacy:
		if opts.ReadOnly {
			return false, nil
		}
		log.Info("marking a volume made before VOLUME files", zap.String("file", filepath.Join(dir, volumeFileName)))
		return false, markVolume(dir)
	case dirOther:
		return false, fmt.Errorf("%s holds files but no %s file: it is not a proxyfs volume; nothing was changed", dir, volumeFileName)
	}
	if err := mayFormat(dir, opts, "the directory is empty"); err != nil {
		return false, err
	}
	if opts.Format == vfsbackend.FormatForce {
		if _, err := os.Stat(markerPath(dir)); err == nil {
			log.Warn("formatting a new volume where one was formatted before, as asked", zap.String("marker", markerPath(dir)))
		}
	}
	if err := markVolume(dir); err != nil {
		return false, err
	}
	log.Info("formatted a new volume")
	return true, nil
}

// watchDir remembers the volume directory's identity so that health can
// tell when it is deleted, replaced or unmounted under the daemon.
func (b *Backend) watchDir() error {
	f, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	b.dirMu.Lock()
	b.dirFile = f
	b.dirMu.Unlock()
	return nil
}

// closeDir closes the directory watchDir opened.
func (b *Backend) closeDir() error {
	b.dirMu.Lock()
	defer b.dirMu.Unlock()
	if b.dirFile == nil {
		return nil
	}
	err := b.dirFile.Close()
	b.dirFile = nil
	return err
}

// Health reports whether the volume's directory is still the one opened:
// not deleted (rm -rf), replaced, or unmounted from under the daemon, and
// still holding its VOLUME file. Once it fails, the volume is failed for
// good: every call returns EIO (writes into deleted files would be lost),
// and the error is logged once. The server's readiness check calls it.
func (b *Backend) Health() error {
	if p := b.failed.Load(); p != nil {
		return *p
	}
	b.dirMu.RLock()
	defer b.dirMu.RUnlock()
	if b.dirFile == nil {
		return nil // read-only before watchDir, or closed
	}
	var open, now syscall.Stat_t
	var why string
	switch {
	case syscall.Fstat(int(b.dirFile.Fd()), &open) != nil:
		why = "cannot stat the open volume directory"
	case open.Nlink == 0:
		why = "the volume directory was deleted"
	case syscall.Stat(b.dir, &now) != nil:
		why = "the volume directory is gone"
	case now.Dev != open.Dev || now.Ino != open.Ino:
		why = "the volume directory was replaced or unmounted"
	default:
		if _, err := os.Stat(filepath.Join(b.dir, volumeFileName)); err != nil {
			why = "the volume's " + volumeFileName + " file is gone"
		}
	}
	if why == "" {
		return nil
	}
	return b.fail(fmt.Errorf("local: %s: %s; failing every call until restart: %w", b.dir, why, syscall.EIO))
}

// fail marks the volume failed with err (the first error wins) and
// returns the error in force.
func (b *Backend) fail(err error) error {
	if b.failed.CompareAndSwap(nil, &err) {
		b.log.Error("volume failed", zap.Error(err))
		return err
	}
	return *b.failed.Load()
}
