package geoip

import (
	"context"
	"time"
)

// DefaultPollInterval is how often Watch looks at the files by default.
// geoipupdate replaces a file by renaming a complete one over it, so a stat
// (one system call per file, nothing read) is all a poll costs, and MaxMind
// publishes GeoLite2 twice a week, so a minute's delay is irrelevant.
// Polling rather than inotify works the same on every platform, on network
// file systems and bind mounts, and across the symlink swaps of Kubernetes
// volumes, where watches on the old inode silently stop firing.
const DefaultPollInterval = time.Minute

// Watch calls Reload every interval (DefaultPollInterval when interval is
// not positive) until ctx is done, and returns then. onReload, if not nil,
// is called with nil after a database was replaced and with the error when
// a reload failed; the same failure is reported once, not at every poll,
// until the files change. Run it in a goroutine of its own:
//
//	go loc.Watch(ctx, 0, func(err error) { ... log ... })
func (l *Locator) Watch(ctx context.Context, interval time.Duration, onReload func(err error)) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last string // the failure reported last
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.closed.Load() {
			return
		}
		changed, err := l.Reload()
		if changed && onReload != nil {
			onReload(nil) // one file was replaced even if the other failed
		}
		if err == nil {
			last = ""
			continue
		}
		if msg := err.Error(); msg != last {
			last = msg
			if onReload != nil {
				onReload(err)
			}
		}
	}
}
