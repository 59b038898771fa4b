// Package replay holds the pieces of a held listener's replay that more than
// one package of this module needs: the mark replayed SYNs carry, the hold
// filter that lets only them through, the raw socket they are sent on and
// its destination address.
package replay

// Mark is the SO_MARK of replayed SYNs ("SYNH"): the hold filter lets them
// through, and a capture configured to ignore it does not see them again.
const Mark = 0x53594e48
