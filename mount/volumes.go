package mount

// CountByVolume returns the number of mounts of each volume that has any
// (orphaned ones, in their grace, included).
func (t *Table) CountByVolume() map[string]int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := map[string]int{}
	for _, e := range t.mounts {
		n[e.m.Volume]++
	}
	return n
}
