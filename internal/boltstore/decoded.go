package boltstore

import (
	"bytes"
	"sync"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// decodedMax and decodedMaxBytes bound the decoded cache: the incidents a
// storm, a war room or a release is busy with, not the history, and at
// most 4 MiB of records however large they grow (their decoded copies take
// two or three times that).
const (
	decodedMax      = 256
	decodedMaxBytes = 4 << 20
)

// decoded keeps the incidents read last, each with the stored bytes it
// was decoded from. A read whose bytes are the same gets a copy instead
// of decoding JSON again: in an alert storm every repeat reads its
// incident, and decoding it was most of the repeat's cost. Nothing needs
// invalidating: an entry is used only when the record is byte for byte the
// one it was decoded from, whichever transaction, writer or rollback came
// between. Each incident keeps its last two versions: a read transaction
// begun before a commit still reads the version before it. A nil *decoded
// keeps nothing.
type decoded struct {
	mu    sync.Mutex
	m     map[int64]*[2]decodedRecord // an incident's versions, the last stored first
	bytes int                         // the raw records' sizes, summed
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
	var versions [2]decodedRecord
	if v := d.m[id]; v != nil {
		versions = *v
	}
	d.mu.Unlock()
	for _, r := range versions {
		if r.inc != nil && bytes.Equal(r.raw, raw) {
			return r.inc.Clone()
		}
	}
	return nil
}

// put keeps a copy of inc as the incident raw decodes to.
func (d *decoded) put(id int64, raw []byte, inc *incidents.Incident) {
	if d == nil || len(raw) > decodedMaxBytes {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[int64]*[2]decodedRecord, decodedMax)
	}
	v := d.m[id]
	if v == nil {
		v = new([2]decodedRecord)
		d.m[id] = v
	}
	if bytes.Equal(v[0].raw, raw) || bytes.Equal(v[1].raw, raw) {
		return // two readers missed at once: both versions stay
	}
	r := decodedRecord{raw: bytes.Clone(raw), inc: inc.Clone()}
	d.bytes += len(raw) - len(v[1].raw)
	v[0], v[1] = r, v[0]
	for other, o := range d.m { // any others: the busy ones come back at their next read
		if len(d.m) <= decodedMax && d.bytes <= decodedMaxBytes {
			break
		}
		if other != id {
			d.bytes -= len(o[0].raw) + len(o[1].raw)
			delete(d.m, other)
		}
	}
	if d.bytes > decodedMaxBytes { // this one alone: its older version goes
		d.bytes -= len(v[1].raw)
		v[1] = decodedRecord{}
	}
}
