package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// writer is the state of the one goroutine that writes a chain. Nothing
// else touches it after Open.
type writer struct {
	l     *Log
	names names
	f     *os.File // nil after a failed reopen; the next flush retries
	buf   bytes.Buffer

	seq  uint64 // of the last record appended to buf
	hash string // of the last record appended to buf
	size int64  // bytes on disk

	rotateAt int64 // after a failed rotation: the size at which to try again

	// the last state known to be on disk, to roll back to after a failed write
	okSeq  uint64
	okHash string

	sinceCheckpoint int
	lastCheckpoint  time.Time // of the last checkpoint on disk
	pendingCP       time.Time // of a checkpoint in buf
	witness         []byte    // that checkpoint's line, for Options.Witness
	dirty           bool      // written since the last fsync
	lost            uint64    // records lost to write errors, to be announced
	writeErrors     uint64
}

// openWriter opens the live file, finds where the chain stands and starts
// a segment saying how it continues (a fresh start, a restart, after a
// rotation, after a damaged tail). The segment is on disk before Open
// returns, so a bad path or a full disk is an error at start, not later.
func openWriter(l *Log, n names) (*writer, error) {
	f, size, err := openLive(n.live())
	if err != nil {
		return nil, err
	}
	w := &writer{l: l, names: n, f: f, size: size, hash: zeroHash}
	t, err := readTail(f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	seg := record{Kind: kindSegment, Reason: segStart}
	if t.last.Seq == 0 {
		// an empty (or wholly unreadable) live file: continue from the
		// newest rotated file, if any
		if rot, _ := n.list(); len(rot) > 0 {
			newest := rot[len(rot)-1]
			rt, err := readLastOf(newest)
			if err != nil {
				f.Close()
				return nil, err
			}
			t.last, t.hash = rt.last, rt.hash
			seg.Reason, seg.Previous = segRotate, strings.TrimSuffix(filepath.Base(newest), ".gz")
		}
	} else {
		seg.Reason = segRestart
	}
	if t.damaged > 0 {
		l.o.Logger.Warn("audit log has a damaged tail; a new segment records it",
			"file", n.live(), "bytes", t.damaged, "after_seq", t.last.Seq)
		seg.Reason, seg.Damaged = segDamagedTail, t.damaged
	}
	if t.last.Seq != 0 {
		w.seq, w.hash = t.last.Seq, t.hash
	}
	w.okSeq, w.okHash = w.seq, w.hash
	if !t.newline {
		w.buf.WriteByte('\n') // end the torn line, so the segment starts on a line of its own
	}
	w.appendRecord(&seg)
	if err := w.syncErr(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// appendRecord numbers, chains, stamps (and for a checkpoint signs) r and
// adds its line to the buffer.
func (w *writer) appendRecord(r *record) {
	r.Seq, r.Prev, r.Instance, r.Time = w.seq+1, w.hash, w.l.o.Instance, w.l.o.Now().UTC()
	if r.Kind == kindCheckpoint {
		sign(r, w.l.o.SignKey)
	}
	start := w.buf.Len()
	if err := encode(&w.buf, r); err != nil {
		w.buf.Truncate(start)
		w.l.o.Logger.Error("audit record not encodable", "kind", r.Kind, "error", err)
		w.l.dropped.Add(1)
		return
	}
	line := w.buf.Bytes()[start:]
	w.seq, w.hash = r.Seq, lineHash(line)
	if r.Kind == kindCheckpoint {
		w.pendingCP = r.Time
		if w.l.o.Witness != nil {
			w.witness = append(w.witness[:0], line...)
		}
	}
}

// writeEvent adds an event's record, rotating when the file is full.
func (w *writer) writeEvent(e detect.Event) {
	if w.lost > 0 {
		w.appendRecord(&record{Kind: kindSegment, Reason: segWriteError, Lost: w.lost})
		w.lost = 0
	}
	r, err := eventRecord(e)
	if err != nil {
		w.l.o.Logger.Error("audit event not encodable", "id", e.ID, "error", err)
		w.l.dropped.Add(1)
		return
	}
	w.appendRecord(&r)
	w.sinceCheckpoint++
	if rs := w.l.o.RotateSize; rs > 0 && w.size+int64(w.buf.Len()) >= max(rs, w.rotateAt) {
		w.rotate()
	}
}

// checkpoint commits to the chain so far: periodic ones only when records
// were added since the last, one ending a file always.
//
// Without a key, a closed log ends with a "stop" segment instead, so that
// stopping the trail is itself recorded (PCI DSS 10.2.1.6).
func (w *writer) checkpoint(end string) {
	if w.l.o.SignKey == nil {
		if end == endClose {
			w.appendRecord(&record{Kind: kindSegment, Reason: segStop})
		}
		return
	}
	if end == "" && w.sinceCheckpoint == 0 {
		return
	}
	w.appendRecord(&record{Kind: kindCheckpoint, Records: w.seq, Head: w.hash, End: end})
	w.sinceCheckpoint = 0
}

// flush hands the buffer to the OS. After a failed write the file is
// truncated back to its last good end and the chain rolled back, so what
// is on disk still verifies; the lost records are counted as dropped and
// announced by a write_error segment once writing works again.
func (w *writer) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	err := errors.New("no open file")
	if w.f == nil {
		w.f, _, err = openLive(w.names.live())
	}
	if w.f != nil {
		_, err = w.f.Write(w.buf.Bytes())
	}
	if err != nil {
		w.writeErrors++
		lost := w.seq - w.okSeq
		w.l.o.Logger.Error("audit log write failed; records dropped", "file", w.names.live(), "records", lost, "error", err)
		if w.f != nil { // reopened at the next flush: the descriptor may be what failed
			w.f.Close()
			w.f = nil
		}
		_ = os.Truncate(w.names.live(), w.size)
		w.l.dropped.Add(lost)
		w.lost += lost
		w.seq, w.hash = w.okSeq, w.okHash
		w.buf.Reset()
		w.pendingCP, w.witness = time.Time{}, w.witness[:0]
		return err
	}
	w.size += int64(w.buf.Len())
	w.buf.Reset()
	w.okSeq, w.okHash, w.dirty = w.seq, w.hash, true
	if !w.pendingCP.IsZero() {
		w.lastCheckpoint, w.pendingCP = w.pendingCP, time.Time{}
		if len(w.witness) > 0 {
			w.l.o.Witness(bytes.Clone(w.witness))
			w.witness = w.witness[:0]
		}
	}
	w.l.setStatus(Status{File: w.names.live(), Records: w.seq, LastHash: w.hash,
		LastCheckpoint: w.lastCheckpoint, WriteErrors: w.writeErrors})
	return nil
}

// sync flushes and fsyncs (PCI DSS 10.5: records survive a power cut
// within FlushEvery).
func (w *writer) sync() {
	if err := w.syncErr(); err != nil {
		w.l.o.Logger.Error("audit log fsync failed", "file", w.names.live(), "error", err)
	}
}

func (w *writer) syncErr() error {
	if err := w.flush(); err != nil {
		return err
	}
	if !w.dirty || w.f == nil {
		return nil
	}
	w.dirty = false
	return w.f.Sync()
}

// rotate ends the file with a checkpoint, renames it for compression and
// starts the next file with a segment naming it: the chain runs on.
func (w *writer) rotate() {
	w.checkpoint(endRotate)
	if err := w.syncErr(); err != nil || w.f == nil {
		return // the write failed: stay in this file, try again at the next record
	}
	live, rotated := w.names.live(), w.names.rotated(w.seq)
	if exists(rotated) || exists(rotated+".gz") {
		// only a chain restarted from nothing can reuse a seq: never overwrite a file
		w.l.o.Logger.Error("audit log not rotated: the rotated name is taken", "file", rotated)
		w.rotateAt = w.size + w.l.o.RotateSize
		return
	}
	w.f.Close()
	w.f = nil
	if err := os.Rename(live, rotated); err != nil {
		w.l.o.Logger.Error("audit log rotation failed", "file", live, "error", err)
		w.f, w.size, _ = openLive(live)
		w.rotateAt = w.size + w.l.o.RotateSize
		return
	}
	syncDir(w.names.dir)
	f, _, err := openLive(live)
	if err != nil {
		w.l.o.Logger.Error("audit log: opening the next file", "file", live, "error", err)
	}
	w.f, w.size, w.rotateAt = f, 0, 0
	w.appendRecord(&record{Kind: kindSegment, Reason: segRotate, Previous: filepath.Base(rotated)})
	w.sync()
	w.l.o.Logger.Info("audit log rotated", "file", live, "rotated", rotated)
	w.l.housekeep()
}

// close ends the writer: what is buffered, fsync, close.
func (w *writer) close() error {
	err := w.syncErr()
	if w.f != nil {
		err = errors.Join(err, w.f.Close())
		w.f = nil
	}
	return err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
