package boltstore

import (
	"bytes"
	"sync"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// decodedMax and decodedMaxBytes bound the decoded cache: the incidents a
// storm, a war room or a release is busy with, not the history, and at
// most a few MiB of records however large they grow.
const (
	decodedMax      = 256
	decodedMaxBytes = 4 << 20
)

// decoded keeps the incidents read or written last, each with the stored
// bytes it came from. A read whose bytes are the same gets a copy instead
// of decoding JSON again: in an alert storm every repeat reads its
// incident, and decoding it was most of the repeat's cost. Nothing needs
// invalidating: an entry is used only when the record is byte for byte the
// one it was decoded from, whichever transaction, writer or rollback came
// between. A nil *decoded keeps nothing.
type decoded struct {
	mu    sync.Mutex
	m     map[int64]decodedRecord
	bytes int // the raw records' sizes, summed
}

type decodedRecord struct {
	raw []byte              // the record as stored, copied out of the mmap
	inc *incidents.Incident // decoded from raw; never handed out, only copies of it
}

// get returns a copy of the incident decoded from raw, or nil.
func (d *decoded) get(id int64, raw []byte) *incidents.Incident {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	r, ok := d.m[id]
	d.mu.Unlock()
	if !ok || !bytes.Equal(r.raw, raw) {
		return nil
	}
	return r.inc.Clone()
}

// put keeps a copy of inc as the incident raw decodes to.
func (d *decoded) put(id int64, raw []byte, inc *incidents.Incident) {
	if d == nil || len(raw) > decodedMaxBytes {
		return
	}
	r := decodedRecord{raw: bytes.Clone(raw), inc: inc.Clone()}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[int64]decodedRecord, decodedMax)
	}
	if old, ok := d.m[id]; ok {
		d.bytes -= len(old.raw)
		delete(d.m, id)
	}
	for other, o := range d.m { // any ones: the busy ones come back at their next read
		if len(d.m) < decodedMax && d.bytes+len(raw) <= decodedMaxBytes {
			break
		}
		d.bytes -= len(o.raw)
		delete(d.m, other)
	}
	d.m[id] = r
	d.bytes += len(raw)
}
