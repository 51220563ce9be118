package boltstore

import (
	"bytes"
	"sync"

	"github.com/sitrep-oncall/sitrep/internal/incidents"
)

// decodedMax bounds how many incidents the decoded cache keeps: the ones a
// storm, a war room or a release is busy with, not the history.
const decodedMax = 256

// decoded keeps the incidents read or written last, each with the stored
// bytes it came from. A read whose bytes are the same gets a copy instead
// of decoding JSON again: in an alert storm every repeat reads its
// incident, and decoding it was most of the repeat's cost. Nothing needs
// invalidating: an entry is used only when the record is byte for byte the
// one it was decoded from, whichever transaction, writer or rollback came
// between. A nil *decoded keeps nothing.
type decoded struct {
	mu sync.Mutex
	m  map[int64]decodedRecord
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
	if d == nil {
		return
	}
	r := decodedRecord{raw: bytes.Clone(raw), inc: inc.Clone()}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[int64]decodedRecord, decodedMax)
	}
	if _, ok := d.m[id]; !ok && len(d.m) >= decodedMax {
		for other := range d.m { // any one: the busy ones come back at their next read
			delete(d.m, other)
			break
		}
	}
	d.m[id] = r
}
